"""The bench files `vtk recommend` reads: which files, and every figure it reads checked before any choice.

`vtk compare`'s `load_bench` checks the rows it reads (p50, raw samples, accuracy); recommend also reads
each row's p99, size and accuracy change, and the LoadGen rows of `vtk bench --scenario`, so those are
checked here: a damaged or hand-edited file is one line, never a traceback or a choice made on garbage.
"""

from __future__ import annotations

from pathlib import Path

from vtk_vision.bench.keys import row_key
from vtk_vision.core.errors import VtkError

__all__ = ["bench_files", "read_sources"]


def bench_files(sources: tuple[str | Path, ...] | list, runs_dir: str | Path | None = None) -> list[Path]:
    """Bench JSON files as given; a run folder or run name means its bench.json; none means the latest run's."""
    from vtk_vision.runs.locate import locate_run

    out = []
    for s in sources or (None,):
        if s is not None and Path(s).is_file():
            out.append(Path(s))
            continue
        folder = locate_run(s, runs_dir, "run.json", "latest")  # runs/folder.py's names, without importing torch
        bench = folder / "bench.json"
        if not bench.is_file():
            raise VtkError(f"{folder.name} has no bench.json; run `vtk bench {folder}` first")
        out.append(bench)
    return out


def read_sources(paths: list[Path]) -> list[tuple[str, dict]]:
    """(source, report) for each bench JSON; a bad file is one line (compare's checks, then the load section's)."""
    from vtk_vision.bench.compare import load_bench

    out = []
    for path in paths:
        report = load_bench(path)
        load = report.get("load")
        if load is not None and not (isinstance(load, dict) and isinstance(load.get("rows"), list)):
            raise VtkError(f"{path}: its load section is not a list of rows; give a file `vtk bench` wrote")
        for r in (load or {}).get("rows", []):
            _check_load_row(path, r)
        for r in report["rows"]:
            _check_closed_row(path, r)
        out.append((str(path), report))
    return out


def _number(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and 0 <= value < float("inf"))


def _check_load_row(path: Path, r: object) -> None:
    fields = ("runtime", "provider", "threads", "scenario", "status")
    if not isinstance(r, dict) or not all(isinstance(r.get(f), (str, int)) for f in fields):
        raise VtkError(f"{path}: a load row lacks {', '.join(fields)}; give a file `vtk bench` wrote")
    lat = r.get("latency_ms") or {}
    slo = r.get("slo") if isinstance(r.get("slo"), dict) else {}
    figures = [lat.get("p50"), lat.get("p99"), r.get("accuracy"), r.get("size_bytes"), slo.get("peak_qps"),
               r.get("queries")] if isinstance(lat, dict) else [None, "missing"]
    if r["status"] == "ok" and not (all(_number(v) for v in figures) and _delta(r.get("accuracy_delta"))
                                    and _samples(r.get("latencies_ms"))):
        raise VtkError(f"{path}: a load row holds a figure that is not a number of at least 0; "
                       f"give a file `vtk bench` wrote")


def _delta(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and -1 <= value <= 1)


def _samples(value: object) -> bool:
    return value is None or (isinstance(value, list) and all(_number(v) for v in value))


def _check_closed_row(path: Path, r: dict) -> None:
    """What compare's checks leave out and recommend reads: the p99, the accuracy change and the size."""
    lat = r.get("latency_ms") if isinstance(r.get("latency_ms"), dict) else {}
    if r["status"] == "ok" and not (_number(lat.get("p99")) and _number(r.get("size_bytes"))
                                    and _delta(r.get("accuracy_delta"))):
        raise VtkError(f"{path}: row {row_key(r)} holds a p99, size or accuracy change that is not a number in "
                       f"range; give a file `vtk bench` wrote")
