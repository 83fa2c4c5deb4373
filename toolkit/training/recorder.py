"""What a training run writes while it runs: run.json's status and history, metrics, TensorBoard,
checkpoints and, at the end, the final weights and accuracy.

All file I/O goes through `RunFolder`; this module decides *when*. run.json's
status says where the run is ("running", "interrupted", "diverged",
"complete"), so a later command never takes a half-finished run for a good
one, and `runs/latest` only ever points at a complete run.
"""

from __future__ import annotations

import time
from dataclasses import replace

from vtk_vision.core.errors import RunError
from vtk_vision.core.inference import logits_of
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.core.versions import library_versions
from vtk_vision.data import Dataset, Split
from vtk_vision.runs.config import TrainConfig
from vtk_vision.runs.folder import RunFolder
from vtk_vision.runs.schema import DataRecord, EpochStats, RunRecord

__all__ = ["RunRecorder"]


class RunRecorder:
    """Owns one run folder for the duration of a `fit`."""

    def __init__(self, folder: RunFolder, record: RunRecord):
        from torch.utils.tensorboard import SummaryWriter

        self.folder, self.record = folder, record
        self.tb = SummaryWriter(str(folder.tensorboard_dir))

    @property
    def path(self):
        return self.folder.path

    @classmethod
    def create(cls, cfg: TrainConfig, ds: Dataset, model, prep: Preprocess, device, amp) -> RunRecorder:
        folder = RunFolder.create(cfg.model, cfg.dataset, cfg.runs_dir)
        record = RunRecord(status="running", created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), model=model.vtk_info,
                           data=DataRecord(ds.name, ds.source, tuple(ds.classes), tuple(ds.shape), prep.spec),
                           config=cfg, device=str(device), amp=str(amp).replace("torch.", ""),
                           versions=library_versions())
        folder.write(record)
        return cls(folder, record)

    @classmethod
    def resume(cls, folder: RunFolder) -> RunRecorder:
        record = folder.read()
        if record.status != "interrupted" or not folder.has_checkpoint():
            raise RunError(f"{folder.path} has no resume checkpoint (status: {record.status}); only a run "
                           f"stopped with Ctrl-C can be resumed")
        return cls(folder, record.moved_to("running"))

    # ------------------------------------------------------------ during training
    def epoch(self, row: EpochStats) -> None:
        for key in ("train_loss", "val_loss", "train_acc", "val_acc", "lr", "images_per_s"):
            self.tb.add_scalar(key.replace("_", "/", 1), getattr(row, key), row.epoch)
        self.tb.flush()
        self.record = replace(self.record, history=(*self.record.history, row))
        self.folder.write_metrics(self.record.history)

    def save_checkpoint(self, snap: dict) -> None:
        """The last epoch-end snapshot: weights as safetensors, the rest through the weights-only unpickler."""
        tensors = {f"model.{k}": v for k, v in snap["model"].items()}
        tensors |= {f"best.{k}": v for k, v in (snap["state"]["best_weights"] or {}).items()}
        rest = {k: v for k, v in snap.items() if k != "model"}
        rest["state"] = {k: v for k, v in snap["state"].items() if k != "best_weights"}
        self.folder.save_checkpoint(tensors, rest)
        self.record = self.record.moved_to("interrupted", history=tuple(EpochStats(**h) for h in snap["state"]["history"]))
        self.folder.write(self.record)
        self.tb.close()

    def load_checkpoint(self) -> dict:
        tensors, rest = self.folder.load_checkpoint()
        if not isinstance(rest, dict) or not isinstance(rest.get("state"), dict) \
                or not isinstance(rest["state"].get("history"), list):
            raise RunError(f"resume checkpoint in {self.path} is not one vtk wrote; start a new run")
        model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
        self.record = replace(self.record, history=tuple(EpochStats(**h) for h in rest["state"]["history"]))
        return rest | {"model": model, "state": rest["state"] | {"best_weights": best}}

    # ------------------------------------------------------------ the end
    def finish(self, state, model, prep: Preprocess, splits: dict[str, Split], memory_format,
               wall_s: float, status: str = "complete") -> RunRecord:
        """Final weights, per-split accuracy, curves; then run.json says `status`."""
        from vtk_vision.present.plots import curves

        self.folder.save_weights(model)
        accuracy = {}
        for name, split in splits.items():
            logits = logits_of(model, prep, split.images, memory_format=memory_format)
            accuracy[name] = (logits.argmax(1) == split.labels).double().mean().item()
        if state.history:
            curves(state.history, self.folder.output("curves.png"), state.best_epoch)
        self.record = self.record.moved_to(
            status, best_epoch=state.best_epoch, epochs_run=state.epoch, accuracy=accuracy,
            wall_s=round(wall_s, 2) if wall_s else None, history=tuple(EpochStats(**h) for h in state.history))
        self.folder.write(self.record)
        self.tb.close()
        self.folder.drop_checkpoint()
        if status == "complete":
            self.folder.set_latest()
        return self.record

    def finish_diverged(self, state, model, prep, splits, memory_format) -> str:
        """Keep the best weights so far, if any epoch produced them; say what was kept."""
        if state.best_weights is None:
            self.record = self.record.moved_to("diverged")
            self.folder.write(self.record)
            self.tb.close()
            return f"no epoch finished with a finite loss, so no weights were kept in {self.path}"
        model.load_state_dict(state.best_weights)
        self.finish(state, model, prep, splits, memory_format, 0.0, status="diverged")
        return f"kept the best weights so far (epoch {state.best_epoch}) in {self.folder.weights_path}"
