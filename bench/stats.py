"""Pure summaries of benchmark samples: percentiles, medians and ratios (no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by nearest rank; None when there are no samples."""
    if not samples:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float | int | None]:
    """p50 / p99 / p99.9 / max of latencies in milliseconds, with the sample count."""
    ordered = sorted(samples_ms)
    return {
        "samples": len(ordered),
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "p999_ms": percentile(ordered, 99.9),
        "max_ms": ordered[-1] if ordered else None,
    }


def median(values: Sequence[float]) -> float | None:
    """Median of `values` (mean of the middle two for an even count); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator
