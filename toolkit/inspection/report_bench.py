"""The bench part of `vtk report`: bench.json as a table and its latency/throughput plot.

bench.json belongs to `vtk bench` and grows new fields (raw samples, threads,
dispersion, an unstable flag, memory per runtime), so it is read defensively:
a column is shown for every scalar field some row has, under a readable name
where vtk knows the field, and raw sample lists are counted, never printed.
A field no row has gets no column; nothing is filled in that was not measured.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from vtk_vision.bench.percentiles import shown, trusted
from vtk_vision.present import html

__all__ = ["bench_section"]

# Fields with a place and a name of their own; others follow in the order the file has them.
_NAMED = {"provider": "provider", "batch": "batch", "threads": "threads", "accuracy": "accuracy",
          "accuracy_delta": "Δ eager (pt)", "images_per_s": "images/s", "size_bytes": "size (KB)"}
_FOLDED = {"runtime", "precision", "status", "reason", "unstable", "latency_ms"}  # shown inside other cells
_SKIPPED = {"artifact", "active_providers", "correct"}  # paths and lists: in bench.json, not worth a column


def _runtime(row: dict) -> str:
    precision = row.get("precision") or "fp32"
    return f"{row.get('runtime', '?')}" + ("" if precision == "fp32" else f" {precision}")


def _status(row: dict) -> str:
    text = str(row.get("status", "?"))
    if row.get("reason"):
        text += f": {row['reason']}"
    return text + (" (unstable)" if row.get("unstable") else "")


def _value(key: str, value: object) -> object:
    if key == "accuracy" and isinstance(value, (int, float)):
        return f"{100 * value:.2f}%"
    if key == "accuracy_delta" and isinstance(value, (int, float)):
        return f"{100 * value:+.2f}"
    if key == "size_bytes" and isinstance(value, (int, float)):
        return round(value / 1e3)
    if isinstance(value, (list, tuple)):
        return f"{len(value)} value{'' if len(value) == 1 else 's'}"
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


Spec = list[tuple[str, str, str | None]]  # (header, kind, key): kind "row", "latency", "dict" or a cell
_MAIN_LATENCY = ("n", "p50", "p90", "p99", "cv", "spread")  # the rest (mean, std, ...) goes to the details
_PERCENTILE = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "spread": 0.9}  # spread is p90 / p50


def _columns(rows: list[dict]) -> tuple[Spec, Spec]:
    """The main table's columns (who, status, accuracy, the latency percentiles, throughput), and the details
    table's (every other field some row has), each only where some row has a value."""
    main: Spec = [("runtime", "runtime", None), ("status", "status", None)]
    details: Spec = [("runtime", "runtime", None), ("provider", "row", "provider"), ("batch", "row", "batch"),
                     ("threads", "row", "threads")]  # what names a row, as in the main table
    seen = {id(main): {"runtime", "status"}, id(details): {"runtime", "provider", "batch", "threads"}}

    def add(spec: Spec, header: str, kind: str, key: str) -> None:
        if header not in seen[id(spec)] and any(_lookup(r, kind, key) is not None for r in rows):
            seen[id(spec)].add(header)
            spec.append((header, kind, key))

    for key, header in _NAMED.items():
        add(main, header, "row", key)
    for r in rows:
        for key in (r.get("latency_ms") or {}) if isinstance(r.get("latency_ms"), dict) else ():
            add(main if key in _MAIN_LATENCY else details,
                "samples" if key == "n" else key if key in ("cv", "spread") else f"{key} ms", "latency", key)
    for r in rows:
        for key, value in r.items():
            if key in _FOLDED or key in _SKIPPED or key in _NAMED:
                continue
            if isinstance(value, dict):
                for sub in value:
                    add(details, f"{key} {sub}", "dict", f"{key}.{sub}")
            else:
                add(details, key.replace("_mb", " MB").replace("_", " "), "row", key)
    return main, details


def _lookup(row: dict, kind: str, key: str | None) -> object:
    if kind == "runtime":
        return _runtime(row)
    if kind == "status":
        return _status(row)
    if kind == "latency":
        lat = row.get("latency_ms")
        value = lat.get(key) if isinstance(lat, dict) else None
        q = _PERCENTILE.get(key)  # a percentile from fewer calls than LoadGen accepts is shown as n<662
        return value if q is None or value is None or trusted(lat.get("n"), q) else shown(value, lat.get("n"), q)
    if kind == "dict":
        outer, inner = key.split(".", 1)
        value = row.get(outer)
        return value.get(inner) if isinstance(value, dict) else None
    return row.get(key)


def _plot(report: dict) -> str:
    """bench's own latency/throughput figure (bench/report.py), embedded; a bench.json it cannot draw
    says so instead of failing the whole report."""
    from vtk_vision.bench.report import plot

    with tempfile.TemporaryDirectory(prefix="vtk-report-") as tmp:
        path = Path(tmp) / "bench.png"
        try:
            plot(report, path)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            return f'<p class="missing">latency/throughput plot not drawn: bench.json lacks {html.esc(e)}</p>'
        return html.picture(path.read_bytes(), "p50 latency and throughput against batch size")


def bench_section(report: dict, where: str) -> str:
    """The table and plot of a parsed bench.json (`where` names it in the caption)."""
    rows = [r for r in report.get("rows") or [] if isinstance(r, dict)]
    if not rows:
        return f'<p class="missing">{html.esc(where)} holds no rows</p>'
    main, details = _columns(rows)
    classes = ["bad" if r.get("status") not in ("ok", None) else "unstable" if r.get("unstable") else ""
               for r in rows]
    images = report.get("test_images")
    caption = (f"{where}: {report.get('dataset', '?')} test split, "
               f"{f'{images:,}' if isinstance(images, int) else '?'} images; "
               f"times: {report.get('time_includes', 'not recorded')}")
    ok = any(r.get("status") == "ok" for r in rows)
    more = ("<h3>details per row</h3>" + _table(rows, details, classes)) if len(details) > 3 else ""
    return (f'<p class="sub">{html.esc(caption)}</p>' + _table(rows, main, classes) + more
            + (_plot(report) if ok else "") + _load(report.get("load")))


def _load(section: object) -> str:
    """LoadGen's rows (`vtk bench --scenario`), as the bench prints them; a section it cannot read says so."""
    from vtk_vision.bench.load_report import late_notes, load_table, verdict_notes

    if section is None:
        return ""
    try:
        title, columns, cells, _ = load_table(section)
        notes = [section.get("settings_note", ""), *verdict_notes(section), *late_notes(section)]
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        return f'<p class="missing">the load section of bench.json is unreadable ({html.esc(e)}); bench again</p>'
    return (f"<h3>{html.esc(title)}</h3>" + html.table(columns, cells)
            + "".join(f'<p class="sub">{html.esc(n)}</p>' for n in notes if n))


def _table(rows: list[dict], spec: Spec, classes: list[str]) -> str:
    body = [[_value(key or kind, _lookup(r, kind, key)) for _, kind, key in spec] for r in rows]
    return html.table([header for header, _, _ in spec], body, classes)
