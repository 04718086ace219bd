"""A/B arms (the SDK and the server share this rule, like the flag rule in routing.evaluation).

The flags document's `experiment` entry ({"id", "split", "treatment_threshold"}, or null) is
the running experiment. With flag `routellm_a_b_testing` on for a key, the key's arm is
sticky: `treatment` when
    int(sha256(f"experiment:{id}:{key}").hexdigest()[:8], 16) % 10000 < round(split * 10000)
else `control`. Treatment keys route with `treatment_threshold` in place of config.threshold (a
domain override's own threshold still wins: exactly what applying the treatment would do).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from routing.evaluation import ROUTELLM_A_B_TESTING, is_flag_enabled

CONTROL = "control"
TREATMENT = "treatment"
SPLIT_BUCKETS = 10_000  # split resolution: 0.01 %


def arm_bucket(experiment_id: int, key: str) -> int:
    """A stable 0..9999 bucket for (experiment, key), independent of every flag's bucket."""
    digest = hashlib.sha256(f"experiment:{experiment_id}:{key}".encode()).hexdigest()
    return int(digest[:8], 16) % SPLIT_BUCKETS


def arm_for(experiment: Mapping[str, Any], key: str) -> str:
    """The key's arm in a running experiment entry."""
    cutoff = round(float(experiment["split"]) * SPLIT_BUCKETS)
    return TREATMENT if arm_bucket(int(experiment["id"]), key) < cutoff else CONTROL


def experiment_arm(document: Mapping[str, Any], key: str) -> tuple[str | None, float | None]:
    """(arm, threshold to route with instead of config.threshold) for this key; (None, None)
    when no experiment runs or the A/B flag is off for the key; control keeps the config's."""
    experiment = document.get("experiment")
    if not experiment or not is_flag_enabled(document, ROUTELLM_A_B_TESTING, key):
        return None, None
    arm = arm_for(experiment, key)
    if arm == TREATMENT:
        return arm, float(experiment["treatment_threshold"])
    return arm, None


def experiment_errors(value: object) -> list[str]:
    """Problems with a document's `experiment` entry (null is fine: none runs)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return ["experiment: must be an object or null"]
    errors = []
    identifier = value.get("id")
    if not isinstance(identifier, int) or isinstance(identifier, bool) or identifier < 1:
        errors.append("experiment.id: must be an integer >= 1")
    for name in ("split", "treatment_threshold"):
        number = value.get(name)
        if isinstance(number, bool) or not isinstance(number, int | float) or not 0 <= number <= 1:
            errors.append(f"experiment.{name}: must be a number between 0 and 1")
    return errors
