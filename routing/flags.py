"""FeatureFlags: the seed's in-memory flags locally, the control plane's flags remotely."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from routing import evaluation
from routing.evaluation import FLAG_NAMES, is_flag_enabled
from routing.refusal import refused
from routing.remote import Remote, request, resolve_remote

OPERATOR_KEY_NEEDED = (
    "changing a flag needs an operator API key; this key may only read flags "
    "(create one with `manage.py create_api_key <router> --role operator`)"
)
# 401 is not a role problem: the control plane does not know the key (mistyped or revoked).
KEY_NOT_VALID = (
    "the control plane refused this API key: it is not valid (unknown or revoked); "
    "use a current operator API key (`manage.py list_api_keys <router>` shows the active ones)"
)


class FeatureFlags:
    """Flag names as constants; `enable`/`disable`/`is_enabled`/`get_all_flags`.

    Local mode (no ROUTEPLANE_URL/ROUTEPLANE_API_KEY): an in-memory dict, every flag off, as in
    the migration guide. Remote mode: flags come from the control plane's live document,
    evaluated with the shared rule (routing.evaluation), kill switch included; `enable` and
    `disable` write through the operator API and apply the answer at once.
    """

    ROUTELLM_ENABLED = evaluation.ROUTELLM_ENABLED
    ROUTELLM_COST_TRACKING = evaluation.ROUTELLM_COST_TRACKING
    ROUTELLM_PERFORMANCE_MONITORING = evaluation.ROUTELLM_PERFORMANCE_MONITORING
    ROUTELLM_MEDICAL_DOMAIN = evaluation.DOMAIN_FLAGS["medical"]
    ROUTELLM_LEGAL_DOMAIN = evaluation.DOMAIN_FLAGS["legal"]
    ROUTELLM_TECHNICAL_DOMAIN = evaluation.DOMAIN_FLAGS["technical"]
    ROUTELLM_CREATIVE_DOMAIN = evaluation.DOMAIN_FLAGS["creative"]
    ROUTELLM_SCIENTIFIC_DOMAIN = evaluation.DOMAIN_FLAGS["scientific"]
    ROUTELLM_DYNAMIC_THRESHOLD = evaluation.ROUTELLM_DYNAMIC_THRESHOLD
    ROUTELLM_A_B_TESTING = evaluation.ROUTELLM_A_B_TESTING

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        cache_path: str | os.PathLike[str] | None = None,
        bootstrap_path: str | os.PathLike[str] | None = None,
        first_timeout: float | None = None,
    ) -> None:
        self.remote: Remote | None = resolve_remote(url, api_key)
        self._flags: dict[str, bool] = {name: False for name in FLAG_NAMES}
        self._local_document: dict[str, Any] | None = None
        self._poller = None
        if self.remote is not None:
            from routing.client import FIRST_DOCUMENT_TIMEOUT, shared_poller

            self._poller = shared_poller(
                self.remote,
                cache_path=cache_path,
                bootstrap_path=bootstrap_path,
                first_timeout=FIRST_DOCUMENT_TIMEOUT if first_timeout is None else first_timeout,
            )

    @property
    def is_remote(self) -> bool:
        return self.remote is not None

    @property
    def poller(self):  # routing.client.FlagsPoller | None
        return self._poller

    def document(self) -> dict[str, Any]:
        """The flags document decisions are made on (the live one in remote mode)."""
        if self._poller is not None:
            return self._poller.document
        if self._local_document is None:
            self._local_document = {
                "revision": 0,
                "kill_switch": False,
                "flags": {
                    name: {"enabled": on, "rollout_percent": 100 if on else 0}
                    for name, on in self._flags.items()
                },
            }
        return self._local_document

    def enable(self, flag_name: str) -> None:
        self._set(flag_name, True)

    def disable(self, flag_name: str) -> None:
        self._set(flag_name, False)

    def is_enabled(self, flag_name: str, key: str | None = None) -> bool:
        """Whether `flag_name` is on; `key` picks the sticky rollout bucket (remote mode)."""
        if self._poller is None:
            return self._flags.get(flag_name, False)
        return is_flag_enabled(self._poller.document, flag_name, key)

    def get_all_flags(self) -> dict[str, bool]:
        """Every flag, evaluated without a key (only 100 % rollouts count as on)."""
        if self._poller is None:
            return dict(self._flags)
        document = self._poller.document
        names = list(FLAG_NAMES) + [n for n in document.get("flags", {}) if n not in FLAG_NAMES]
        return {name: is_flag_enabled(document, name) for name in names}

    def _set(self, flag_name: str, enabled: bool) -> None:
        if self.remote is None:
            self._flags[flag_name] = enabled
            self._local_document = None
            return
        self._write_remote(flag_name, enabled)

    def _write_remote(self, flag_name: str, enabled: bool) -> None:
        assert self.remote is not None and self._poller is not None
        slug = self._poller.document.get("router")
        if not slug:
            # No document from the server yet: ask for one, to learn which router we are.
            self._poller.fetch_once()
            slug = self._poller.document.get("router")
        if not slug:
            raise ConnectionError("the control plane has not answered yet; flag not changed")
        result = request(
            self.remote,
            "PUT",
            f"/routers/{quote(slug)}/flags/{quote(flag_name)}",
            body={"enabled": enabled, "rollout_percent": 100 if enabled else 0},
            timeout=10.0,
        )
        if result.status == 401:
            raise refused(f"{KEY_NOT_VALID} (HTTP 401)")
        if result.status == 403:
            raise refused(f"{OPERATOR_KEY_NEEDED} (HTTP 403)")
        if result.status == 400:
            raise ValueError(f"{flag_name}: rejected by the control plane: {result.json()}")
        if result.status >= 300:
            raise ConnectionError(f"the control plane answered HTTP {result.status}")
        answer = result.json()
        if isinstance(answer, dict):
            document = {
                "router": slug,
                "revision": answer.get("revision"),
                "phase": answer.get("phase"),
                "phase_domain": answer.get("phase_domain"),
                "kill_switch": bool(answer.get("kill_switch")),
                "config": answer.get("config"),
                "flags": answer.get("flags"),
            }
            # No ETag: the next poll fetches the server's exact bytes and their ETag.
            self._poller.apply(document)

    def __repr__(self) -> str:
        mode = f"remote {self.remote.url}" if self.remote else "local"
        return f"<FeatureFlags {mode}>"
