"""Where a run folder is, from a path, a name under the runs folder, or nothing (the latest finished run).

Kept apart from `runs/folder.py` so that commands which only read a run's JSON files (`vtk recommend`)
find the folder without importing torch: that import alone took 6 s on the shared 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

from vtk_vision.core.errors import RunError
from vtk_vision.core.paths import runs_root

__all__ = ["locate_run"]


def locate_run(run: str | Path | None, runs_dir: str | Path | None, record: str, latest: str) -> Path:
    """RUN as a path, or as a name under the runs folder; none means the latest complete run."""
    root = runs_root(runs_dir)
    if run is None:
        pointer = root / latest
        if not pointer.exists():
            raise RunError(f"no finished run under {root}; train one with `vtk train MODEL` or name a run folder")
        run = root / pointer.read_text().strip()
    path = Path(run)
    if not path.exists() and (root / path).exists():
        path = root / path
    if not (path / record).is_file():
        raise RunError(f"{path} is not a vtk run folder (no {record}); give the folder `vtk train` printed")
    return path
