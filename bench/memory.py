"""Host memory of one runtime, not of the process so far.

The process high-water mark (getrusage's ru_maxrss, VmHWM) only grows, so a
runtime measured after a larger one would inherit its peak. Linux lets a
process reset its own high-water mark (writing "5" to /proc/self/clear_refs,
proc(5)); so before a runtime loads we note the resident set and reset the
mark, and after its rows the runtime's figure is the new mark minus that
baseline. Where the kernel does not allow it (not Linux, an old kernel, a
locked-down /proc) the figure is None with the reason, never a guess.

Caveat: memory the allocator kept from an earlier runtime can be reused by a
later one without raising the resident set, so a figure can only err low.

    window = MemoryWindow.start()   # before the runtime loads
    ...                             # load, time
    window.peak_mb()                # -> (MB above the baseline, None) or (None, why not)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["MEASURE", "MemoryWindow"]

MEASURE = ("runtime_memory_mb: peak resident set during the row (VmHWM, reset through /proc/self/clear_refs "
           "before the runtime loaded and before each batch) minus the resident set just before the runtime "
           "loaded; host memory only")

_STATUS, _CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} missing from {_STATUS}")


@dataclass(frozen=True)
class MemoryWindow:
    """The resident set when a runtime's window opened, or why it cannot be measured here."""

    baseline_kib: int | None
    problem: str | None = None

    @classmethod
    def start(cls) -> MemoryWindow:
        """Note the resident set now and reset the high-water mark to it."""
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
