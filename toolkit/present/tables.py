"""Tables for people: rich renderables built from vtk's result dataclasses.

Kept apart from `vtk_vision.cli` so that the CLI only wires options to functions
and prints what comes back.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from vtk_vision.core.text import printable

__all__ = ["table", "fmt_int", "fmt_bytes"]


def table(title: str | None, columns: list[str], rows: list[list], *, right: set[str] = frozenset()) -> Table:
    """A plain rich table; columns named in `right` are right-aligned (numbers)."""
    t = Table(title=printable(title) if title else None, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(printable(c), justify="right" if c in right else "left")
    for r in rows:
        t.add_row(*[Text(printable(v)) for v in r])  # Text: never markup, whatever the console
    return t


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
