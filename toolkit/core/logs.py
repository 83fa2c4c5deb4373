"""Quieting the libraries that narrate while vtk calls them (at INFO/WARNING, or in C++ on stderr); their errors
still raise."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet", "stderr_kept"]


@contextmanager
def quiet(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, levels):
            lg.setLevel(old)


@contextmanager
def stderr_kept(into: list[str]) -> Iterator[None]:
    """A native runtime's C++ logs (ExecuTorch's thread pool resizes and the reason a call failed, LiteRT's
    delegate announcement) go to file descriptor 2, past Python: they are held here and handed to the caller,
    who shows the last one only when something failed."""
    with tempfile.TemporaryFile() as held:
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            into += [line.strip() for line in held.read(1 << 16).decode(errors="replace").splitlines() if line]
