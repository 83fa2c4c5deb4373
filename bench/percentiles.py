"""How many samples a percentile needs before vtk prints it as a figure.

    min_samples(0.99)                 # 662
    shown(lat["p99"], lat["n"], 0.99)  # "0.0312", or "n<662" from fewer samples

The bound is MLPerf LoadGen's early-stopping minimum (loadgen/early_stopping.cc,
`PerformanceSummary::EarlyStopping` for the single-stream scenario, confidence
0.99, tolerance 0): the fewest queries n such that, with one of them over the
percentile's latency, the odds of seeing at most one over it in n independent
calls are at most 1%, were the true percentile any lower:

    P(Bin(n, 1 - q) <= 1) = q**n + n (1 - q) q**(n - 1) <= 0.01

It gives p50: 11, p90: 64, p99: 662, p99.9: 6,636, the figures LoadGen prints
("Need to process at least 662 queries for early stopping"). A p99 from 80
calls is the 80th-largest of 80 values, the maximum: a figure that says
nothing about the 99th percentile, so the table shows `n<662` instead.
"""

from __future__ import annotations

from functools import cache

__all__ = ["CONFIDENCE", "min_samples", "shown", "trusted"]

CONFIDENCE = 0.99  # LoadGen's early-stopping confidence


@cache
def min_samples(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest samples whose nearest-rank `q` percentile (0 < q < 1) LoadGen's early stopping accepts."""
    if not 0 < q < 1:
        raise ValueError(f"a percentile is a fraction between 0 and 1, not {q}")

    def passes(n: int) -> bool:  # odds of at most one of n calls above the q percentile
        return q ** n + n * (1 - q) * q ** (n - 1) <= 1 - confidence

    low, high = 2, 2
    while not passes(high):  # the odds fall monotonically in n: double, then bisect
        low, high = high, high * 2
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if passes(mid) else (mid + 1, high)
    return high


def trusted(n: object, q: float) -> bool:
    """Whether `n` samples are enough for the `q` percentile; an unknown count is not."""
    return isinstance(n, int) and not isinstance(n, bool) and n >= min_samples(q)


def shown(value: float | None, n: object, q: float, fmt: str = ".4f") -> str:
    """The percentile as a table cell: the figure, 'n<662' from too few samples, 'n?' where the file does not
    say how many (written before counts were kept), '-' where not measured."""
    if value is None:
        return "-"
    return format(value, fmt) if trusted(n, q) else f"n<{min_samples(q)}" if isinstance(n, int) else "n?"
