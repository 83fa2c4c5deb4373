"""Tables for people: rich renderables built from vtk's result dataclasses.

Kept apart from `vtk_vision.cli` so that the CLI only wires options to functions
and prints what comes back.
"""

from __future__ import annotations

import textwrap

from rich.console import Group
from rich.table import Table
from rich.text import Text
from vtk_vision.core.text import printable

__all__ = ["fmt_bytes", "fmt_int", "moved_lines", "natural_width", "table"]

# The longest token kept whole in a cell: a word such as `torchscript` never breaks mid-word; longer ones
# (paths, digests) are no words and fold inside their cell rather than push the table past the terminal.
WORD = 18


def natural_width(columns: list[str], rows: list[list]) -> int:
    """Characters the table needs with no cell wrapped: widest cell per column, plus borders and padding."""
    widths = [max([len(printable(c)), *(len(printable(r[i])) for r in rows)]) for i, c in enumerate(columns)]
    return sum(widths) + 3 * len(columns) + 1


def _longest_word(cells: list[str]) -> int:
    return min(WORD, max((len(w) for c in cells for w in printable(c).split()), default=1))


def _row_label(columns: list[str], row: list, key: tuple[str, ...]) -> str:
    """What names a row below the table: its first key cell, then `name value` for the other key columns."""
    present = [c for c in key if c in columns] or columns[:1]
    first, *rest = present
    return ", ".join([printable(row[columns.index(first)]),
                      *(f"{c} {printable(row[columns.index(c)])}" for c in rest)])


def moved_lines(columns: list[str], rows: list[list], moved: list[str], key: tuple[str, ...] = ()) -> list[str]:
    """`name: value` lines for the columns that did not fit. A column with one value for every row is one
    line; one whose value follows from the first column (an artifact's size from its runtime) is one line
    of `first-cell value` pairs; the rest are one line per row, named by its `key` cells."""
    first = [printable(r[0]) for r in rows]
    out, per_row = [], []
    for name in moved:
        i = columns.index(name)
        values = [printable(r[i]) for r in rows]
        pairs = dict.fromkeys(zip(first, values))
        if len(set(values)) == 1:
            out.append(f"{printable(name)}: {values[0]}")
        elif len(pairs) == len(dict.fromkeys(first)) < len(rows):
            out.append(f"{printable(name)}: " + ", ".join(f"{k} {v}" for k, v in pairs))
        else:
            per_row.append(name)
    if per_row:
        kept = [c for c in columns if c not in moved]
        for r in rows:
            cells = {c: printable(v) for c, v in zip(columns, r)}
            label = _row_label(kept, [cells[c] for c in kept], key)
            out.append(f"{label}: " + ", ".join(f"{printable(c)} {cells[c]}" for c in per_row))
    return out


def table(title: str | None, columns: list[str], rows: list[list], *, right: set[str] = frozenset(),
          optional: tuple[str, ...] = (), width: int | None = None, key: tuple[str, ...] = ()):
    """A plain rich table; columns named in `right` are right-aligned (numbers).

    With `width` (a terminal's), the `optional` columns leave the table, in the order given, until it fits,
    and reappear under it as `name: value` lines (`moved_lines`, rows named by their `key` columns), so no
    figure vanishes. No cell breaks a word; what still does not fit wraps between words, and a path folds
    inside its cell, so no value is ever cut to `…`. Without `width` (--wide, or not a terminal) every column
    stays and rich folds cells to whatever width the console has.
    """
    rows = [[printable(v) for v in r] for r in rows]
    kept, moved = list(columns), []
    for name in optional:
        if width is None or natural_width(kept, [[r[columns.index(c)] for c in kept] for r in rows]) <= width:
            break
        if name in kept:
            kept.remove(name)
            moved.append(name)
    t = Table(title=printable(title) if title else None, title_justify="left", header_style="bold")
    for c in kept:
        cells = [r[columns.index(c)] for r in rows]
        t.add_column(printable(c), justify="right" if c in right else "left", overflow="fold",
                     min_width=_longest_word([c, *cells]) if width is not None else None)  # --wide: all fold
    for r in rows:
        t.add_row(*[Text(r[columns.index(c)]) for c in kept])  # Text: never markup, whatever the console
    if not moved:
        return t
    # a line wraps only after a comma: "303.5 MB" stays together (textwrap takes no break at a no-break space)
    wrapped = [textwrap.fill(line.replace(" ", "\xa0").replace(",\xa0", ", "), width, subsequent_indent="  ",
                             break_long_words=False, break_on_hyphens=False).replace("\xa0", " ")
               for line in moved_lines(columns, rows, moved, key)]
    return Group(t, Text("\n".join(wrapped)))


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
