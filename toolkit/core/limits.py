"""Every limit on a number or a name a user hands vtk, defined once for both doors.

`vtk bench --threads 0` and `vtk_vision.benchmark(run, threads=[0])` must be refused alike, before any
work: the CLI's option types (cli/options.py `Bounded`, cli/bench.py's lists) and the options the Python
API builds (`BenchOptions`, `ExportOptions`, `TrainConfig`) check against the same `Limit`s. The options
objects name what was wrong as Python spells it (`threads=[-1]`), since a value the CLI has checked never
fails there again. Torch-free: `vtk --help` imports this.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vtk_vision.core.errors import VtkError

__all__ = ["BENCH_LIMITS", "EXPORT_LIMITS", "Limit", "OptionError", "choice", "names", "number", "numbers"]


class OptionError(VtkError, ValueError):
    """A value an option cannot take: one line at the CLI, and the ValueError Python code expects."""


@dataclass(frozen=True)
class Limit:
    """The finite values a numeric option may take. NaN and infinity never pass, so never reach run.json."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        fmt = (lambda v: f"{int(v):,}") if self.integer else (lambda v: f"{v:g}")
        bounds = [f"{'>' if self.low_open else '>='} {fmt(self.low)}"] if self.low is not None else []
        bounds += [f"{'<' if self.high_open else '<='} {fmt(self.high)}"] if self.high is not None else []
        return f"{'a whole number' if self.integer else 'a finite number'} {' and '.join(bounds)}".strip()

    def allows(self, value: Any) -> bool:
        ok_type = isinstance(value, int) if self.integer else isinstance(value, (int, float))
        return not (isinstance(value, bool) or not ok_type or not math.isfinite(value)
                    or (self.low is not None and (value < self.low or (self.low_open and value == self.low)))
                    or (self.high is not None and (value > self.high or (self.high_open and value == self.high))))

    def check(self, name: str, value: Any) -> None:
        if not self.allows(value):
            raise ValueError(f"{name} must be {self.describe()}, not {value!r}")


# `vtk bench` / benchmark(): per-call timing and the grid of rows.
BENCH_LIMITS: dict[str, Limit] = {
    "batch_sizes": Limit(1, 10_000_000, integer=True),
    "threads": Limit(1, 1024, integer=True),
    "warmup_s": Limit(0, 600),
    "min_iters": Limit(1, 10_000_000, integer=True),
    "min_s": Limit(0, 600),
    "max_spread": Limit(1, 100),
    "max_rounds": Limit(1, 10, integer=True),
    "max_time_s": Limit(0, 7 * 86_400, low_open=True),
}
# `vtk export` / export().
EXPORT_LIMITS: dict[str, Limit] = {
    "opset": Limit(1, 1000, integer=True),
    "batch_size": Limit(1, 1 << 20, integer=True),
    "calibration_size": Limit(1, 100_000, integer=True),
    "max_accuracy_drop": Limit(0, 100),
    "atol": Limit(0, 1e6),
    "rtol": Limit(0, 1e6),
}


def _shown(value: Any) -> str:
    return repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."


def number(argument: str, value: Any, limit: Limit) -> Any:
    """`value` if `limit` allows it, else an OptionError naming `argument=`."""
    if not limit.allows(value):
        raise OptionError(f"{argument}={_shown(value)}: must be {limit.describe()}")
    return value


def _many(value: Any, single: type | tuple[type, ...]) -> tuple | None:
    """A bare value is one of it (`runtimes="onnx"` is one runtime, never the letters o, n, n, x); None where
    `value` is neither that nor a list or tuple."""
    if isinstance(value, single):
        return (value,)
    return tuple(value) if isinstance(value, (list, tuple)) else None


def numbers(argument: str, value: Any, limit: Limit, allow_empty: bool = False) -> tuple:
    """One number or a list of them, each allowed by `limit`, repeats dropped."""
    items = _many(value, (int, float))
    if items is None or (not items and not allow_empty) or not all(limit.allows(v) for v in items):
        raise OptionError(f"{argument}={_shown(value)}: give one or a list of numbers, each {limit.describe()}")
    return tuple(dict.fromkeys(items))


def names(argument: str, value: Any, valid: Iterable[str], kind: str) -> tuple[str, ...]:
    """One name or a list of them, each one of `valid`, repeats dropped."""
    valid = tuple(valid)
    items = _many(value, str)
    bad = [v for v in items or () if v not in valid]
    if not items or bad:
        what = f"unknown {kind} {_shown(bad[0])}" if bad else f"give one {kind} or a list of them"
        raise OptionError(f"{argument}={_shown(value)}: {what}; choose from {', '.join(valid)}")
    return tuple(dict.fromkeys(items))


def choice(argument: str, value: Any, valid: Iterable[str]) -> str:
    """`value` if it is one of `valid`, else an OptionError naming `argument=` and the choices."""
    valid = tuple(valid)
    if value not in valid or not isinstance(value, str):
        raise OptionError(f"{argument}={_shown(value)}: choose from {', '.join(valid)}")
    return value
