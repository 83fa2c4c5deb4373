"""What a training run writes while it runs: run.json's status and history, metrics, TensorBoard,
checkpoints and, at the end, the final weights and accuracy.

All file I/O goes through `RunFolder`; this module decides *when*. run.json's
status says where the run is ("running", "interrupted", "diverged",
"complete"), so a later command never takes a half-finished run for a good
one, and `runs/latest` only ever points at a complete run. The recorder holds
the run folder's lock while it lives: a "running" run whose lock is free has
lost its trainer, and resumes from its last checkpoint like an interrupted one.
"""

from __future__ import annotations

import time
from dataclasses import replace

from vtk_vision.core.errors import RunError, VtkError
from vtk_vision.core.inference import logits_of
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.core.versions import library_versions
from vtk_vision.data import Dataset, Split
from vtk_vision.inspection.sanity import warnings_for
from vtk_vision.runs.config import TrainConfig
from vtk_vision.runs.folder import RunFolder
from vtk_vision.runs.sources import keep_model_source, ready_to_keep
from vtk_vision.runs.schema import DataRecord, EpochStats, RunRecord
from vtk_vision.runs.setting import TuningRecord

__all__ = ["RunRecorder", "FollowerRecorder"]


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
    def create(cls, cfg: TrainConfig, ds: Dataset, model, prep: Preprocess, device, amp,
               distributed: dict | None = None, tuning: TuningRecord | None = None) -> RunRecorder:
        ready_to_keep(model.vtk_info)
        folder = RunFolder.create(cfg.model, cfg.dataset, cfg.runs_dir)
        folder.lock()
        try:
            return cls._started(folder, cfg, ds, model, prep, device, amp, distributed, tuning)
        except BaseException:
            folder.unlock()
            folder.discard()  # not started (no run.json): nothing is left that could be taken for a run
            raise

    @classmethod
    def _started(cls, folder, cfg, ds, model, prep, device, amp, distributed, tuning) -> RunRecorder:
        model.vtk_info = keep_model_source(folder, model.vtk_info, getattr(model, "vtk_source_text", None))  # a user model's .py travels with the run
        record = RunRecord(status="running", created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), model=model.vtk_info,
                           data=DataRecord(ds.name, ds.source, tuple(ds.classes), tuple(ds.shape), prep.spec),
                           config=cfg, device=str(device), amp=str(amp).replace("torch.", ""),
                           versions=library_versions(), distributed=distributed, tuning=tuning)
        folder.write(record)
        return cls(folder, record)

    @classmethod
    def resume(cls, folder: RunFolder, distributed: dict | None = None) -> RunRecorder:
        """An interrupted run, or a "running" one whose trainer died; refused while a trainer holds it."""
        record = folder.read()
        if record.status not in ("interrupted", "running"):
            raise RunError(f"{folder.path} is {record.status}; only an interrupted run, or one whose training "
                           f"process died, can be resumed")
        folder.lock()  # raises when another process is training it
        if not folder.has_checkpoint():
            folder.unlock()
            raise RunError(f"{folder.path} has no checkpoint (its training stopped before it could write one); "
                           f"start a new run")
        try:
            record = record.moved_to("running", distributed=distributed)  # the world it continues in
            folder.write(record)  # from here a death reads as "died": running, with nobody holding the lock
            return cls(folder, record)
        except BaseException:
            folder.unlock()
            raise

    # ------------------------------------------------------------ during training
    def epoch(self, row: EpochStats) -> None:
        for key in ("train_loss", "val_loss", "train_acc", "val_acc", "lr", "images_per_s"):
            self.tb.add_scalar(key.replace("_", "/", 1), getattr(row, key), row.epoch)
        self.tb.flush()
        self.record = replace(self.record, history=(*self.record.history, row))
        self.folder.write_metrics(self.record.history)
        self.folder.write(self.record)  # `vtk runs` shows how far a run got, even one that died

    def checkpoint(self, snap: dict) -> None:
        """Everything a resume needs, on disk at every epoch end (and before the first epoch)."""
        self.folder.save_checkpoint(snap)

    def interrupted(self) -> None:
        """run.json says "interrupted" and holds the epochs the last checkpoint has; best effort, since a full
        disk may refuse this write too (the run then reads as died, which resumes the same way)."""
        if self.record.status != "running":  # a run that completed or diverged stays what it is
            return
        try:
            self.record = self.record.moved_to("interrupted")
            self.folder.write(self.record)
        except VtkError:
            pass

    def load_checkpoint(self) -> dict:
        snap = self.folder.load_checkpoint()
        if not isinstance(snap, dict) or not isinstance(snap.get("state"), dict) \
                or not isinstance(snap["state"].get("history"), list):
            raise RunError(f"resume checkpoint in {self.path} is not one vtk wrote; start a new run")
        self.record = replace(self.record, history=tuple(EpochStats(**h) for h in snap["state"]["history"]))
        return snap

    def close(self) -> None:
        """TensorBoard flushed and the run's lock released, however the run ended."""
        self.tb.close()
        self.folder.unlock()

    # ------------------------------------------------------------ the end
    def finish(self, state, model, prep: Preprocess, splits: dict[str, Split], memory_format,
               wall_s: float, status: str = "complete") -> RunRecord:
        """Final weights, per-split accuracy, curves; then run.json says `status`."""
        from vtk_vision.present.plots import curves

        self.folder.save_weights(model)
        accuracy, predicted = {}, {}
        for name, split in splits.items():
            predicted[name] = logits_of(model, prep, split.images, memory_format=memory_format).argmax(1)
            accuracy[name] = (predicted[name] == split.labels).double().mean().item()
        warnings = tuple(warnings_for(predicted["test"].cpu(), splits["test"].labels.cpu(), self.record.model,
                                      self.record.data.classes))
        if state.history:
            curves(state.history, self.folder.output("curves.png"), state.best_epoch)
        self.record = self.record.moved_to(
            status, best_epoch=state.best_epoch, epochs_run=state.epoch, accuracy=accuracy,
            wall_s=round(wall_s, 2) if wall_s else None, history=tuple(EpochStats(**h) for h in state.history),
            warnings=warnings)
        self.folder.write(self.record)
        self.folder.drop_checkpoint()
        if status == "complete":
            self.folder.set_latest()
        return self.record

    def finish_diverged(self, state, model, prep, splits, memory_format) -> str:
        """Keep the best weights so far, if any epoch produced them; say what was kept."""
        if state.best_weights is None:
            self.record = self.record.moved_to("diverged")
            self.folder.write(self.record)
            self.folder.drop_checkpoint()
            return f"no epoch finished with a finite loss, so no weights were kept in {self.path}"
        model.load_state_dict(state.best_weights)
        self.finish(state, model, prep, splits, memory_format, 0.0, status="diverged")
        return f"kept the best weights so far (epoch {state.best_epoch}) in {self.folder.weights_path}"


class FollowerRecorder:
    """A data-parallel rank other than 0: it trains in step with rank 0 and writes nothing (rank 0 owns the
    run folder); what it must know of the run, rank 0 sends it."""

    def __init__(self, path):
        self.folder, self.record = RunFolder(path), None

    @property
    def path(self):
        return self.folder.path

    def checkpoint(self, snap: dict) -> None:
        pass

    def epoch(self, row: EpochStats) -> None:
        pass

    def interrupted(self) -> None:
        pass

    def load_checkpoint(self) -> None:
        return None  # rank 0 reads it and sends it

    def finish(self, *args, **kwargs) -> None:
        return None

    def finish_diverged(self, *args, **kwargs) -> str:
        return f"rank 0 kept what there was to keep in {self.path}"

    def close(self) -> None:
        pass
