"""The A/B report: the arms of one experiment compared over its window, with 95 % intervals.

Window: from the experiment's start to its stop (or its planned end, or now). Read from the raw
events of the window (router, timestamp index; events tagged `ab_group` control/treatment): the
rollups keep sums but no sums of squares, so they cannot give the variance of cost or quality,
nor an exact p95. One aggregate scan gives counts, means and sample variances per arm; one more
reads the three order statistics of each arm's latency p95 interval. Cost is one range scan of
the experiment's events: fine for experiments of up to a few million events; a longer one
should get sums of squares in the rollups.

Quality: averaged when the events table has a `quality` column (the outcomes work adds it);
until then `average_quality` is null and its comparison says so (QUALITY_COLUMN is the hook).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from controlplane.models import Experiment
from tracking.intervals import (
    Interval,
    newcombe_difference,
    quantile_difference,
    quantile_ranks,
    welch_difference,
)
from tracking.models import Event

ARMS = ("control", "treatment")
MIN_PER_ARM = 100  # below this many requests in an arm, no difference is called
QUALITY_COLUMN = "quality"


def has_quality() -> bool:
    return any(field.name == QUALITY_COLUMN for field in Event._meta.get_fields())


def _sums_sql(quality: bool) -> str:
    quality_sql = (
        f"avg({QUALITY_COLUMN}), coalesce(var_samp({QUALITY_COLUMN}), 0), count({QUALITY_COLUMN})"
        if quality
        else "NULL, 0, 0"
    )
    return f"""
        SELECT ab_group, count(*), count(*) FILTER (WHERE success),
               count(*) FILTER (WHERE fallback_used),
               avg(cost), coalesce(var_samp(cost), 0), count(cost),
               {quality_sql}, count(latency_ms)
        FROM tracking_event
        WHERE router_id = %(router)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
          AND ab_group = ANY(%(arms)s)
        GROUP BY ab_group
    """


_LATENCY_SQL = """
    SELECT percentile_disc(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY latency_ms)
    FROM tracking_event
    WHERE router_id = %(router)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
      AND ab_group = %(arm)s AND latency_ms IS NOT NULL
"""


def experiment_window(experiment: Experiment, now: datetime | None = None) -> tuple[Any, Any]:
    """(start, end) of the events an experiment's report reads; (None, None) before it ran."""
    if experiment.starts_at is None:
        return None, None
    now = now or timezone.now()
    end = experiment.stopped_at or now
    if experiment.ends_at is not None:
        end = min(end, experiment.ends_at)
    return experiment.starts_at, max(end, experiment.starts_at)


def _empty_arm() -> dict[str, Any]:
    return {
        "requests": 0,
        "successes": 0,
        "fallbacks": 0,
        "priced_requests": 0,
        "cost_per_request": 0.0,
        "cost_variance": 0.0,
        "average_quality": None,
        "quality_variance": 0.0,
        "quality_samples": 0,
        "latency_samples": 0,
        "latency_p95_ms": 0.0,
        "latency_p95_interval": None,
    }


def _arm_figures(params: dict[str, Any], quality: bool) -> dict[str, dict[str, Any]]:
    arms = {arm: _empty_arm() for arm in ARMS}
    with connection.cursor() as cursor:
        cursor.execute(_sums_sql(quality), params | {"arms": list(ARMS)})
        for row in cursor.fetchall():
            group, n, ok, fallbacks, cost, cost_var, priced, q, q_var, q_n, latencies = row
            arms[group].update(
                requests=n,
                successes=ok,
                fallbacks=fallbacks,
                cost_per_request=float(cost or 0.0),
                cost_variance=float(cost_var),
                priced_requests=priced,
                average_quality=None if q is None else float(q),
                quality_variance=float(q_var),
                quality_samples=q_n,
                latency_samples=latencies,
            )
        for arm, figures in arms.items():
            n = figures["latency_samples"]
            if not n:
                continue
            ranks = quantile_ranks(n, 0.95)
            cursor.execute(_LATENCY_SQL, params | {"arm": arm, "fractions": [r / n for r in ranks]})
            low, point, high = (float(v) for v in cursor.fetchone()[0])
            figures["latency_p95_ms"] = point
            figures["latency_p95_interval"] = [low, high]
    for figures in arms.values():
        n = figures["requests"]
        figures["success_rate"] = figures["successes"] / n if n else 0.0
        figures["fallback_rate"] = figures["fallbacks"] / n if n else 0.0
    return arms


def _verdict(interval: Interval | None, n_t: int, n_c: int, lower_is_better: bool) -> str:
    if interval is None or min(n_t, n_c) < MIN_PER_ARM:
        return (
            f"too few requests to tell (each arm needs at least {MIN_PER_ARM}; "
            f"control {n_c}, treatment {n_t})"
        )
    if interval.crosses_zero:
        return "no clear difference: the 95 % interval includes 0"
    higher = interval.low > 0
    better = higher != lower_is_better
    return f"treatment {'higher' if higher else 'lower'} ({'better' if better else 'worse'})"


def _comparison(
    metric: str,
    control: float | None,
    treatment: float | None,
    interval: Interval | None,
    n_t: int,
    n_c: int,
    *,
    lower_is_better: bool,
) -> dict[str, Any]:
    conclusive = interval is not None and min(n_t, n_c) >= MIN_PER_ARM and not interval.crosses_zero
    return {
        "metric": metric,
        "control": control,
        "treatment": treatment,
        "difference": None if interval is None else interval.difference,
        "ci_low": None if interval is None else interval.low,
        "ci_high": None if interval is None else interval.high,
        "conclusive": conclusive,
        "verdict": _verdict(interval, n_t, n_c, lower_is_better),
    }


def compare_arms(arms: dict[str, dict[str, Any]], *, quality: bool) -> list[dict[str, Any]]:
    """Every metric's difference (treatment - control) with its 95 % interval and verdict."""
    c, t = arms["control"], arms["treatment"]
    rows = [
        _comparison(
            "cost_per_request",
            c["cost_per_request"],
            t["cost_per_request"],
            welch_difference(
                mean_t=t["cost_per_request"],
                var_t=t["cost_variance"],
                n_t=t["priced_requests"],
                mean_c=c["cost_per_request"],
                var_c=c["cost_variance"],
                n_c=c["priced_requests"],
            ),
            t["priced_requests"],
            c["priced_requests"],
            lower_is_better=True,
        )
    ]
    for metric, count, lower_is_better in (
        ("success_rate", "successes", False),
        ("fallback_rate", "fallbacks", True),
    ):
        interval = newcombe_difference(
            x_t=t[count], n_t=t["requests"], x_c=c[count], n_c=c["requests"]
        )
        rows.append(
            _comparison(
                metric,
                c[metric],
                t[metric],
                interval,
                t["requests"],
                c["requests"],
                lower_is_better=lower_is_better,
            )
        )
    if quality:
        interval = welch_difference(
            mean_t=t["average_quality"] or 0.0,
            var_t=t["quality_variance"],
            n_t=t["quality_samples"],
            mean_c=c["average_quality"] or 0.0,
            var_c=c["quality_variance"],
            n_c=c["quality_samples"],
        )
        rows.append(
            _comparison(
                "average_quality",
                c["average_quality"],
                t["average_quality"],
                interval,
                t["quality_samples"],
                c["quality_samples"],
                lower_is_better=False,
            )
        )
    else:
        rows.append(
            {
                "metric": "average_quality",
                "control": None,
                "treatment": None,
                "difference": None,
                "ci_low": None,
                "ci_high": None,
                "conclusive": False,
                "verdict": "quality is not recorded by this server yet",
            }
        )
    latency = None
    if c["latency_p95_interval"] and t["latency_p95_interval"]:
        latency = quantile_difference(
            treatment=(
                t["latency_p95_interval"][0],
                t["latency_p95_ms"],
                t["latency_p95_interval"][1],
            ),
            control=(
                c["latency_p95_interval"][0],
                c["latency_p95_ms"],
                c["latency_p95_interval"][1],
            ),
        )
    rows.append(
        _comparison(
            "latency_p95_ms",
            c["latency_p95_ms"],
            t["latency_p95_ms"],
            latency,
            t["latency_samples"],
            c["latency_samples"],
            lower_is_better=True,
        )
    )
    return rows


def experiment_report(*, experiment: Experiment, now: datetime | None = None) -> dict[str, Any]:
    """The experiment, its window, each arm's figures and the comparisons."""
    start, end = experiment_window(experiment, now)
    quality = has_quality()
    if start is None:
        arms = {arm: _empty_arm() | {"success_rate": 0.0, "fallback_rate": 0.0} for arm in ARMS}
    else:
        params = {"router": experiment.router_id, "start": start, "end": end}
        arms = _arm_figures(params, quality)
    comparisons = compare_arms(arms, quality=quality)
    return {
        "experiment": experiment_output(experiment),
        "window": {
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
        },
        "min_requests_per_arm": MIN_PER_ARM,
        "arms": arms,
        "comparisons": comparisons,
        "conclusive": any(row["conclusive"] for row in comparisons),
    }


def experiment_output(experiment: Experiment) -> dict[str, Any]:
    """An experiment as the API and the dashboard show it."""

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": experiment.pk,
        "router": experiment.router.slug,
        "name": experiment.name,
        "status": experiment.status,
        "split": experiment.split,
        "treatment_threshold": experiment.treatment_threshold,
        "starts_at": iso(experiment.starts_at),
        "ends_at": iso(experiment.ends_at),
        "stopped_at": iso(experiment.stopped_at),
        "conclusion": experiment.conclusion,
        "applied_revision": experiment.applied_revision,
        "created_by": experiment.created_by,
        "created_at": iso(experiment.created_at),
    }
