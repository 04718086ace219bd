"""What-if replay: the window's calls with a strong win rate, re-routed at another threshold.

Per (bucket, tier, side) of the win-rate histogram (tracking.winrates) the replay decides the
side each call would be on at the new threshold t (strong when win rate >= t):
- a bucket entirely at or above t: strong side; entirely below t: weak side;
- the one bucket that t splits keeps its calls where they were (the observed split).
A call whose side does not change keeps its observed tier and cost, so the replay at the
threshold the calls were routed with reproduces the observed figures exactly. A call that moves
to the strong side and was served by the weak model costs its baseline (the same tokens at the
strong model, as the savings report prices it); one that moves to the weak side and was served
by the strong model costs its tokens at the current weak model's price (else at the window's
weak/strong cost ratio). Fallbacks and "other" tiers stay as observed.

Quality (outcomes' 0-1 scores, where recorded): a call that keeps its side keeps its score; a
moved call takes the average score of the calls its new tier served in the same bucket, else in
the whole window, else keeps its own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from controlplane.models import Router
from tracking.calibration import current_threshold, window_start
from tracking.models import WINRATE_BUCKETS
from tracking.selectors import price_book
from tracking.winrates import BucketSums, winrate_histogram


@dataclass(frozen=True)
class Figures:
    requests: int
    strong: int
    weak: int
    other: int
    strong_share: float
    cost: float
    baseline_cost: float
    savings: float
    savings_fraction: float
    average_quality: float | None  # None: no quality recorded
    quality_samples: int


def _figures(
    requests: int,
    strong: int,
    weak: int,
    cost: float,
    baseline: float,
    quality: tuple[float, float] = (0, 0.0),
) -> Figures:
    samples, total = quality
    return Figures(
        requests=requests,
        strong=strong,
        weak=weak,
        other=requests - strong - weak,
        strong_share=round(strong / requests, 6) if requests else 0.0,
        cost=cost,
        baseline_cost=baseline,
        savings=baseline - cost,
        savings_fraction=round((baseline - cost) / baseline, 6) if baseline > 0 else 0.0,
        average_quality=round(total / samples, 6) if samples else None,
        quality_samples=int(round(samples)),
    )


def side_at(bucket: int, threshold: float) -> bool | None:
    """True: the whole bucket routes strong at `threshold`; False: weak; None: it splits."""
    edge = threshold * WINRATE_BUCKETS
    whole = round(edge)
    if math.isclose(edge, whole, abs_tol=1e-9):
        return bucket >= whole
    if bucket == math.floor(edge):
        return None
    return bucket > edge


def observed(histogram: list[BucketSums]) -> Figures:
    return _figures(
        sum(r.requests for r in histogram),
        sum(r.requests for r in histogram if r.tier == "strong"),
        sum(r.requests for r in histogram if r.tier == "weak"),
        sum(r.cost for r in histogram),
        sum(r.baseline for r in histogram),
        (sum(r.quality_count for r in histogram), sum(r.quality_sum for r in histogram)),
    )


def replay(
    histogram: list[BucketSums], threshold: float, weak_price: tuple[float, float] | None
) -> Figures:
    """The figures had the histogram's calls been routed at `threshold`; `weak_price` is the
    weak model's (input, output) price per token, None when unknown."""
    weak_rows = [r for r in histogram if r.tier == "weak"]
    weak_baseline = sum(r.baseline for r in weak_rows)
    ratio = sum(r.cost for r in weak_rows) / weak_baseline if weak_baseline > 0 else 1.0
    # (tier, bucket) and tier -> [samples, sum] of the observed quality scores.
    scores: dict[tuple[str, int | None], list[float]] = {}
    for r in histogram:
        for key in ((r.tier, r.bucket), (r.tier, None)):
            score = scores.setdefault(key, [0, 0.0])
            score[0] += r.quality_count
            score[1] += r.quality_sum
    strong = weak = 0
    cost = quality = 0.0
    for row in histogram:
        side = side_at(row.bucket, threshold)
        tier, row_cost, row_quality = row.tier, row.cost, row.quality_sum
        if side is True and not row.above and tier == "weak":
            tier, row_cost = "strong", row.baseline
        elif side is False and row.above and tier == "strong":
            tier = "weak"
            if weak_price is not None:
                row_cost = row.prompt_tokens * weak_price[0] + row.completion_tokens * weak_price[1]
            else:
                row_cost = row.cost * ratio
        if tier != row.tier and row.quality_count:
            for key in ((tier, row.bucket), (tier, None)):
                samples, total = scores.get(key, (0, 0.0))
                if samples:
                    row_quality = row.quality_count * total / samples
                    break
        quality += row_quality
        strong += row.requests if tier == "strong" else 0
        weak += row.requests if tier == "weak" else 0
        cost += row_cost
    requests = sum(r.requests for r in histogram)
    samples = sum(r.quality_count for r in histogram)
    return _figures(requests, strong, weak, cost, sum(r.baseline for r in histogram),
                    (samples, quality))  # fmt: skip


@dataclass(frozen=True)
class WhatIf:
    router: str
    domain: str | None
    days: int
    start: str
    threshold: float
    current_threshold: float
    observed: Figures
    predicted: Figures

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def what_if(
    *,
    router: Router,
    threshold: float,
    days: int,
    domain: str | None = None,
    now: datetime | None = None,
) -> WhatIf:
    """Observed vs predicted figures of the last `days` whole UTC days at `threshold`."""
    config = router.current_revision.config
    start = window_start(days, now)
    histogram = winrate_histogram(router_id=router.pk, start=start, domain=domain)
    price = price_book().price(config.get("weak_model"), now or datetime.now(UTC))
    weak_price = (price.input, price.output) if price is not None else None
    return WhatIf(
        router=router.slug,
        domain=domain,
        days=days,
        start=start.isoformat(),
        threshold=threshold,
        current_threshold=current_threshold(config, domain),
        observed=observed(histogram),
        predicted=replay(histogram, threshold, weak_price),
    )
