"""Local reports (routing.reports) agree with the control plane's on the same events."""

from __future__ import annotations

import pytest

from routing import CostTracker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STRONG, WEAK = "gpt-4-1106-preview", "gpt-3.5-turbo"
# (domains, routing_method, model, estimated_cost, extra): every branch of the cost rule.
EVENTS = [  # fmt: skip
    (["technical"], "routellm", WEAK, None, {"prompt_tokens": 1200, "completion_tokens": 300}),
    (["technical"], "routellm", STRONG, None, {"prompt_tokens": 800, "completion_tokens": 900}),
    # A pattern row prices it (gpt-3.5-turbo-*), tokens and an estimate: tokens win.
    (["legal"], "routellm", WEAK + "-0125", 0.5, {"prompt_tokens": 9, "completion_tokens": 1}),
    # One token count missing: the estimate, and no baseline to claim savings against.
    (["legal"], "routellm", WEAK, 0.002, {"prompt_tokens": 1000}),
    # No tokens: the estimate; the strong model's estimate is its own baseline.
    (["medical"], "simulation", WEAK, 0.001, {}),
    (["medical"], "simulation", STRONG, 0.003, {}),
    # Unknown model: priced by its estimate, else unpriced.
    ([], "default", "in-house-model", 0.004, {"prompt_tokens": 5, "completion_tokens": 5}),
    ([], "default", "in-house-model", None, {"prompt_tokens": 5, "completion_tokens": 5}),
    (["creative"], "fallback", STRONG, None, {"success": False, "error": "timeout"}),
    (["creative"], "routellm", WEAK, None, {"prompt_tokens": 0, "completion_tokens": 0}),
    (["Scientific"], "routellm", "gpt-4o-mini", None, {"prompt_tokens": 7, "completion_tokens": 3}),
]
COMPARED = (
    "actual_cost",
    "baseline_cost",
    "estimated_savings",
    "unpriced_requests",
    "priced_requests",
    "total_requests",
    "routellm_requests",
    "success_rate",
    "fallback_rate",
    "strong_share",
    "average_cost",
)


def send(tracker: CostTracker, repeat: int) -> None:
    for i in range(repeat):
        for n, (domains, method, model, estimate, extra) in enumerate(EVENTS):
            tracker.track_routing_decision(
                f"prompt {i}-{n}", domains, method, model, estimate, latency_ms=10.0 + n, **extra
            )


def figures(report) -> dict[str, float]:
    return {name: round(getattr(report, name), 2) if isinstance(getattr(report, name), float)
            else getattr(report, name) for name in COMPARED}  # fmt: skip


def test_same_events__local_and_remote_reports_agree_to_the_cent(
    live_server, router, router_key, tmp_path, monkeypatch
):
    monkeypatch.delenv("ROUTEPLANE_URL", raising=False)
    monkeypatch.delenv("ROUTEPLANE_API_KEY", raising=False)
    local = CostTracker()
    remote = CostTracker(url=live_server.url, api_key=router_key, spool_dir=tmp_path)
    # Enough repeats that the totals run to dollars, so a rule difference shows in the cents.
    send(local, 40)
    send(remote, 40)

    assert remote.flush(timeout=30) is True
    assert remote.sent == 40 * len(EVENTS) and remote.dropped == 0
    local_report = local.get_cost_savings_report(period_days=1)
    remote_report = remote.get_cost_savings_report(period_days=1)
    remote.close()

    assert remote_report.total_requests == 40 * len(EVENTS)  # the server's, not a fallback
    assert figures(local_report) == figures(remote_report)
    assert local_report.actual_cost > 1.0 and local_report.estimated_savings > 0.5
    assert local_report.unpriced_requests == 2 * 40  # in-house-model and the failed call
    local_domains = {row["domain"]: figures_of(row) for row in local_report.by_domain}
    remote_domains = {row["domain"]: figures_of(row) for row in remote_report.by_domain}
    assert local_domains == remote_domains
    local_models = {row["model"]: figures_of(row) for row in local_report.by_model}
    remote_models = {row["model"]: figures_of(row) for row in remote_report.by_model}
    assert local_models == remote_models


def figures_of(row: dict) -> dict[str, float]:
    return {
        name: round(row[name], 2) if isinstance(row[name], float) else row[name]
        for name in COMPARED
        if name in row
    } | {"tier": row.get("tier")}


def send_with_outcomes(tracker: CostTracker, repeat: int) -> None:
    """The same decisions, each followed by its call's outcome: tokens the decision did not
    know, the call's latency, a failure now and then, and a quality score for most."""
    for i in range(repeat):
        for n, (domains, method, model, estimate, _extra) in enumerate(EVENTS):
            event_id = tracker.track_routing_decision(
                f"prompt {i}-{n}", domains, method, model, estimate, latency_ms=1.0
            )
            outcome = {
                "prompt_tokens": 100 + 37 * n + i,
                "completion_tokens": 20 + 11 * n,
                "latency_ms": 150.0 + n,
                "success": (i + n) % 9 != 0,
            }
            if n % 4:
                outcome["quality"] = round(((i * 7 + n * 3) % 10) / 10, 1)
            assert tracker.record_outcome(event_id, **outcome) is True


def test_same_calls_with_outcomes__local_and_remote_reports_agree(
    live_server, router, router_key, tmp_path, monkeypatch
):
    monkeypatch.delenv("ROUTEPLANE_URL", raising=False)
    monkeypatch.delenv("ROUTEPLANE_API_KEY", raising=False)
    local = CostTracker()
    remote = CostTracker(url=live_server.url, api_key=router_key, spool_dir=tmp_path)
    send_with_outcomes(local, 20)
    send_with_outcomes(remote, 20)

    assert remote.flush(timeout=60) is True
    local_report = local.get_cost_savings_report(period_days=1)
    remote_report = remote.get_cost_savings_report(period_days=1)
    remote.close()

    assert remote_report.total_requests == 20 * len(EVENTS)
    compared = (*COMPARED, "average_quality", "quality_samples")
    local_figures = {n: _rounded(getattr(local_report, n)) for n in compared}
    remote_figures = {n: _rounded(getattr(remote_report, n)) for n in compared}
    assert local_figures == remote_figures
    assert local_report.quality_samples == 20 * sum(1 for n in range(len(EVENTS)) if n % 4)
    assert local_report.success_rate < 1.0  # the outcomes' failures count
    for key in ("domain", "model"):
        local_rows = {r[key]: _row(r) for r in getattr(local_report, f"by_{key}")}
        remote_rows = {r[key]: _row(r) for r in getattr(remote_report, f"by_{key}")}
        assert local_rows == remote_rows


def _rounded(value):
    return round(value, 4) if isinstance(value, float) else value


def _row(row: dict) -> dict:
    names = (*COMPARED, "average_quality", "quality_samples")
    return {name: _rounded(row[name]) for name in names if name in row}
