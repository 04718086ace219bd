"""The interval formulas against published, hand-checkable figures."""

from __future__ import annotations

import math

import pytest

from tracking.intervals import (
    newcombe_difference,
    quantile_difference,
    quantile_ranks,
    welch_difference,
    wilson,
)


def test_wilson__newcombe_1998_single_proportion_example():
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", 81/263.
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize(
    ("x_t", "n_t", "x_c", "n_c", "expected"),
    [
        # Newcombe (1998), "Interval estimation for the difference between independent
        # proportions", Table II, method 10: examples (a) and (d).
        (56, 70, 48, 80, (0.0524, 0.3339)),
        (9, 10, 3, 10, (0.1705, 0.8090)),
    ],
)
def test_newcombe__published_examples(x_t, n_t, x_c, n_c, expected):
    interval = newcombe_difference(x_t=x_t, n_t=n_t, x_c=x_c, n_c=n_c)
    assert (round(interval.low, 4), round(interval.high, 4)) == expected
    assert interval.difference == pytest.approx(x_t / n_t - x_c / n_c)


def test_welch__hand_computed():
    # se = sqrt(0.0001/400 + 0.0004/100) = sqrt(4.25e-6) = 0.00206155;
    # -0.003 -+ 1.959964 * 0.00206155 = (-0.0070406, 0.0010406): crosses zero.
    interval = welch_difference(
        mean_t=0.012, var_t=0.0001, n_t=400, mean_c=0.015, var_c=0.0004, n_c=100
    )
    assert interval.difference == pytest.approx(-0.003)
    assert interval.low == pytest.approx(-0.0070406, abs=1e-7)
    assert interval.high == pytest.approx(0.0010406, abs=1e-7)
    assert interval.crosses_zero


def test_welch__one_value_per_arm__no_interval():
    assert welch_difference(mean_t=1, var_t=0, n_t=1, mean_c=1, var_c=0, n_c=5) is None


def test_quantile_ranks__order_statistics_around_n_q():
    # 1000 x 0.95 = 950; z(97.5 %) = 2.2414 x sqrt(1000 x 0.95 x 0.05) = 15.45.
    assert quantile_ranks(1000, 0.95) == (934, 950, 966)
    assert quantile_ranks(1, 0.95) == (1, 1, 1)


def test_quantile_difference__outer_bounds():
    interval = quantile_difference(treatment=(90.0, 100.0, 115.0), control=(80.0, 85.0, 95.0))
    assert (interval.difference, interval.low, interval.high) == (15.0, -5.0, 35.0)
    assert interval.crosses_zero
    assert not math.isnan(interval.low)
