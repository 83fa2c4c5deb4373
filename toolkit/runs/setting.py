"""How a run trains (precision, threads, kernels, memory layout) and the figures that chose it.

A run.json field of its own (`tuning`), versioned on its own: it is a record
of what was measured, not something later commands need to rebuild the model,
so a run.json from before it (no `tuning`) loads as before, and a `tuning`
from a newer vtk is left out (None) rather than refusing the whole run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["Setting", "Figure", "TuningRecord", "TUNING_VERSION", "AMPS", "KERNELS", "LAYOUTS", "HOWS"]

TUNING_VERSION = 1
AMPS = ("fp32", "bf16", "fp16")
KERNELS = ("vtk", "torch")
LAYOUTS = ("contiguous", "channels_last")
# measured: timed in this run; cached: a measured answer this user's vtk kept; fixed: the user's options decided
# everything; default: not measured (the reason is in `note`); resumed: the interrupted run's own setting
HOWS = ("measured", "cached", "fixed", "default", "resumed")


@dataclass(frozen=True)
class Setting:
    """One way to run the training step."""

    amp: str = "fp32"            # autocast dtype, or fp32 for none
    threads: int = 1             # PyTorch's intra-op threads (CPU work; on CUDA the data path)
    kernels: str = "torch"       # vtk: toolkit/core/fastpath.py's CPU kernels (fp32 only)
    layout: str = "contiguous"   # memory format of the model and its inputs

    def __post_init__(self):
        for name, allowed in (("amp", AMPS), ("kernels", KERNELS), ("layout", LAYOUTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} should be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads should be a whole number from 1, not {self.threads!r}")

    def describe(self, device: str = "cpu") -> str:
        """'fp32, 2 threads, vtk kernels': the parts that mean something on `device`."""
        parts = [self.amp]
        if device == "cpu":
            parts += [f"{self.threads} thread{'s' * (self.threads != 1)}", f"{self.kernels} kernels"]
        if self.layout != "contiguous":
            parts.append(self.layout)
        return ", ".join(parts)

    def differs(self, other: Setting) -> str:
        """What sets this setting apart from `other`, in the words of the summary line ('1 thread', 'bf16')."""
        words = {"amp": self.amp, "threads": f"{self.threads} thread{'s' * (self.threads != 1)}",
                 "kernels": f"{self.kernels} kernels", "layout": self.layout}
        if self.amp != other.amp:  # vtk's kernels are fp32-only: another precision brings PyTorch's with it
            words.pop("kernels")
        return ", ".join(w for k, w in words.items() if getattr(self, k) != getattr(other, k)) or "same"


@dataclass(frozen=True)
class Figure:
    """One candidate as the probe saw it."""

    setting: Setting
    stage: str                        # threads, precision/kernels, layout
    images_per_s: float | None        # median of the timed samples; None when it never ran a timed step
    samples: int = 0
    finite: bool = True               # loss and gradients of one step were finite: required to be chosen
    note: str = ""                    # e.g. "stopped after warm-up: 3.2x slower"


@dataclass(frozen=True)
class TuningRecord:
    """The setting a run trained with, how it was decided, and every figure behind it."""

    chosen: Setting
    how: str
    device: str = "cpu"
    candidates: tuple[Figure, ...] = ()
    note: str = ""                    # why not measured, or where a cached answer came from
    fixed: tuple[str, ...] = ()       # options the user gave: amp, threads, kernels
    probe_s: float = 0.0              # time this run spent measuring
    planned_s: float | None = None    # the run's training steps as the probe estimated them
    key: str = ""                     # the cache key (training/tuning.py)
    version: int = TUNING_VERSION

    def moved(self, **changes) -> TuningRecord:
        return replace(self, **changes)

    def summary(self) -> str:
        """The one line printed before the first epoch: the choice, then each stage's runner-up against it."""
        head = f"{self.device} {self.chosen.describe(self.device)}"
        if self.how == "fixed":
            return f"{head} (set by {', '.join('--' + f for f in self.fixed)}; nothing measured)"
        if self.how in ("default", "resumed"):
            return f"{head} ({self.note})"
        tail = ", ".join(self.comparisons()) or "one candidate"
        if self.how == "cached":
            return f"{head} (cached {self.note}: {tail})"
        return f"{head} (measured in {self.probe_s:.1f} s: {tail})"

    @property
    def chosen_rate(self) -> float | None:
        """The chosen setting's images/s in the last stage that timed it."""
        return next((f.images_per_s for f in reversed(self.candidates) if f.setting == self.chosen and f.samples),
                    None)

    def comparisons(self) -> list[str]:
        """'bf16 2.6x slower' for the best loser of each stage, against the stage's chosen setting."""
        out = []
        for stage in dict.fromkeys(f.stage for f in self.candidates):
            rows = [f for f in self.candidates if f.stage == stage]
            best = max((f for f in rows if f.finite and f.images_per_s), key=lambda f: f.images_per_s, default=None)
            for f in rows:
                if best is None or f is best:
                    continue
                what = f.setting.differs(best.setting)
                if not f.finite:
                    out.append(f"{what} non-finite")
                elif f.images_per_s:
                    ratio = best.images_per_s / f.images_per_s
                    out.append(f"{what} {ratio:.2f}x slower" if ratio >= 1 else f"{what} {1 / ratio:.2f}x faster")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> TuningRecord | None:
        """From run.json's `tuning` or the cache; None for a newer version. Raises ValueError when malformed."""
        if not isinstance(d, dict):
            raise ValueError(f"should be an object, not {type(d).__name__}")
        version = d.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"'version' should be a whole number from 1, got {version!r}")
        if version > TUNING_VERSION:
            return None
        try:
            chosen = Setting(**d["chosen"])
            figures = tuple(Figure(**f | {"setting": Setting(**f["setting"])}) for f in d.get("candidates", []))
            fixed = tuple(d.get("fixed", ()))
            rec = cls(chosen, d["how"], d.get("device", "cpu"), figures, d.get("note", ""), fixed,
                      d.get("probe_s", 0.0), d.get("planned_s"), d.get("key", ""), version)
        except (KeyError, TypeError) as e:
            raise ValueError(f"is not a tuning record ({type(e).__name__}: {e})") from None
        if rec.how not in HOWS:
            raise ValueError(f"'how' should be one of {', '.join(HOWS)}, got {rec.how!r}")
        numbers = [rec.probe_s, rec.planned_s, *(f.images_per_s for f in figures)]
        if any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                                  or v < 0) for v in numbers):
            raise ValueError("holds a time or a throughput that is not a finite number >= 0")
        return rec
