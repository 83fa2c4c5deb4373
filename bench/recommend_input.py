"""The bench files `vtk recommend` reads: which files, and every figure it reads checked before any choice.

`vtk compare`'s `load_bench` checks the rows it reads (p50, raw samples, accuracy) and the LoadGen rows of
`vtk bench --scenario` (bench/load_checks.py); recommend also reads each row's p99, size and accuracy change,
so those are checked here: a damaged or hand-edited file is one line, never a traceback or a choice made on
garbage.
"""

from __future__ import annotations

from pathlib import Path

from vtk_vision.bench.keys import row_key
from vtk_vision.bench.load_checks import is_delta, is_figure
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
    """(source, report) for each bench JSON; a bad file is one line (compare's `load_bench` checks its rows and
    its load section, bench/load_checks.py; the closed rows' p99, size and accuracy change are checked here)."""
    from vtk_vision.bench.compare import load_bench

    out = []
    for path in paths:
        report = load_bench(path)
        for r in report["rows"]:
            _check_closed_row(path, r)
        out.append((str(path), report))
    return out


def _check_closed_row(path: Path, r: dict) -> None:
    """What compare's checks leave out and recommend reads: the p99, the accuracy change and the size."""
    lat = r.get("latency_ms") if isinstance(r.get("latency_ms"), dict) else {}
    if r["status"] == "ok" and not (is_figure(lat.get("p99")) and is_figure(r.get("size_bytes"))
                                    and is_delta(r.get("accuracy_delta"))):
        raise VtkError(f"{path}: row {row_key(r)} holds a p99, size or accuracy change that is not a number in "
                       f"range; give a file `vtk bench` wrote")
