"""Template helpers for the dashboard: readable diffs, money, percentages, phases."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone

from controlplane.models import Phase

register = template.Library()

PHASE_LABELS = dict(Phase.choices)


@register.filter
def phase_label(phase: str, domain: str = "") -> str:
    label = PHASE_LABELS.get(phase, phase or "—")
    return f"{label} ({domain})" if domain else label


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True) if value else "none"
    if value == "":
        return "(none)"
    return str(value)


def _label(path: str) -> str:
    """'flags.routellm_enabled.rollout_percent' -> 'routellm_enabled rollout %'."""
    parts = path.split(".")
    if parts[0] == "flags" and len(parts) >= 3:
        attribute = {"enabled": "enabled", "rollout_percent": "rollout %"}.get(parts[2], parts[2])
        return f"flag {parts[1]} {attribute}"
    if parts[0] == "config" and len(parts) >= 2:
        name = ".".join(parts[1:])
        return "config enabled" if name == "enabled" else name
    return path.replace("_", " ")


def _is_change(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"before", "after"}


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict) and value and prefix.count(".") < 2:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out.append((prefix, value))


@register.filter
def diff_rows(diff: dict[str, Any] | None) -> list[dict[str, str]]:
    """Rows of (what, before, after) from a Snapshot diff or an audit entry's payload.

    Audit entries of revisions hold {"config.threshold": {"before", "after"}}; the first revision
    and key events hold plain values, shown as "set to".
    """
    if not diff:
        return []
    if all(_is_change(v) for v in diff.values()):
        return [
            {"what": _label(path), "before": _value(c["before"]), "after": _value(c["after"])}
            for path, c in diff.items()
        ]
    flat: list[tuple[str, Any]] = []
    _flatten("", diff, flat)
    return [{"what": _label(path), "before": "", "after": _value(value)} for path, value in flat]


@register.filter
def money(value: Any) -> str:
    if value is None or value == "":
        return "—"
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return "—"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount and amount < 0.01:
        return f"{sign}${amount:.4f}"
    return f"{sign}${amount:,.2f}"


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """A fraction (0.25) as a percentage ("25.0 %")."""
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value) * 100:.{int(digits)}f} %"
    except (TypeError, ValueError):
        return "—"


@register.filter
def number(value: Any, digits: int = 0) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):,.{int(digits)}f}"
    except (TypeError, ValueError):
        return "—"


@register.filter
def ago(moment: datetime | None) -> str:
    """Short relative time ("12 s ago", "5 min ago"), readable at a glance."""
    if moment is None:
        return "never"
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    try:
        return mapping[key]
    except (KeyError, IndexError, TypeError):
        return None
