"""The run directory: the unit that flows from `train` to `export`, `bench`, `eval`, `predict`.

    runs/<model>-<dataset>-<n>/
        model.safetensors   final (best) weights
        run.json            everything a later step needs: model and arguments,
                            dataset, normalisation, class names, options, results
        metrics.csv, curves.png, tb/ (TensorBoard), resume.* (while resumable)
    runs/latest             name of the newest finished run

Weights load with safetensors, never an unrestricted pickle.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from vtk_vision.models import create_model
from vtk_vision.core.atomic import save_with, write_text
from vtk_vision.core.paths import runs_root
from vtk_vision.core.errors import RunError, VtkError
from vtk_vision.core.preprocess import Preprocess

__all__ = ["Run", "new_run_dir", "set_latest", "resolve_run", "load_run", "save_weights", "load_weights"]

WEIGHTS, META, LATEST = "model.safetensors", "run.json", "latest"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text.replace("imagefolder:", "imagefolder-")).strip("-")[-40:]


def new_run_dir(model: str, dataset: str, runs_dir: str | Path | None = None) -> Path:
    """Create `runs/<model>-<dataset>-<n>` with the next free n (safe against a parallel run)."""
    root = runs_root(runs_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VtkError(f"cannot create runs folder {root}: {e.strerror}; pass --runs-dir") from None
    stem = f"{model}-{_slug(dataset.split(':', 1)[-1] if dataset.startswith('imagefolder:') else dataset)}"
    taken = [int(m.group(1)) for p in root.glob(f"{stem}-*") if (m := re.fullmatch(rf"{re.escape(stem)}-(\d+)", p.name))]
    n = max(taken, default=0) + 1
    while True:
        try:
            (path := root / f"{stem}-{n}").mkdir()
            return path
        except FileExistsError:
            n += 1


def set_latest(run_dir: Path) -> None:
    write_text(run_dir.parent / LATEST, run_dir.name + "\n")


def resolve_run(run: str | Path | None = None, runs_dir: str | Path | None = None) -> Path:
    """RUN as a path, or as a name under the runs folder; none means the latest finished run."""
    root = runs_root(runs_dir)
    if run is None:
        pointer = root / LATEST
        if not pointer.exists():
            raise RunError(f"no finished run under {root}; train one with `vtk train MODEL` or name a run folder")
        run = root / pointer.read_text().strip()
    path = Path(run)
    if not path.exists() and (root / path).exists():
        path = root / path
    if not (path / META).exists():
        raise RunError(f"{path} is not a vtk run folder (no {META}); give the folder `vtk train` printed")
    return path


def save_weights(path: Path, model: nn.Module | dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    state = model.state_dict() if isinstance(model, nn.Module) else model
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_with(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise RunError(f"{path} is missing; the run did not finish (resume it with `vtk train --resume "
                       f"{path.parent}`) or its weights were deleted")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise RunError(f"{path} is corrupt ({e}); train the run again") from None


@dataclass
class Run:
    """A finished run, ready to use: its metadata, model (eval mode, CPU) and preprocessing."""

    path: Path
    meta: dict
    model: nn.Module
    preprocess: Preprocess

    @property
    def classes(self) -> list[str]:
        return self.meta["data"]["classes"]


def load_run(run: str | Path | None = None, runs_dir: str | Path | None = None) -> Run:
    """Rebuild the model a run trained and load its weights."""
    path = resolve_run(run, runs_dir)
    try:
        meta = json.loads((path / META).read_text())
        m = meta["model"]
        model = create_model(m["name"], **m["kwargs"])
        state = load_weights(path / WEIGHTS)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise RunError(f"{path / WEIGHTS} does not fit {m['name']} {m['kwargs']}: "
                           f"{str(e).splitlines()[0]}; train the run again") from None
        prep = Preprocess.from_config(meta["data"]["preprocess"])
    except (KeyError, json.JSONDecodeError) as e:
        raise RunError(f"{path / META} is incomplete or corrupt ({e!r}); train the run again") from None
    return Run(path, meta, model.eval(), prep.eval())
