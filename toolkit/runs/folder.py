"""The run folder, the unit that flows from `train` to `export`, `bench`, `eval`, `predict`.

    runs/<model>-<dataset>-<n>/
        run.json            RunRecord (toolkit/runs/schema.py): model, data, options, status, results
        model.safetensors   final (best) weights
        metrics.csv, curves.png, tb/ (TensorBoard), confusion.png, ...
        checkpoint.pt       everything a resume needs, rewritten atomically at every epoch end
        .lock               held by the process training the run: a "running" run whose lock is
                            free has died (kill -9, OOM, power cut) and can be resumed
        exports/            artifacts, and export.json recording every one of them
        model_source/       a copy of a user model's .py file (`vtk train mynet.py:Net`): what rebuilds it
    runs/latest             name of the newest complete run

This module is the only code that reads or writes run.json, export.json,
weights and checkpoints; everyone else holds a `RunFolder` and typed records.
Weights load with safetensors and checkpoints with PyTorch's weights-only
unpickler, never an unrestricted pickle.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from vtk_vision.core.atomic import save_tensors, save_torch, write_bytes, write_json, write_text
from vtk_vision.core.errors import RunError, VtkError
from vtk_vision.core.paths import runs_root
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.core.text import printable
from vtk_vision.core.weights_only import load_weights_only, refusal_reason
from vtk_vision.runs.locate import locate_run
from vtk_vision.runs.schema import EpochStats, ExportRecord, ExportResult, RunRecord, parse_export, parse_run

__all__ = ["RunFolder", "Run", "load_run", "save_weights", "load_weights"]

WEIGHTS, RECORD, LATEST, EXPORTS, EXPORT_RECORD = "model.safetensors", "run.json", "latest", "exports", "export.json"
CHECKPOINT, LOCK, SOURCE_DIR = "checkpoint.pt", ".lock", "model_source"
LEGACY_CHECKPOINT = ("resume.safetensors", "resume.pt")  # written by vtk before checkpoints went to disk each epoch
_LOCKS: dict[Path, int] = {}  # run folder -> the open descriptor this process holds its lock through


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[-40:]


def save_weights(path: Path, model: nn.Module | dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """A state dict as safetensors, written atomically."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    save_tensors(path, {k: v.detach().cpu().contiguous() for k, v in state.items()}, metadata)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise RunError(f"{path} is missing; the run did not finish (resume it with `vtk train --resume "
                       f"{path.parent}`) or its weights were deleted")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise RunError(f"{path} is corrupt ({e}); train the run again") from None


@dataclass(frozen=True)
class RunFolder:
    """One run folder on disk; every file inside it is read and written through here."""

    path: Path

    # ------------------------------------------------------------ finding and creating
    @classmethod
    def create(cls, model: str, dataset: str, runs_dir: str | Path | None = None) -> RunFolder:
        """`runs/<model>-<dataset>-<n>` with the next free n (safe against a parallel run)."""
        root = runs_root(runs_dir)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise VtkError(f"cannot create runs folder {root}: {e.strerror}; pass --runs-dir") from None
        # an external spec (`nets/mynet.py:MyNet`, `torchvision:resnet18`) names its folder after NAME
        stem = f"{_slug(model.rsplit(':', 1)[-1])}-{_slug(dataset.split(':', 1)[-1])}"
        taken = [int(m.group(1)) for p in root.glob(f"{stem}-*")
                 if (m := re.fullmatch(rf"{re.escape(stem)}-(\d+)", p.name))]
        n = max(taken, default=0) + 1
        while True:
            try:
                (path := root / f"{stem}-{n}").mkdir()
                return cls(path)
            except FileExistsError:
                n += 1

    def discard(self, finished: bool = False) -> None:
        """Remove a folder this process just created and could not finish (no run.json yet, or, with
        `finished`, an import whose export then failed): a failure leaves nothing that could be taken for a
        run."""
        import shutil

        if finished or not (self.path / RECORD).exists():
            shutil.rmtree(self.path, ignore_errors=True)

    @classmethod
    def find(cls, run: str | Path | None = None, runs_dir: str | Path | None = None) -> RunFolder:
        """RUN as a path, or as a name under the runs folder; none means the latest complete run."""
        return cls(locate_run(run, runs_dir, RECORD, LATEST))

    @classmethod
    def is_run(cls, run: str | Path, runs_dir: str | Path | None = None) -> bool:
        try:
            cls.find(run, runs_dir)
            return True
        except RunError:
            return False

    def set_latest(self) -> None:
        write_text(self.path.parent / LATEST, self.path.name + "\n")

    # ------------------------------------------------------------ run.json
    def read(self) -> RunRecord:
        where = str(self.path / RECORD)
        try:
            data = json.loads((self.path / RECORD).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RunError(f"{where} is unreadable or not JSON ({e}); train the run again") from None
        return parse_run(data, where)

    def write(self, record: RunRecord) -> None:
        write_json(self.path / RECORD, record.to_json())

    # ------------------------------------------------------------ weights and checkpoints
    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS

    def save_weights(self, model: nn.Module | dict[str, torch.Tensor]) -> None:
        save_weights(self.path / WEIGHTS, model)

    def load_weights(self) -> dict[str, torch.Tensor]:
        return load_weights(self.path / WEIGHTS)

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists() or all((self.path / n).exists() for n in LEGACY_CHECKPOINT)

    def save_checkpoint(self, snapshot: dict) -> None:
        """One file, written atomically: a death mid-write leaves the previous epoch's checkpoint whole."""
        save_torch(self.checkpoint_path, snapshot)

    def load_checkpoint(self) -> dict:
        """The snapshot, through PyTorch's weights-only unpickler (tensors, numbers, strings, containers)."""
        try:
            if self.checkpoint_path.exists():
                return load_weights_only(self.checkpoint_path)
            tensors = load_file(self.path / LEGACY_CHECKPOINT[0])
            rest = load_weights_only(self.path / LEGACY_CHECKPOINT[1])
        except Exception as e:  # any damage means the same thing to the user
            raise RunError(f"resume checkpoint in {printable(self.path)} is damaged or not one vtk wrote "
                           f"({printable(refusal_reason(e))}); it was not loaded. Start a new run") from None
        state = rest.get("state") if isinstance(rest, dict) else None
        if not isinstance(state, dict):
            raise RunError(f"resume checkpoint in {self.path} is not one vtk wrote; start a new run")
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
        return rest | {"model": {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
                       "state": state | {"best_weights": best}}

    def drop_checkpoint(self) -> None:
        for name in (CHECKPOINT, *LEGACY_CHECKPOINT):
            (self.path / name).unlink(missing_ok=True)

    # ------------------------------------------------------------ who is training it
    def lock(self) -> None:
        """Claim the run for this process until it exits. The kernel drops the lock however the process
        ends (kill -9 and OOM included), so a free lock on a "running" run means its trainer died."""
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._busy() from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.uname().nodename}:{os.getpid()}\n".encode())
        except OSError as e:
            os.close(fd)
            raise VtkError(f"cannot write {printable(self.path / LOCK)}: {e.strerror}; free some space") from None
        _LOCKS[self.path] = fd

    def refuse_if_trained(self) -> None:
        """A quick check before slow work (loading data) that `lock` would refuse anyway."""
        if self.trainer_alive():
            raise self._busy()

    def _busy(self) -> RunError:
        return RunError(f"{printable(self.path)} is being trained by process {self.lock_holder()}; wait for it "
                        f"to end, or stop it (Ctrl-C or kill) and resume")

    def lock_holder(self) -> str:
        """host:pid of the lock's holder, as it wrote them, for messages."""
        try:
            return (self.path / LOCK).read_text(errors="replace").strip()[:80] or "?"
        except OSError:
            return "?"

    def unlock(self) -> None:
        fd = _LOCKS.pop(self.path, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock

    def trainer_alive(self) -> bool:
        """Whether some process (this one included) is training this run now."""
        if self.path in _LOCKS:
            return True
        try:
            fd = os.open(self.path / LOCK, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    # ------------------------------------------------------------ training outputs
    def write_metrics(self, history: tuple[EpochStats, ...] | list[EpochStats]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(EpochStats.__dataclass_fields__))
        w.writeheader()
        w.writerows(asdict(h) for h in history)
        write_text(self.path / "metrics.csv", buf.getvalue())

    def check_inside(self, path: Path) -> Path:
        """`path`, unless it is a symbolic link or leads out of the run folder: vtk never writes through one."""
        root = self.path.resolve()
        if path.is_symlink() or (path.exists() and root not in path.resolve().parents):
            raise RunError(f"{printable(path)} is a link that leads out of the run folder {printable(self.path)}; "
                           f"vtk does not write through it. Remove the link (or pass --out for exports)")
        return path

    @property
    def tensorboard_dir(self) -> Path:
        return self.check_inside(self.path / "tb")

    # ------------------------------------------------------------ a user model's source
    def keep_source(self, relative: str, data: bytes) -> str:
        """Write model code into `model_source/RELATIVE` (a module path such as `layers.py` or
        `utils/ops.py`); its path relative to the run folder."""
        parts = relative.split("/")
        if not parts or any(not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", p) for p in parts):
            raise RunError(f"cannot keep model code named {printable(relative)!r} with the run")
        copy = self.check_inside(self.path / SOURCE_DIR / Path(*parts))
        copy.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(copy, data)
        return copy.relative_to(self.path).as_posix()

    def source_files(self) -> list[str]:
        """Everything under `model_source/`, relative to the run folder (folders end in '/')."""
        root = self.path / SOURCE_DIR
        if not root.exists():
            return []
        return sorted(p.relative_to(self.path).as_posix() + ("/" if p.is_dir() and not p.is_symlink() else "")
                      for p in root.rglob("*"))

    def source_file(self, relative: str) -> Path:
        """A file of the run's kept model code; a path that leaves the run folder, a link or anything but a
        .py file is refused."""
        path = self.path / relative
        root = self.path.resolve()
        if Path(relative).is_absolute() or root not in path.resolve().parents or path.is_symlink() \
                or not relative.startswith(SOURCE_DIR + "/") or not relative.endswith(".py"):
            raise RunError(f"{printable(self.path / RECORD)}: model source {printable(relative)!r} is not a .py file "
                           f"inside {SOURCE_DIR}/; vtk runs no code from elsewhere")
        if not path.is_file():
            raise RunError(f"{printable(path)} is missing: the run's copy of its model source was deleted; "
                           f"train the run again")
        return path

    def output(self, name: str) -> Path:
        """Where a named output of this run goes (curves.png, confusion.png, ...); writers write atomically."""
        return self.check_inside(self.path / name)

    # ------------------------------------------------------------ exports
    @property
    def exports_dir(self) -> Path:
        return self.check_inside(self.path / EXPORTS)

    def read_exports(self, folder: Path | None = None) -> ExportRecord:
        path = (folder or self.exports_dir) / EXPORT_RECORD
        if not path.exists():
            return ExportRecord()
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RunError(f"{path} is unreadable or not JSON ({e}); delete it and export again") from None
        return parse_export(data, str(path))

    def record_exports(self, results: list[ExportResult], folder: Path | None = None) -> Path:
        """Merge `results` into export.json of `folder` (default: this run's exports/), by file name."""
        folder = folder or self.exports_dir
        record = self.read_exports(folder)
        artifacts = record.artifacts | {Path(r.path).name: r for r in results}
        write_json(folder / EXPORT_RECORD, ExportRecord(artifacts).to_json())
        return folder / EXPORT_RECORD


@dataclass
class Run:
    """A finished run, ready to use: its folder, record, model (eval mode, CPU) and preprocessing."""

    folder: RunFolder
    record: RunRecord
    model: nn.Module
    preprocess: Preprocess

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def classes(self) -> tuple[str, ...]:
        return self.record.data.classes

    @property
    def has_data(self) -> bool:
        """False for weights imported without a dataset (runs/imported.py): nothing to score them on."""
        return bool(self.record.data.name)

    def dataset(self, data_dir: str | Path | None = None):
        """The dataset this run trained on, checked against what run.json says of it: a record that names
        other data must not be scored on it."""
        from vtk_vision.data import load_dataset

        d = self.record.data
        if not d.name:
            raise RunError(f"{printable(self.path)} holds weights imported without a dataset; import them again "
                           f"with --dataset NAME to measure accuracy")
        ds = load_dataset(d.name, data_dir)
        ours = (list(d.classes), "x".join(map(str, d.image_shape)))
        theirs = (list(ds.classes), "x".join(map(str, ds.shape)))
        if ours != theirs:
            differ = next((i for i, (a, b) in enumerate(zip(ours[0], theirs[0])) if a != b), None)
            what = (f"class {differ} is {ours[0][differ]!r} there and {theirs[0][differ]!r} here" if differ is not None
                    else f"it has {len(ours[0])} classes of {ours[1]} images, {ds.name} here {len(theirs[0])} of "
                         f"{theirs[1]}")
            raise RunError(f"{printable(self.path / RECORD)} does not describe {printable(d.name)} as found here "
                           f"({printable(what)}); point --data-dir at the run's data")
        return ds


def load_run(run: str | Path | None = None, runs_dir: str | Path | None = None, trust_code: bool = False) -> Run:
    """Rebuild the model a run trained and load its weights. A user model is rebuilt from the run's own copy
    of its source, which runs only when this user's vtk made the run or `trust_code` says so (runs/sources.py)."""
    from vtk_vision.models import create_model
    from vtk_vision.runs.sources import build_arguments

    folder = RunFolder.find(run, runs_dir)
    record = folder.read()
    if record.status in ("running", "interrupted"):  # weights of an unfinished run are not its result
        done = f"{len(record.history)} of {record.config.epochs} epochs"
        if folder.trainer_alive():
            raise RunError(f"{printable(folder.path)} is still training ({done}); wait for it to finish")
        raise RunError(f"{printable(folder.path)} did not finish ({'interrupted' if record.status == 'interrupted' else 'its process died'}, "
                       f"{done}); resume it with `vtk train --resume {printable(folder.path)}`")
    m = record.model
    where = printable(folder.path / RECORD)
    try:
        model = create_model(m.name, **m.kwargs, **build_arguments(folder, m, trust_code))
    except VtkError:
        raise
    except Exception as e:  # arguments of the wrong kind or value fail in many ways; all mean the same here
        raise RunError(f"{where}: model arguments {printable(m.kwargs)} do not build {m.name} ({type(e).__name__}: "
                       f"{printable(str(e).splitlines()[0] if str(e) else '')}); train the run again") from None
    state = folder.load_weights()
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise RunError(f"{folder.path / WEIGHTS} does not fit {m.name} {m.kwargs}: "
                       f"{str(e).splitlines()[0]}; train the run again") from None
    try:  # the model run.json describes must be the model it builds: one image through it
        with torch.no_grad():
            outputs = model.eval()(torch.zeros(1, *m.input_shape)).shape
    except Exception as e:
        raise RunError(f"{where}: {m.name} does not take {'x'.join(map(str, m.input_shape))} inputs "
                       f"({type(e).__name__}); train the run again") from None
    if tuple(outputs) != (1, m.num_classes):
        raise RunError(f"{where}: {m.name} built from its arguments gives {outputs[-1]} outputs, but the record "
                       f"says {m.num_classes} classes; train the run again")
    return Run(folder, record, model, Preprocess.from_spec(record.data.preprocess).eval())
