"""Runtime calls that Ctrl-C, SIGTERM and a time limit can stop.

    watch = Watch(limit_s=60, runtime="onnx")
    rows = run_stoppable(lambda: time_rows(watch.guard(runner.logits)), watch)

A runtime blocked in C++ (ONNX Runtime's `run`, OpenVINO's `infer`, a PyTorch
operator) never comes back to Python, so Python's signal handlers never run:
an ONNX graph crafted never to end (a `Loop` with a 2**62 trip count) hung vtk
past Ctrl-C and SIGTERM, and only kill -9 ended it. So the work runs in a
worker thread and the main thread waits, where signals arrive, reading the
clock of the call in flight. On a signal, or when one call outlives the limit,
the runtime's own cancel is called (ONNX Runtime's `RunOptions.terminate`).
A runtime with no cancel, or whose cancel does not take (OpenVINO's CPU plugin
inside a `Loop`), is left behind: its thread is a daemon, and the command line
ends the process with `os._exit` (`exit_now`) so that no library's exit
handler waits on it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from vtk_vision.core.errors import VtkError

__all__ = ["Watch", "CallTimeout", "Unstoppable", "run_stoppable", "left_behind", "exit_now"]

T = TypeVar("T")
GRACE_S = 2.0   # how long a cancelled call may take to return before it is left behind
_POLL_S = 0.1   # how often the waiting thread reads the clock of the call in flight
_left: list[threading.Thread] = []


class CallTimeout(VtkError):
    """One call ran past the limit and the runtime stopped it: the caller fails what it was doing."""


class Halted(Exception):
    """Raised in the worker by a guarded call after `Watch.stop`: the work ends at the next call."""


class Unstoppable(VtkError):
    """One call ran past the limit (or a signal came) and the runtime could not stop it."""


class Watch:
    """The clock of the call in flight, read by the waiting thread, and the runtime's cancel."""

    def __init__(self, limit_s: float | None, runtime: str):
        self.limit_s, self.runtime = limit_s, runtime
        self.started: float | None = None   # time.monotonic() when the call in flight began
        self.cancel: Callable[[], None] | None = None
        self.halted = False  # set by `stop`: the worker's next guarded call raises instead of running

    def guard(self, fn: Callable[..., T]) -> Callable[..., T]:
        """`fn` with its start time where the waiting thread can see it: ~0.12 us a call (timeit, 2-core EPYC),
        0.4% of ONNX Runtime's LeNet-5 call at batch 1, the fastest call vtk times."""
        def guarded(*args):
            if self.halted:  # a PyTorch runtime has no cancel: its worker stops at the next call instead
                raise Halted(f"{self.runtime} was stopped")
            self.started = time.monotonic()
            try:
                return fn(*args)
            finally:
                self.started = None
        return guarded

    def overdue(self) -> bool:
        started = self.started
        return self.limit_s is not None and started is not None and time.monotonic() - started > self.limit_s

    def stop(self) -> None:
        self.halted = True
        if self.cancel is not None:
            try:
                self.cancel()
            except Exception:  # noqa: BLE001  (a cancel that fails leaves the thread behind, as no cancel would)
                pass


def run_stoppable(work: Callable[[], T], watch: Watch) -> T:
    """`work()` in a worker thread while this thread waits for it, a signal, or a call past `watch.limit_s`.

    Raises CallTimeout when an overdue call was stopped (the worker has ended), Unstoppable when it could
    not be (the worker is left behind), and re-raises a signal's KeyboardInterrupt after cancelling.
    """
    outcome: dict = {}
    done = threading.Event()

    def worker():
        try:
            outcome["value"] = work()
        except BaseException as e:  # noqa: BLE001  (handed to the waiting thread, which raises it)
            outcome["error"] = e
        finally:
            done.set()

    thread = threading.Thread(target=worker, name=f"vtk-{watch.runtime}", daemon=True)
    thread.start()
    try:
        while not done.wait(_POLL_S):
            if watch.overdue():
                _stop(thread, done, watch)
                raise CallTimeout(f"{watch.runtime}: a call ran past --call-timeout {watch.limit_s:g} s and was "
                                  f"stopped (a graph that never ends?)")
    except KeyboardInterrupt:
        _left.append(thread)  # first: a second signal during the grace below must still find it (only live
        watch.stop()          # threads count in left_behind)
        done.wait(GRACE_S)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _stop(thread: threading.Thread, done: threading.Event, watch: Watch) -> None:
    watch.stop()
    if done.wait(GRACE_S):
        return
    _left.append(thread)
    raise Unstoppable(f"{watch.runtime}: a call ran past --call-timeout {watch.limit_s:g} s and {watch.runtime} "
                      f"has no way to stop it, so vtk stops here (a graph that never ends?); leave {watch.runtime} "
                      f"out of --runtime")


def left_behind() -> bool:
    """Whether a runtime call could not be stopped and still runs in a thread of this process."""
    return any(t.is_alive() for t in _left)


def exit_now(code: int) -> None:
    """End the process at once: a runtime thread left behind could otherwise hold up exit handlers forever."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
