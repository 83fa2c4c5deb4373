"""Tables for people: rich renderables built from vtk's result dataclasses.

Kept apart from `vtk_vision.cli` so that the CLI only wires options to functions
and prints what comes back.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from vtk_vision.core.text import printable

__all__ = ["fmt_bytes", "fmt_int", "natural_width", "table"]


def natural_width(columns: list[str], rows: list[list]) -> int:
    """Characters the table needs with no cell wrapped: widest cell per column, plus borders and padding."""
    widths = [max([len(printable(c)), *(len(printable(r[i])) for r in rows)]) for i, c in enumerate(columns)]
    return sum(widths) + 3 * len(columns) + 1


def table(title: str | None, columns: list[str], rows: list[list], *, right: set[str] = frozenset(),
          optional: tuple[str, ...] = (), width: int | None = None) -> Table:
    """A plain rich table; columns named in `right` are right-aligned (numbers).

    With `width` (a terminal's), the `optional` columns are left out, in the order given, until the table
    fits; whatever still does not fit wraps inside its cell (folds), so no value is ever cut to `…`.
    """
    rows = [list(r) for r in rows]
    for name in optional:
        if width is None or natural_width(columns, rows) <= width:
            break
        if name in columns:
            i = columns.index(name)
            columns = columns[:i] + columns[i + 1:]
            rows = [r[:i] + r[i + 1:] for r in rows]
    t = Table(title=printable(title) if title else None, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(printable(c), justify="right" if c in right else "left", overflow="fold")
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
