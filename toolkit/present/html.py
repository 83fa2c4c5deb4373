"""HTML pieces for `vtk report`: a page that needs nothing but itself.

Every string that reaches the page goes through `esc`: class names, paths and
error reasons come from files someone else may have written, and a class named
`<script>` must show as text. Pictures are embedded as data URIs and the CSS
is inline, so the file opens offline and can be mailed as it is.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

__all__ = ["cell", "columns", "esc", "key_values", "missing", "page", "picture", "section", "table"]

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1120px;
       padding: 16px 24px 48px; color: #1d2430; background: #fff; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d8dde6;
padding-bottom: 4px; }
nav a { margin-right: 12px; color: #2657a6; text-decoration: none; } .sub { color: #5b6577; margin: 0 0 8px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d8dde6; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f4f8; font-weight: 600; } td.num { text-align: right; }
.wrap { overflow-x: auto; } .wrap table { font-size: 12.5px; } .kv th { min-width: 110px; } .kv td { max-width: 480px; }
.cols { display: flex; flex-wrap: wrap; gap: 12px 32px; align-items: flex-start; } h3 { font-size: 15px; margin: 12px 0 4px; } tr.bad td { background: #fdecec; }
tr.unstable td { background: #fff6dd; }
.missing { background: #f6f7f9; border-left: 4px solid #9aa4b5; padding: 8px 12px; color: #3d4656; }
.missing code, code { background: #eef0f4; padding: 1px 4px; border-radius: 3px; }
img { max-width: 100%; height: auto; border: 1px solid #e3e6ec; }
"""


def esc(value: object) -> str:
    """Text for HTML content or a quoted attribute; None shows as a dash."""
    return "-" if value is None else html.escape(str(value), quote=True)


def cell(value: object) -> tuple[str, bool]:
    """(text, is_number) for a table cell: numbers readable (4 significant digits, thousands grouped)."""
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, float):
        return (f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"), True
    return ("-" if value is None else str(value)), False


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], row_classes: Sequence[str] = ()) -> str:
    """A table whose cells are escaped; numbers right-aligned; a class per row where given."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        cells = "".join(f'<td class="num">{esc(t)}</td>' if num else f"<td>{esc(t)}</td>"
                        for t, num in map(cell, row))
        body.append(f'<tr class="{esc(cls)}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def key_values(pairs: Iterable[tuple[str, object]], per_row: int = 1) -> str:
    """A table of names and values, `per_row` pairs side by side (a long recipe stays short)."""
    cells = [f"<th>{esc(k)}</th><td>{esc(cell(v)[0])}</td>" for k, v in pairs]
    rows = "".join(f"<tr>{''.join(cells[i:i + per_row])}</tr>" for i in range(0, len(cells), per_row))
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def columns(*parts: str) -> str:
    """Parts side by side where the page is wide enough, one below the other where it is not."""
    return '<div class="cols">' + "".join(f"<div>{p}</div>" for p in parts) + "</div>"


def picture(png: bytes, alt: str) -> str:
    """A PNG embedded as a data URI."""
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def missing(what: str, command: str) -> str:
    """The box a part shows when it does not exist yet: what is missing and the command that makes it."""
    return f'<p class="missing">{esc(what)}: <code>{esc(command)}</code></p>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: a title, links to each (anchor, title, body) section, the sections."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p>"
            f"<nav>{nav}</nav>{''.join(section(*s) for s in sections)}</body></html>\n")
