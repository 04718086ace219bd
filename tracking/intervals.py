"""95 % confidence intervals for the difference of two arms (no scipy: the formulas are here).

- Means (cost per request, quality): Welch's standard error with the normal approximation,
  d = m_t - m_c, se = sqrt(s_t^2/n_t + s_c^2/n_c), d +- 1.96 se. Fine for the per-arm sizes the
  A/B report asks for (MIN_PER_ARM) and beyond, where the t and normal quantiles agree.
- Proportions (success, fallback): Newcombe's hybrid score interval (his method 10) built from
  each arm's Wilson interval: L = d - sqrt((p_t - l_t)^2 + (u_c - p_c)^2),
  U = d + sqrt((u_t - p_t)^2 + (p_c - l_c)^2).
- A quantile (p95 latency): each arm's distribution-free interval from order statistics
  (ranks n q -+ z sqrt(n q (1 - q))) at 97.5 %, combined as [lo_t - hi_c, hi_t - lo_c]: both
  arm intervals hold with probability >= 0.975^2 > 0.95, and then so does the difference's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # two-sided 95 %: the 97.5th percentile of N(0, 1)
Z_975 = 2.241402727604947  # two-sided 97.5 %: the 98.75th percentile of N(0, 1)


@dataclass(frozen=True)
class Interval:
    difference: float  # treatment - control
    low: float
    high: float

    @property
    def crosses_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def welch_difference(
    *, mean_t: float, var_t: float, n_t: int, mean_c: float, var_c: float, n_c: int
) -> Interval | None:
    """Difference of means with sample variances; None when an arm has fewer than 2 values."""
    if n_t < 2 or n_c < 2:
        return None
    se = math.sqrt(var_t / n_t + var_c / n_c)
    difference = mean_t - mean_c
    return Interval(difference, difference - Z_95 * se, difference + Z_95 * se)


def wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_difference(*, x_t: int, n_t: int, x_c: int, n_c: int) -> Interval | None:
    """Difference of two proportions (treatment - control); None when an arm is empty."""
    if n_t == 0 or n_c == 0:
        return None
    p_t, p_c = x_t / n_t, x_c / n_c
    l_t, u_t = wilson(x_t, n_t)
    l_c, u_c = wilson(x_c, n_c)
    difference = p_t - p_c
    low = difference - math.sqrt((p_t - l_t) ** 2 + (u_c - p_c) ** 2)
    high = difference + math.sqrt((u_t - p_t) ** 2 + (p_c - l_c) ** 2)
    return Interval(difference, low, high)


def quantile_ranks(n: int, q: float, z: float = Z_975) -> tuple[int, int, int]:
    """1-based ranks (low, point, high) of a quantile's order-statistic interval in n values."""
    spread = z * math.sqrt(n * q * (1 - q))
    point = max(1, math.ceil(n * q))
    low = min(n, max(1, math.floor(n * q - spread)))
    high = min(n, max(1, math.ceil(n * q + spread)))
    return low, point, high


def quantile_difference(
    *, treatment: tuple[float, float, float], control: tuple[float, float, float]
) -> Interval:
    """(low, point, high) per arm (values at quantile_ranks) -> the difference's interval."""
    t_low, t_point, t_high = treatment
    c_low, c_point, c_high = control
    return Interval(t_point - c_point, t_low - c_high, t_high - c_low)
