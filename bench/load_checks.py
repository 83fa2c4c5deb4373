"""The LoadGen section of a bench file (`vtk bench --scenario`), checked as data before anything reads it.

`vtk compare` and `vtk recommend` both read these rows from files a user hands them, so a damaged or
hand-edited section must be one line (compare's `load_bench` prefixes the file's name), never a
traceback or a comparison or choice made on garbage.
"""

from __future__ import annotations

from vtk_vision.core.errors import VtkError

__all__ = ["check_load_section", "in_range", "is_delta", "is_figure"]

_FIELDS = ("runtime", "provider", "threads", "scenario", "status")
_WRITE = "give a file `vtk bench` wrote"


def is_figure(value: object) -> bool:
    """A measured figure: a finite number of at least 0, or None (not measured)."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and 0 <= value < float("inf"))


def is_delta(value: object) -> bool:
    """An accuracy change: a fraction from -1 to 1, or None."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and -1 <= value <= 1)


def in_range(values: object) -> bool:
    """A list of figures (raw per-query latencies), or None where the file dropped them."""
    return values is None or (isinstance(values, list) and all(is_figure(v) for v in values))


def check_load_section(report: dict) -> None:
    """Raise one line where report["load"] is present and not what `vtk bench --scenario` writes."""
    load = report.get("load")
    if load is None:
        return
    if not (isinstance(load, dict) and isinstance(load.get("rows"), list)):
        raise VtkError(f"its load section is not a list of rows; {_WRITE}")
    for r in load["rows"]:
        _check_row(r)


def _check_row(r: object) -> None:
    if not isinstance(r, dict) or not all(isinstance(r.get(f), (str, int)) for f in _FIELDS):
        raise VtkError(f"a load row lacks {', '.join(_FIELDS)}; {_WRITE}")
    if r["status"] != "ok":
        return
    lat, slo = r.get("latency_ms"), r.get("slo")
    slo = slo if isinstance(slo, dict) else {}
    figures = [lat.get("p50"), lat.get("p99"), r.get("accuracy"), r.get("size_bytes"), slo.get("peak_qps"),
               slo.get("budget_ms"), r.get("queries"), r.get("target_qps"), r.get("completed_qps")] \
        if isinstance(lat, dict) else ["missing"]
    checks = r.get("checks")
    if not (all(is_figure(v) for v in figures) and is_delta(r.get("accuracy_delta"))
            and in_range(r.get("latencies_ms")) and (checks is None or isinstance(checks, dict))
            and isinstance(r.get("validity"), (str, type(None)))):
        raise VtkError(f"a load row holds a figure that is not a number of at least 0; {_WRITE}")
