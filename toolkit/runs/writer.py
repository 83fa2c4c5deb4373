"""Writing a run folder while training: run.json, metrics, TensorBoard, resume, final weights.

Every file goes through `vtk_vision.core.atomic`, and run.json carries a `status`
("running", "interrupted", "diverged", "complete"): a later command never takes
a half-finished run for a good one, and `runs/latest` only ever points at a
complete run.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from importlib import metadata
from pathlib import Path

import torch
from safetensors.torch import load_file

from vtk_vision import __version__
from vtk_vision.core.atomic import save_with, write_json, write_text
from vtk_vision.training.config import TrainConfig
from vtk_vision.data import Dataset, Split
from vtk_vision.core.errors import RunError
from vtk_vision.core.inference import logits_of
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.runs.folder import META, WEIGHTS, new_run_dir, save_weights, set_latest

__all__ = ["RunWriter", "library_versions"]

RESUME_WEIGHTS, RESUME_STATE = "resume.safetensors", "resume.pt"


def _installed(*distributions: str) -> str:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def library_versions() -> dict[str, str]:
    """Versions from package metadata: importing torchvision, onnx and ORT just to ask would add ~3 s."""
    return {"vtk": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": _installed("torchvision"), "onnx": _installed("onnx"),
            "onnxruntime": _installed("onnxruntime-gpu", "onnxruntime"), "cuda": str(torch.version.cuda)}


class RunWriter:
    """Owns one run folder for the duration of a `fit`."""

    def __init__(self, path: Path, meta: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.path, self.meta = path, meta
        self.tb = SummaryWriter(str(path / "tb"))

    @classmethod
    def create(cls, cfg: TrainConfig, ds: Dataset, model, prep: Preprocess, device, amp) -> RunWriter:
        path = new_run_dir(cfg.model, cfg.dataset, cfg.runs_dir)
        meta = {
            "status": "running", "run_dir": str(path), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": model.vtk_info.to_dict(),
            "data": {"name": ds.name, "source": ds.source, "classes": list(ds.classes),
                     "image_shape": list(ds.shape), "preprocess": prep.config()},
            "config": cfg.to_dict(), "device": str(device), "amp": str(amp).replace("torch.", ""),
            "versions": library_versions(),
        }
        writer = cls(path, meta)
        writer._write_meta()
        return writer

    @classmethod
    def resume(cls, path: Path) -> RunWriter:
        try:
            meta = json.loads((path / META).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise RunError(f"cannot resume {path}: {path / META} unreadable ({e})") from None
        if not (path / RESUME_STATE).exists():
            raise RunError(f"{path} has no resume checkpoint (status: {meta.get('status')}); only a run "
                           f"stopped with Ctrl-C can be resumed")
        return cls(path, meta | {"status": "running"})

    def _write_meta(self) -> None:
        write_json(self.path / META, self.meta)

    # ------------------------------------------------------------ during training
    def epoch(self, row: dict) -> None:
        for key in ("train_loss", "val_loss", "train_acc", "val_acc", "lr", "images_per_s"):
            self.tb.add_scalar(key.replace("_", "/", 1), row[key], row["epoch"])
        self.tb.flush()
        history = self.meta.setdefault("history", [])
        history.append(row)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(row))
        w.writeheader()
        w.writerows(history)
        write_text(self.path / "metrics.csv", buf.getvalue())

    def save_resume(self, snap: dict) -> None:
        """The last epoch-end snapshot: weights as safetensors, the rest as a weights-only torch file."""
        tensors = {f"model.{k}": v for k, v in snap["model"].items()}
        best = snap["state"]["best_weights"] or {}
        tensors |= {f"best.{k}": v for k, v in best.items()}
        rest = {k: v for k, v in snap.items() if k != "model"}
        rest["state"] = {k: v for k, v in snap["state"].items() if k != "best_weights"}
        save_weights(self.path / RESUME_WEIGHTS, tensors)
        save_with(self.path / RESUME_STATE, lambda tmp: torch.save(rest, tmp))
        self.meta["status"] = "interrupted"
        self.meta["history"] = snap["state"]["history"]
        self._write_meta()
        self.tb.close()

    def load_resume(self) -> dict:
        try:
            tensors = load_file(self.path / RESUME_WEIGHTS)
            rest = torch.load(self.path / RESUME_STATE, weights_only=True)  # restricted unpickler
        except Exception as e:  # any damage means the same thing to the user
            raise RunError(f"resume checkpoint in {self.path} is damaged ({e}); start a new run") from None
        model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
        self.meta["history"] = list(rest["state"]["history"])
        return rest | {"model": model, "state": rest["state"] | {"best_weights": best}}

    # ------------------------------------------------------------ the end
    def finish(self, state, model, prep: Preprocess, splits: dict[str, Split], memory_format,
               wall_s: float, status: str = "complete") -> dict:
        """Final weights, per-split accuracy, curves; then run.json says `status`."""
        from vtk_vision.present.plots import curves

        save_weights(self.path / WEIGHTS, model)
        accuracy = {}
        for name, split in splits.items():
            logits = logits_of(model, prep, split.images, memory_format=memory_format)
            accuracy[name] = (logits.argmax(1) == split.labels).double().mean().item()
        if state.history:
            curves(state.history, self.path / "curves.png", state.best_epoch)
        self.meta.update(status=status, best_epoch=state.best_epoch, epochs_run=state.epoch,
                         accuracy=accuracy, wall_s=round(wall_s, 2) if wall_s else None,
                         history=state.history)
        self._write_meta()
        self.tb.close()
        for f in (RESUME_WEIGHTS, RESUME_STATE):
            (self.path / f).unlink(missing_ok=True)
        if status == "complete":
            set_latest(self.path)
        return self.meta

    def finish_diverged(self, state, model, prep, splits, memory_format) -> str:
        """Keep the best weights so far, if any epoch produced them; say what was kept."""
        if state.best_weights is None:
            self.meta["status"] = "diverged"
            self._write_meta()
            self.tb.close()
            return f"no epoch finished with a finite loss, so no weights were kept in {self.path}"
        model.load_state_dict(state.best_weights)
        self.finish(state, model, prep, splits, memory_format, 0.0, status="diverged")
        return f"kept the best weights so far (epoch {state.best_epoch}) in {self.path / WEIGHTS}"
