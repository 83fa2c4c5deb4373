"""The training loop, read top to bottom: `fit(TrainConfig(model="lenet5"))`.

The whole split lives on the device as uint8, already padded to the model's
input; each epoch draws a permutation and cuts batches by index, augments the
batch on the device and normalises it there. No DataLoader, no per-sample
Python: on 2 CPU cores this is what makes LeNet-5 epochs several times faster
than the tutorial loop.

At every epoch end (and once before the first) the full training state
(model, optimizer, scheduler, RNG, history, best weights) is written to the
run folder atomically, so any death, seen (Ctrl-C, SIGTERM) or not (kill -9,
OOM, power cut), leaves the last completed epoch on disk.
`fit(..., resume=RunFolder(path))` continues from it exactly: an interrupted
and resumed CPU run ends with the same weights as one never interrupted.
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtk_vision.models import adopt_model, create_model, model_spec
from vtk_vision.models.external import is_external
from vtk_vision.training.augment import Augment
from vtk_vision.runs.config import TrainConfig
from vtk_vision.data import Split, load_dataset
from vtk_vision.core.errors import DataError, RunError, VtkError
from vtk_vision.core.signals import exit_code_of
from vtk_vision.core.text import printable
from vtk_vision.core.inference import logits_of
from vtk_vision.core.fastpath import fast_kernels
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.runs.folder import RunFolder
from vtk_vision.runs.sources import build_arguments
from vtk_vision.runs.schema import EpochStats, RunRecord
from vtk_vision.core.atomic import write_text
from vtk_vision.core.paths import runs_root
from vtk_vision.training.distributed import World, elastic_pointer, global_batches, join_world
from vtk_vision.training.recorder import FollowerRecorder, RunRecorder
from vtk_vision.core.device import resolve_device
from vtk_vision.runs.setting import TuningRecord
from vtk_vision.training.tuning import AMP_DTYPES, Request, check_options, choose_setting, first_epoch, \
    resumed_setting

__all__ = ["fit", "Hooks", "FitResult", "TrainingInterrupted", "TrainingDiverged"]


class TrainingInterrupted(VtkError):
    """Ctrl-C, SIGTERM or SIGHUP: the run is resumable; the message says how, the exit code which signal."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


class TrainingDiverged(VtkError):
    """The loss became NaN or infinite; the best weights so far were kept."""


@dataclass
class Hooks:
    """Callbacks the CLI uses for progress; the loop itself never prints."""

    on_start: Callable[[dict], None] = lambda info: None
    on_batch: Callable[[int, int], None] = lambda i, n: None
    on_epoch: Callable[[EpochStats], None] = lambda row: None
    on_note: Callable[[str], None] = lambda line: None   # something to tell the user between epochs


@dataclass(frozen=True)
class FitResult:
    """Where the run went and what it recorded (the same record run.json holds)."""

    folder: RunFolder
    record: RunRecord

    @property
    def run_dir(self) -> Path:
        return self.folder.path


@dataclass
class _State:
    """Everything that changes during training, and all a resume needs."""

    epoch: int = 0                       # epochs completed
    history: list[dict] = field(default_factory=list)
    best_score: float | None = None
    best_epoch: int = 0
    best_weights: dict | None = None
    stale_epochs: int = 0
    stopped_early: bool = False          # patience ran out: a resume goes straight to the final results


def _loss_fn(cfg: TrainConfig, num_classes: int, device: torch.device) -> Callable:
    smoothing = cfg.label_smoothing or 0.0
    weights = torch.ones(num_classes, device=device)
    for c, w in cfg.class_weights.items():
        if not 0 <= c < num_classes:
            raise VtkError(f"--class-weights names class {c}, but the dataset has classes 0-{num_classes - 1}")
        weights[c] = w
    if not weights.any():
        raise VtkError("--class-weights gives every class weight 0: the loss would be 0/0; keep one above 0")
    if cfg.loss == "ce":
        return lambda logits, y: F.cross_entropy(logits.float(), y, weight=weights,
                                                 label_smoothing=smoothing)

    def mse(logits, y):  # squared error of the softmax against one-hot targets, weighted per sample
        target = F.one_hot(y, num_classes).float()
        if smoothing:
            target = target * (1 - smoothing) + smoothing / num_classes
        per_sample = (logits.float().softmax(1) - target).pow(2).sum(1)
        return (per_sample * weights[y]).sum() / weights[y].sum()
    return mse


def _optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.momentum > 0)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    # fused: one kernel for the whole update; measured ~5% faster per LeNet-5 step on CPU here
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def _scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, steps_per_epoch: int):
    """(scheduler, steps per batch?): one-cycle steps every batch, the others every epoch.

    A run of fewer than 3 steps in all keeps a constant learning rate.
    """
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle" and total >= 3:
        # At least two warm-up steps: OneCycleLR divides by zero when its warm-up is exactly one step.
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total,
                                                   pct_start=max(0.25, 2 / total)), True
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, cfg.step_size, cfg.gamma), False
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.gamma,
                                                          patience=cfg.plateau_patience), False
    return None, False


def _prepare(cfg: TrainConfig, world: World, resume: RunFolder | None, given: nn.Module | None, trust_code: bool):
    """Dataset, model and preprocessing, checked against each other before any work."""
    spec = model_spec(cfg.model, checked=resume is None)  # a resumed run rebuilds from its own copy
    cfg = cfg.resolved(spec.recipe, spec.default_dataset)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world.size > 1:
        device = torch.device("cuda", world.local_rank)
    ds = load_dataset(cfg.dataset, cfg.data_dir, cfg.download)
    torch.manual_seed(cfg.seed)  # model initialisation is part of the seeded run
    if given is not None:  # a model object from Python (vtk_vision.train): its shape and classes from the data
        model = adopt_model(given, (ds.shape[0], *([cfg.input_size] * 2 if cfg.input_size else ds.shape[1:])),
                            len(ds.classes), spec.default_dataset)
        cfg = replace(cfg, model=model.vtk_info.name)
    elif is_external(cfg.model):  # a user's or torchvision's model: channels and size come from the data
        code = build_arguments(resume, resume.read().model, trust_code) if resume is not None else {}
        model = create_model(cfg.model, input_size=cfg.input_size or max(ds.shape[1:]), in_channels=ds.shape[0],
                             num_classes=len(ds.classes), **cfg.model_args, **code)
    else:
        model = create_model(cfg.model, input_size=cfg.input_size, num_classes=len(ds.classes), **cfg.model_args)
    prep = Preprocess(ds.mean, ds.std, ds.shape, model.vtk_info.input_shape)
    return cfg, device, ds, model, prep


def _snapshot(model, opt, sched, gen, state: _State) -> dict:
    return {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(opt.state_dict()),
            "scheduler": copy.deepcopy(sched.state_dict()) if sched else None,
            "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "state": copy.deepcopy(state.__dict__)}


def _restore(snap: dict, model, opt, sched, gen) -> _State:
    model.load_state_dict(snap["model"])
    opt.load_state_dict(snap["optimizer"])
    if sched is not None and snap["scheduler"] is not None:
        sched.load_state_dict(snap["scheduler"])
    gen.set_state(snap["generator"])
    torch.set_rng_state(snap["torch_rng"])
    if snap["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(snap["cuda_rng"])
    return _State(**snap["state"])


def _train_epoch(model, batches, n_batches, opt, sched, per_batch, loss_fn, amp, scaler, hooks,
                 device, world: World) -> tuple[float, float]:
    """One pass over `batches` (an iterator of (x, y)); returns mean loss and accuracy over every rank's images."""
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)  # summed on the device: no sync per batch
    seen = 0
    for i, (x, y) in enumerate(batches):
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            logits = model(x)
            loss = loss_fn(logits, y)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:  # fp16 on CUDA: scale to keep small gradients representable
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        if per_batch:
            sched.step()
        total_loss += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        hooks.on_batch(i + 1, n_batches)
    seen_all = torch.tensor(float(seen), device=device)
    world.total(total_loss, correct, seen_all)
    return (total_loss / seen_all).item(), correct.item() / seen_all.item()


def _batches(split: Split, batch_size: int, gen: torch.Generator, aug: Augment | None, prep: Preprocess,
             memory_format, world: World, aug_gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This epoch's batches: a seeded permutation, augmented and normalised on the device, one at a time.
    Across ranks the permutation is the same and each takes its slice of every batch; augmentation draws
    from `aug_gen` (`gen` itself in one process, a per-rank generator in several, so that `gen` advances
    alike on every rank)."""
    order = torch.randperm(len(split), generator=gen).to(split.labels.device)
    for idx in global_batches(order, batch_size, world):
        x = split.images[idx]
        if aug is not None:
            x = aug.pixels(x, aug_gen)
        x = x.float().div_(255)
        if aug is not None:
            x = aug.floats(x, aug_gen)
        yield prep.normalise(x).contiguous(memory_format=memory_format), split.labels[idx]


@torch.no_grad()
def _val_metrics(model, prep_eval, split: Split, loss_fn, memory_format) -> tuple[float, float]:
    logits = logits_of(model, prep_eval, split.images, memory_format=memory_format)
    return loss_fn(logits, split.labels).item(), (logits.argmax(1) == split.labels).double().mean().item()


def _improved(cfg: TrainConfig, row: dict, state: _State) -> bool:
    score = row[cfg.monitor] if cfg.monitor == "val_acc" else -row[cfg.monitor]
    return state.best_score is None or score > state.best_score + cfg.min_delta


def fit(cfg: TrainConfig, hooks: Hooks | None = None, resume: RunFolder | None = None,
        world: World | None = None, model: nn.Module | None = None, trust_code: bool = False,
        retune: bool = False) -> FitResult:
    """Train `cfg.model` (or `model`, an object built in Python), write its run folder, and return where it
    is and what it reached. `trust_code` lets a resumed run's copy of its model source run although this
    user's vtk did not write it (runs/sources.py).

    Under torchrun (WORLD_SIZE > 1 in the environment) this process is one rank of a data-parallel run
    (training/distributed.py); only rank 0 prints through `hooks` and writes the run folder.

    Precision, kernels, threads and layout are measured before the first epoch unless `cfg` fixes them
    (training/tuning.py); `retune` measures again instead of using this user's cached answer. The thread
    count is PyTorch's again when `fit` returns."""
    threads = torch.get_num_threads()
    world = join_world(cfg.device) if world is None else world
    try:
        return _fit(cfg, hooks if world.main else None, resume, world, model, trust_code, retune)
    finally:
        world.leave()
        torch.set_num_threads(threads)


def _fit(cfg: TrainConfig, hooks: Hooks | None, resume: RunFolder | None, world: World, given: nn.Module | None,
         trust_code: bool, retune: bool) -> FitResult:
    hooks = hooks or Hooks()
    if world.main and resume is not None:
        resume.refuse_if_trained()  # before the data loads; RunRecorder.resume takes the lock itself
    if resume is None:
        check_options(cfg, resolve_device(cfg.device))  # --kernels vtk with bf16, --amp fp16 on CPU: before any work
    cfg, device, ds, model, prep = _prepare(cfg, world, resume, given, trust_code)
    conv = any(isinstance(m, nn.Conv2d) for m in model.modules())

    train_raw, val_split = ds.train.subset(cfg.subset, cfg.seed).split(cfg.val_fraction, cfg.seed)
    for what, split, fix in (("training", train_raw, "raise --subset or lower --val-fraction"),
                             ("validation", val_split, "raise --subset or --val-fraction")):
        if len(split) == 0:  # refused here, before any run folder exists
            raise DataError(f"--subset {cfg.subset:g} with --val-fraction {cfg.val_fraction:g} leaves no {what} "
                            f"images of {ds.name}; {fix}")
    train_raw, val_split, test_split = train_raw.to(device), val_split.to(device), ds.test.to(device)
    train_split = Split(prep.pad(train_raw.images), train_raw.labels)  # padded once, not per batch
    prep = prep.to(device)
    model = model.to(device)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    aug = Augment.for_dataset(ds, cfg.jitter, cfg.flip) if cfg.augment else None
    loss_fn = _loss_fn(cfg, len(ds.classes), device)
    # global batches per epoch; a last one smaller than the world is left out (distributed.global_batches)
    steps = len(train_split) // cfg.batch_size + (len(train_split) % cfg.batch_size >= world.size)
    # Built before the probe: torch's first optimizer imports torch._dynamo (1.5-4 s measured on the 2-core
    # AMD EPYC), a cost every run pays once, probe or not, so the probe's own figure leaves it out. The
    # optimizer keeps the same Parameter objects through .to(memory_format=...) below, and its state is
    # made at the first step: the numbers are those of building it afterwards.
    opt = _optimizer(cfg, model)
    tuning = resumed_setting(resume.read(), device, conv) if resume is not None else choose_setting(Request(
        cfg, model, lambda m: _optimizer(cfg, m), loss_fn, *_probe_batch(train_split, prep, cfg.batch_size),
        cfg.epochs * steps, conv, distributed=world.size > 1, retune=retune))
    tuning = world.share(tuning)  # every rank trains as rank 0 decided
    torch.set_num_threads(tuning.chosen.threads)
    memory_format = torch.channels_last if tuning.chosen.layout == "channels_last" else torch.contiguous_format
    amp = AMP_DTYPES[tuning.chosen.amp]
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    model = model.to(memory_format=memory_format)
    sched, per_batch = _scheduler(cfg, opt, steps)
    step_model = model
    if world.size > 1:
        # channels_last grads of a 1-channel first conv differ in stride from DDP's flat bucket: PyTorch warns
        # that this "may impair performance"; it copies one small tensor, measured as noise for these models
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        step_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    step_model = torch.compile(step_model) if cfg.compile else step_model

    job = _Job(cfg, device, model, step_model, opt, sched, per_batch, gen, aug, prep, memory_format, steps, loss_fn,
               amp, scaler, train_split, train_raw, val_split, test_split, tuning)
    pointer = elastic_pointer(runs_root(cfg.runs_dir))
    writer = None
    if world.main:
        resume = resume or _restarted(pointer)
        per_rank = -(-cfg.batch_size // world.size)
        writer = RunRecorder.resume(resume, world.record(per_rank)) if resume else \
            RunRecorder.create(cfg, ds, model, prep, device, amp, world.record(per_rank), tuning)
    try:
        if writer is not None and pointer is not None:
            write_text(pointer, writer.path.name + "\n")
        resumed, path = world.share((resume is not None, str(writer.path) if world.main else None))
        writer = writer if world.main else FollowerRecorder(path)
        result = FitResult(writer.folder, _run(job, writer, resumed, hooks, world))
    finally:
        if writer is not None:
            writer.close()
    if world.main and pointer is not None:  # finished: nothing left for a restart to resume
        for p in pointer.parent.glob(".torchrun-*"):
            if p.read_text().strip() == writer.path.name:
                p.unlink(missing_ok=True)
    return result


def _restarted(pointer: Path | None) -> RunFolder | None:
    """The run folder of this torchrun job when torchrun restarted it after a failure, to resume. A first
    attempt never follows the pointer: it may be an older job's that shared the rendezvous id."""
    if pointer is None or not pointer.is_file() or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
        return None
    folder = RunFolder(pointer.parent / pointer.read_text().strip())
    return folder if folder.has_checkpoint() and not folder.trainer_alive() else None


@dataclass
class _Job:
    """Everything `fit` built for one run: what the epoch loop and the final results work with."""

    cfg: TrainConfig
    device: torch.device
    model: nn.Module
    step_model: nn.Module       # the model the training step calls (compiled with --compile)
    opt: torch.optim.Optimizer
    sched: Any
    per_batch: bool             # the scheduler steps every batch (one-cycle)
    gen: torch.Generator
    aug: Augment | None
    prep: Preprocess
    memory_format: torch.memory_format
    steps: int                  # batches per epoch
    loss_fn: Callable
    amp: torch.dtype | None
    scaler: Any
    train_split: Split          # padded, on the device
    train_raw: Split
    val_split: Split
    test_split: Split
    tuning: TuningRecord        # how it trains: precision, threads, kernels, layout, and why


def _probe_batch(split: Split, prep: Preprocess, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe's batch: the split's first images, normalised as the run's are (no augmentation, no draw
    from any generator)."""
    return prep.normalise(split.images[:batch_size].float().div_(255)), split.labels[:batch_size]


def _run(job: _Job, writer: RunRecorder | FollowerRecorder, resumed: bool, hooks: Hooks, world: World) -> RunRecord:
    """The epochs and the final results of one run, checkpointed; every way out leaves it complete or resumable."""
    (cfg, device, model, step_model, opt, sched, per_batch, gen, aug, prep, memory_format, steps, loss_fn, amp,
     scaler, train_split, train_raw, val_split, test_split, tuning) = (getattr(job, f) for f in job.__dataclass_fields__)
    state = _State()
    if resumed:
        try:
            state = _restore(world.share(writer.load_checkpoint()), model, opt, sched, gen)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            raise RunError(f"resume checkpoint in {printable(writer.path)} does not fit this run "
                           f"({type(e).__name__}: {printable(e)}); start a new run") from None
    hooks.on_start({"run_dir": writer.path, "device": str(device), "amp": str(amp).replace("torch.", ""),
                    "train": len(train_split), "val": len(val_split), "test": len(test_split),
                    "config": cfg, "start_epoch": state.epoch + 1, "setting": tuning.summary()})
    splits = {"train": train_raw, "val": val_split, "test": test_split}
    t_start = time.perf_counter()
    fast = tuning.chosen.kernels == "vtk" and device.type == "cpu" and amp is None and not cfg.compile  # fastpath.py
    first = state.epoch + 1
    try:
        if not resumed:
            writer.checkpoint(_snapshot(model, opt, sched, gen, state))  # a death in epoch 1 resumes from the start
        with fast_kernels(model, enabled=fast):
            while state.epoch < cfg.epochs and not state.stopped_early:
                t0 = time.perf_counter()
                aug_gen = gen if world.size == 1 else torch.Generator().manual_seed(
                    hash((cfg.seed, state.epoch, world.rank)) % 2**62)  # reproducible, rank's own, resumable
                batches = _batches(train_split, cfg.batch_size, gen, aug, prep, memory_format, world, aug_gen)
                train_loss, train_acc = _train_epoch(step_model, batches, steps, opt, sched, per_batch, loss_fn,
                                                     amp, scaler, hooks, device, world)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - t0
                val_loss, val_acc = world.share(  # rank 0 alone scores the whole split; the others need its answer
                    _val_metrics(model, prep, val_split, loss_fn, memory_format) if world.main else None)
                state.epoch += 1
                row = {"epoch": state.epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
                       "val_acc": val_acc, "lr": opt.param_groups[0]["lr"], "seconds": seconds,
                       "images_per_s": len(train_split) / seconds}  # every rank's images: the run's throughput
                if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                    kept = world.share(writer.finish_diverged(state, model, prep, splits, memory_format))
                    raise TrainingDiverged(
                        f"loss became {train_loss if not math.isfinite(train_loss) else val_loss} at epoch "
                        f"{state.epoch}; {kept}. Lower --lr, or try --amp off")
                state.history.append(row)
                if state.epoch == first and world.main and \
                        (note := first_epoch(tuning, row["images_per_s"], seconds)):
                    hooks.on_note(note)  # a cached setting that ran clearly slower: the next run measures again
                if _improved(cfg, row, state):
                    state.best_score = row["val_acc"] if cfg.monitor == "val_acc" else -row[cfg.monitor]
                    state.best_epoch, state.best_weights, state.stale_epochs = \
                        state.epoch, copy.deepcopy(model.state_dict()), 0
                else:
                    state.stale_epochs += 1
                if sched is not None and not per_batch:
                    sched.step(val_loss) if cfg.schedule == "plateau" else sched.step()
                state.stopped_early = cfg.patience is not None and state.stale_epochs >= cfg.patience
                writer.checkpoint(_snapshot(model, opt, sched, gen, state))  # before run.json says the epoch is done
                writer.epoch(EpochStats(**row))
                hooks.on_epoch(EpochStats(**row))
        model.load_state_dict(state.best_weights)
        return world.share(writer.finish(state, model, prep, splits, memory_format, time.perf_counter() - t_start))
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP (core/signals.py), in any phase
        writer.interrupted()
        done = writer.record.history[-1].epoch if writer.record and writer.record.history else state.epoch
        raise TrainingInterrupted(
            f"{'interrupted' if type(e) is KeyboardInterrupt else f'stopped by {e}'}; {done} epoch(s) are saved "
            f"in {writer.path}. Resume with: vtk train --resume {writer.path}"
            f"{f' --nproc {world.size}' if world.size > 1 else ''}", exit_code_of(e)) from None
    except TrainingDiverged:
        raise
    except RuntimeError as e:  # a data-parallel peer died: the collective fails here, in C++
        if world.size == 1 or not (isinstance(e, torch.distributed.DistError) or "gloo" in str(e).lower()
                                   or "nccl" in str(e).lower()):
            raise
        writer.interrupted()
        raise VtkError(f"rank {world.rank} lost a training process ({str(e).splitlines()[0][:160]}); "
                       f"the run resumes from its last checkpoint: vtk train --resume {writer.path} "
                       f"--nproc {world.size} (with --max-restarts torchrun does so itself)") from None
    except VtkError as e:  # a write that failed (a full disk): the checkpoint before it is whole
        writer.interrupted()
        raise VtkError(f"{e}. The last good checkpoint is kept in {writer.path}; resume with: "
                       f"vtk train --resume {writer.path}") from None
