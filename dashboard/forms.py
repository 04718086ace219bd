"""Dashboard forms: they only turn HTML inputs into typed values.

The rules themselves (threshold in [0, 1], known router types, ...) live in `routing.config` and
run inside the services, so the dashboard and the API cannot disagree about what is valid.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from django import forms

from controlplane.models import ChangePolicy, Phase, ScheduledAction
from routing.config import CONFIG_FIELDS, KNOWN_DOMAINS, RouterType
from routing.evaluation import FLAG_NAMES

DOMAIN_CHOICES = [(d, d.capitalize()) for d in KNOWN_DOMAINS]
REASON_MAX = 2000


class RevisionBound(forms.Form):
    """Every write form carries the revision it was rendered from (the dashboard's If-Match)."""

    expected_revision = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class PhaseForm(RevisionBound):
    phase = forms.ChoiceField(choices=Phase.choices)
    domain = forms.ChoiceField(choices=[("", "—"), *DOMAIN_CHOICES], required=False)
    reason = forms.CharField(required=False, max_length=REASON_MAX)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("phase") == Phase.SINGLE_DOMAIN and not data.get("domain"):
            self.add_error("domain", "choose the domain to route first")
        return data


class StepBackForm(RevisionBound):
    reason = forms.CharField(required=False, max_length=REASON_MAX)


class KillSwitchForm(RevisionBound):
    engaged = forms.TypedChoiceField(
        choices=[("true", "engage"), ("false", "release")], coerce=lambda v: v == "true"
    )
    reason = forms.CharField(
        required=False,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The service says the same; checking here keeps the message next to the field.
        if data.get("engaged") and not (data.get("reason") or "").strip():
            self.add_error(
                "reason", "say why you engage the kill switch (it goes in the audit log)"
            )
        return data


class FlagForm(RevisionBound):
    enabled = forms.BooleanField(required=False)
    rollout_percent = forms.IntegerField(min_value=0, max_value=100)
    reason = forms.CharField(required=False, max_length=REASON_MAX)


class RollbackForm(RevisionBound):
    revision = forms.IntegerField(min_value=1)
    reason = forms.CharField(required=False, max_length=REASON_MAX)


class ConfigForm(RevisionBound):
    """Every RouteLLMConfig field. Numbers are read as text so bad input reaches the shared rules.

    A field that does not parse as a number is reported here; a number out of range is reported by
    `routing.config.config_errors`, through the service, with the API's own wording.
    """

    enabled = forms.BooleanField(required=False, label="Routing enabled")
    router_type = forms.ChoiceField(
        choices=[(t.value, t.value) for t in RouterType], label="Router type"
    )
    threshold = forms.CharField(label="Threshold", help_text="0–1; higher sends more to weak")
    strong_model = forms.CharField(label="Strong model", max_length=200)
    weak_model = forms.CharField(label="Weak model", max_length=200)
    fallback_enabled = forms.BooleanField(required=False, label="Fall back on errors")
    max_retry_attempts = forms.CharField(label="Max retry attempts")
    timeout_seconds = forms.CharField(label="Timeout (seconds)")
    cost_tracking_enabled = forms.BooleanField(required=False, label="Cost tracking")
    cost_optimization_target = forms.CharField(
        label="Cost optimization target", help_text="share of calls meant for the weak model, 0–1"
    )
    performance_monitoring_enabled = forms.BooleanField(
        required=False, label="Performance monitoring"
    )
    metrics_retention_days = forms.CharField(label="Metrics retention (days)")
    domain_specific_routing = forms.BooleanField(required=False, label="Domain-specific routing")
    domain_routing_overrides = forms.CharField(
        required=False,
        label="Domain overrides (JSON)",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text='e.g. {"medical": {"enabled": true, "threshold": 0.05}}',
    )
    reason = forms.CharField(required=False, max_length=REASON_MAX, label="Reason (optional)")

    FLOAT_FIELDS = ("threshold", "timeout_seconds", "cost_optimization_target")
    INT_FIELDS = ("max_retry_attempts", "metrics_retention_days")

    @classmethod
    def initial_from(cls, config: dict[str, Any], revision: int) -> dict[str, Any]:
        initial = {name: config.get(name) for name in CONFIG_FIELDS}
        initial["domain_routing_overrides"] = json.dumps(
            config.get("domain_routing_overrides") or {}, indent=1, sort_keys=True
        )
        initial["expected_revision"] = revision
        return initial

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in self.FLOAT_FIELDS:
            if name in data:
                try:
                    data[name] = float(str(data[name]).strip())
                except ValueError:
                    self.add_error(name, "enter a number")
        for name in self.INT_FIELDS:
            if name in data:
                try:
                    data[name] = int(str(data[name]).strip())
                except ValueError:
                    self.add_error(name, "enter a whole number")
        if "domain_routing_overrides" in data:
            raw = (data["domain_routing_overrides"] or "").strip()
            try:
                data["domain_routing_overrides"] = json.loads(raw) if raw else {}
            except ValueError as exc:
                self.add_error("domain_routing_overrides", f"not valid JSON: {exc}")
        for name in ("strong_model", "weak_model"):
            if name in data:
                data[name] = data[name].strip()
        return data

    def config_values(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in CONFIG_FIELDS}


class AuditFilterForm(forms.Form):
    router = forms.ChoiceField(required=False)
    actor = forms.CharField(required=False, max_length=200)
    action = forms.ChoiceField(required=False)
    since = forms.DateTimeField(
        required=False,
        label="From",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        required=False,
        label="To",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    ACTIONS = [
        ("", "Any action"),
        ("router.create", "Router created"),
        ("config.update", "Config update"),
        ("flag.set", "Flag change"),
        ("phase", "Phase change (any)"),
        ("phase.set", "Phase set"),
        ("phase.step_back", "Phase step back"),
        ("kill_switch", "Kill switch (any)"),
        ("kill_switch.engage", "Kill switch engaged"),
        ("kill_switch.release", "Kill switch released"),
        ("rollback", "Rollback"),
        ("emergency_rollback", "Emergency rollback"),
        ("api_key", "API keys"),
    ]

    def __init__(self, *args: Any, routers: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["router"].choices = [("", "All routers")] + [(s, s) for s in routers or []]
        self.fields["action"].choices = self.ACTIONS


class ChangePolicyForm(forms.Form):
    approve_full_phase = forms.BooleanField(required=False, label="Going to phase full")
    approve_kill_switch_release = forms.BooleanField(
        required=False, label="Releasing the kill switch"
    )
    approve_threshold_change_above = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        label="A threshold change larger than",
        help_text="Empty: threshold changes need no approval.",
    )

    @classmethod
    def for_policy(cls, policy: ChangePolicy) -> ChangePolicyForm:
        fields = ("approve_full_phase", "approve_kill_switch_release")
        initial = {name: getattr(policy, name) for name in fields}
        initial["approve_threshold_change_above"] = policy.approve_threshold_change_above
        return cls(initial=initial, auto_id="id_policy_%s")


class ScheduleForm(forms.Form):
    """One scheduled change; `params()` gives the service the fields of the chosen action."""

    action = forms.ChoiceField(choices=ScheduledAction.choices)
    # Labels of their own: the page's phase form has a "Phase" and a "Domain" too.
    phase = forms.ChoiceField(choices=Phase.choices, required=False, label="Phase to set")
    domain = forms.ChoiceField(
        choices=[("", "—"), *DOMAIN_CHOICES], required=False, label="Domain to route"
    )
    flag = forms.ChoiceField(choices=[(n, n) for n in FLAG_NAMES], required=False)
    enabled = forms.BooleanField(required=False, label="Enabled")
    rollout_percent = forms.IntegerField(required=False, min_value=0, max_value=100)
    run_at = forms.DateTimeField(
        label="When (UTC)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    reason = forms.CharField(required=False, max_length=REASON_MAX)

    def clean_run_at(self) -> Any:
        # The page says UTC; a datetime-local input carries no zone of its own.
        value = self.cleaned_data["run_at"]
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    def params(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["action"] == ScheduledAction.PHASE:
            return {"phase": data.get("phase") or "", "domain": data.get("domain") or None}
        if data["action"] == ScheduledAction.FLAG:
            return {
                "name": data.get("flag") or "",
                "enabled": bool(data.get("enabled")),
                "rollout_percent": data.get("rollout_percent"),
            }
        return {}


class DecisionForm(forms.Form):
    reason = forms.CharField(required=False, max_length=REASON_MAX)
