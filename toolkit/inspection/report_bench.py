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
        return f"{len(value)} values"
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def _columns(rows: list[dict]) -> tuple[list[str], list[tuple[str, str | None]]]:
    """Headers, and for each a (kind, key): ("row", key), ("latency", key) or ("memory", key)."""
    spec: list[tuple[str, str, str | None]] = [("runtime", "runtime", None), ("status", "status", None)]
    seen = {"runtime", "status"}

    def add(header: str, kind: str, key: str) -> None:
        if header not in seen and any(_lookup(r, kind, key) is not None for r in rows):
            seen.add(header)
            spec.append((header, kind, key))

    for key, header in _NAMED.items():
        add(header, "row", key)
    for r in rows:
        for key in (r.get("latency_ms") or {}) if isinstance(r.get("latency_ms"), dict) else ():
            add("samples" if key == "n" else key if key in ("cv", "spread") else f"{key} ms", "latency", key)
    for r in rows:
        for key, value in r.items():
            if key in _FOLDED or key in _SKIPPED or key in _NAMED:
                continue
            if isinstance(value, dict):
                for sub in value:
                    add(f"{key} {sub}", "dict", f"{key}.{sub}")
            else:
                add(key.replace("_", " "), "row", key)
    return [h for h, _, _ in spec], [(k, key) for _, k, key in spec]


def _lookup(row: dict, kind: str, key: str | None) -> object:
    if kind == "runtime":
        return _runtime(row)
    if kind == "status":
        return _status(row)
    if kind == "latency":
        lat = row.get("latency_ms")
        return lat.get(key) if isinstance(lat, dict) else None
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
    headers, spec = _columns(rows)
    body = [[_value(key or kind, _lookup(r, kind, key)) for kind, key in spec] for r in rows]
    classes = ["bad" if r.get("status") not in ("ok", None) else "unstable" if r.get("unstable") else ""
               for r in rows]
    caption = (f"{where}: {report.get('dataset', '?')} test split, "
               f"{report.get('test_images', '?')} images; times: {report.get('time_includes', 'not recorded')}")
    ok = any(r.get("status") == "ok" for r in rows)
    return (f'<p class="sub">{html.esc(caption)}</p>' + html.table(headers, body, classes)
            + (_plot(report) if ok else ""))
