"""Deaths a process can see coming: Ctrl-C (SIGINT), SIGTERM (`timeout`, a scheduler, `kill`) and SIGHUP
(a closed terminal), all raised as `KeyboardInterrupt` so that one `except` in the trainer, the exporter's
atomic writes and the command line handles every one, and each ends with its shell exit code.

kill -9, an OOM kill or a power cut cannot be seen: those are what the per-epoch checkpoint on disk and
the run folder's lock (runs/folder.py) are for.
"""

from __future__ import annotations

import signal

__all__ = ["Terminated", "install", "exit_code_of"]


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, delivered as an exception at the next Python instruction."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum, frame):
    raise Terminated(signum)


def install() -> None:
    """SIGTERM and SIGHUP raise `Terminated` in the main thread (SIGINT already raises KeyboardInterrupt)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):  # leave a handler someone else set alone
            signal.signal(sig, _raise)


def exit_code_of(exc: BaseException) -> int:
    """128 + the signal number, as a shell reports a process that a signal stopped: 130, 143, 129."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)
