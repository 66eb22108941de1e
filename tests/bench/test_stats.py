"""bench.stats: percentiles, medians and ratios, checked against their definitions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.stats import latency_summary, median, percentile, ratio

samples = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200)


@given(samples, st.floats(0, 100))
def test_percentile_is_a_sample_with_enough_below(xs: list[float], q: float) -> None:
    p = percentile(xs, q)
    assert p in xs
    at_or_below = sum(1 for x in xs if x <= p)
    assert at_or_below >= math.ceil(q / 100 * len(xs))
    assert sum(1 for x in xs if x < p) < max(1, math.ceil(q / 100 * len(xs)))


@given(samples)
def test_percentiles_are_ordered(xs: list[float]) -> None:
    s = latency_summary(xs)
    assert s["samples"] == len(xs)
    assert min(xs) <= s["p50_ms"] <= s["p99_ms"] <= s["p999_ms"] <= s["max_ms"] == max(xs)  # type: ignore[operator]


@given(samples)
def test_median_splits_the_samples(xs: list[float]) -> None:
    m = median(xs)
    assert m is not None
    assert sum(1 for x in xs if x < m) <= len(xs) // 2
    assert sum(1 for x in xs if x > m) <= len(xs) // 2


def test_empty_and_missing() -> None:
    assert percentile([], 50) is None
    assert median([]) is None
    assert latency_summary([])["p99_ms"] is None
    assert ratio(None, 2.0) is None
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None
    assert ratio(3.0, 2.0) == 1.5
    assert median([1.0, 2.0, 10.0, 20.0]) == 6.0


def test_percentile_out_of_range() -> None:
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)
