"""Host memory of one runtime, not of the process so far.

The process high-water mark (getrusage's ru_maxrss, VmHWM) only grows, so a
runtime measured after a larger one would inherit its peak. Linux lets a
process reset its own high-water mark (writing "5" to /proc/self/clear_refs,
proc(5)); so before a runtime loads we note the resident set and reset the
mark (again before each batch), and a row's figure is the new mark minus that
baseline. Where the kernel does not allow it (not Linux, an old kernel, a
locked-down /proc) the figure is None with the reason, never a guess.

Before the baseline, garbage is collected and glibc is asked to give freed
heap back (malloc_trim), so that a later runtime's allocations show in the
resident set instead of quietly reusing what an earlier runtime freed. What an
allocator still keeps can be reused that way, so a figure can only err low.
Libraries stay loaded once used: a runtime's first rows in a process carry
their one-time cost (2-core AMD EPYC, LeNet-5 at batch 1: ONNX Runtime 29 MB
on its first thread count, 6 MB on the next; OpenVINO 64 MB, then 7 MB),
which MEASURE says.

    window = MemoryWindow.start()   # before the runtime loads
    ...                             # load, time
    window.peak_mb()                # -> (MB above the baseline, None) or (None, why not)
"""

from __future__ import annotations

import ctypes
import gc
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MEASURE", "MemoryWindow"]

MEASURE = ("runtime_memory_mb: peak resident set during the row (VmHWM, reset through /proc/self/clear_refs "
           "before the runtime loaded and before each batch) minus the resident set just before the runtime "
           "loaded; host memory only. The first rows of a runtime in the process also carry its libraries' "
           "one-time cost (code and global state loaded at first use); its later thread counts show what a "
           "session adds")

_STATUS, _CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} missing from {_STATUS}")


def _release_freed() -> None:
    """Collect garbage and hand freed heap back to the kernel (glibc only; elsewhere a no-op)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class MemoryWindow:
    """The resident set when a runtime's window opened, or why it cannot be measured here."""

    baseline_kib: int | None
    problem: str | None = None

    @classmethod
    def start(cls) -> MemoryWindow:
        """Note the resident set now and reset the high-water mark to it."""
        _release_freed()
        try:
            baseline = _status_kib("VmRSS")
            _CLEAR.write_text("5")
            if _status_kib("VmHWM") > baseline + 1024:  # the write was accepted but did not reset the mark
                return cls(None, "this kernel does not reset VmHWM through /proc/self/clear_refs")
        except (OSError, ValueError) as e:
            return cls(None, f"per-runtime memory needs Linux's /proc/self/clear_refs ({type(e).__name__}: {e})")
        return cls(baseline)

    def reset_peak(self) -> None:
        """Start a new peak from the resident set now; the baseline stays the one from before the load."""
        if self.baseline_kib is not None:
            try:
                _CLEAR.write_text("5")
            except OSError:
                pass  # start() succeeded, so this does not happen; if it did, the figure could only err high

    def peak_mb(self) -> tuple[float | None, str | None]:
        """(MB the runtime added at its peak, None), or (None, why there is no figure)."""
        if self.baseline_kib is None:
            return None, self.problem
        try:
            return max(0, _status_kib("VmHWM") - self.baseline_kib) / 1024, None
        except (OSError, ValueError) as e:
            return None, f"could not read {_STATUS} ({type(e).__name__})"
