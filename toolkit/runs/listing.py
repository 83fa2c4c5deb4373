"""Every run under a runs folder and where it stands, for `vtk runs`.

run.json's status is what the run last wrote; a run that says "running" while
no process holds its lock (runs/folder.py) lost its trainer to kill -9, an
OOM kill or a power cut, and is listed as "died". A run is resumable when it
stopped (interrupted or died) with its checkpoint on disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from vtk_vision.core.errors import VtkError
from vtk_vision.core.paths import runs_root
from vtk_vision.runs.folder import LATEST, RECORD, RunFolder

__all__ = ["RunSummary", "list_runs", "life"]


@dataclass(frozen=True)
class RunSummary:
    name: str
    path: Path
    status: str                  # complete | running | interrupted | died | diverged | unreadable
    model: str = "?"
    dataset: str = "?"
    test_accuracy: float | None = None
    epochs: str = "?"            # "done/asked"
    age_s: float = 0.0           # since run.json was last written
    resumable: bool = False
    latest: bool = False
    problem: str | None = None   # why an unreadable run is unreadable
    made: tuple[str, ...] = ()   # what later commands left: "3 exports", "bench", "report"


def life(folder: RunFolder, status: str) -> str:
    """run.json's status, except that a "running" run with no live trainer has died."""
    return "died" if status == "running" and not folder.trainer_alive() else status


def _made(folder: RunFolder) -> tuple[str, ...]:
    """What `vtk export`, `vtk bench` and `vtk report` left in the run folder, from file names alone."""
    try:
        exports = len([a for a in folder.read_exports().artifacts.values() if a.passed])
    except VtkError:
        exports = 0
    return tuple(what for what, there in ((f"{exports} export{'s' * (exports != 1)}", exports),
                                          ("bench", folder.output("bench.json").is_file()),
                                          ("report", folder.output("report.html").is_file())) if there)


def list_runs(runs_dir: str | Path | None = None) -> list[RunSummary]:
    """Every run folder under the runs folder, newest first."""
    root = runs_root(runs_dir)
    latest = (root / LATEST).read_text().strip() if (root / LATEST).is_file() else None
    out = []
    for path in sorted(p for p in root.glob("*") if (p / RECORD).is_file()):
        folder, age = RunFolder(path), time.time() - (path / RECORD).stat().st_mtime
        try:
            record = folder.read()
        except VtkError as e:
            out.append(RunSummary(path.name, path, "unreadable", age_s=age, problem=str(e)))
            continue
        status = life(folder, record.status)
        out.append(RunSummary(
            path.name, path, status, record.model.name, record.data.name,
            (record.accuracy or {}).get("test"), f"{len(record.history)}/{record.config.epochs}" if record.config.epochs else "-", age,
            status in ("interrupted", "died") and folder.has_checkpoint(), path.name == latest,
            made=_made(folder)))
    return sorted(out, key=lambda r: r.age_s)
