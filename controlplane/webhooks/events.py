"""The webhook event types (docs/webhooks.md). Services emit them; endpoints subscribe to them."""

from __future__ import annotations

KILL_SWITCH_ENGAGED = "kill_switch.engaged"
KILL_SWITCH_RELEASED = "kill_switch.released"
PHASE_CHANGED = "phase.changed"
REVISION_ROLLED_BACK = "revision.rolled_back"
GUARDRAIL_TRIPPED = "guardrail.tripped"
THRESHOLD_CALIBRATED = "threshold.calibrated"
CHANGE_REQUEST_CREATED = "change_request.created"
CHANGE_REQUEST_APPROVED = "change_request.approved"
CHANGE_REQUEST_REJECTED = "change_request.rejected"
SCHEDULED_CHANGE_APPLIED = "scheduled_change.applied"
WEBHOOK_TEST = "webhook.test"

# type -> what it means (shown in the API schema and the dashboard's form).
EVENT_TYPES: dict[str, str] = {
    KILL_SWITCH_ENGAGED: "The kill switch was engaged (also by an emergency rollback).",
    KILL_SWITCH_RELEASED: "The kill switch was released.",
    PHASE_CHANGED: "The rollout phase changed (operator, step back or guardrail).",
    REVISION_ROLLED_BACK: "A revision was restored by a rollback.",
    GUARDRAIL_TRIPPED: "A guardrail stepped the router back.",
    THRESHOLD_CALIBRATED: "The routing threshold was calibrated.",
    CHANGE_REQUEST_CREATED: "A change request awaits approval.",
    CHANGE_REQUEST_APPROVED: "A change request was approved and applied.",
    CHANGE_REQUEST_REJECTED: "A change request was rejected.",
    SCHEDULED_CHANGE_APPLIED: "A scheduled change was applied.",
    WEBHOOK_TEST: "A test sent from the API or the dashboard.",
}
