"""How a run trains (precision, kernels, threads, memory layout): fixed by the user's options, remembered
from an earlier measurement of the same thing on this machine, or measured now (training/probe.py).

    record = choose_setting(Request(cfg, model, make_optimizer, loss_fn, x, y, planned_steps, conv))
    record.summary()   # 'cpu fp32, 2 threads, vtk kernels (measured in 1.2 s: 1 thread 1.60x slower, ...)'

Why measured: a rule written from one CPU's figures ("AVX-512 means bf16") made LeNet-5 training 2.6x
slower on the next CPU, and nothing on screen said so. Nothing here reads a CPU flag to decide speed;
`--amp`, `--threads` and `--kernels` fix what they name and the probe measures the rest.

The cache, `state_root()/training-settings.json`, keeps one measured answer per key: the CPU's name and
flags (or the GPU), torch's version, the model's layers and parameter shapes, the input shape, the batch,
the optimizer, augmentation, the thread budget and the options fixed. The next run of the same thing starts
at once and says "cached". `--retune` measures again. After the first epoch of a run that measured, its
images/s is kept as the expectation; a later run on the cached answer whose first epoch is over STALE times
slower (a busier machine, another workload on the cores) marks the entry stale, and the run after that
measures again.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vtk_vision.core.atomic import write_json
from vtk_vision.core.cpu import cpu_identity
from vtk_vision.core.errors import ProviderError, VtkError
from vtk_vision.core.paths import state_root
from vtk_vision.runs.config import TrainConfig
from vtk_vision.runs.schema import RunRecord
from vtk_vision.runs.setting import Setting, TuningRecord
from vtk_vision.training.probe import AMP_DTYPES, ProbeJob, Trial, probe

__all__ = ["Request", "check_options", "choose_setting", "resumed_setting", "first_epoch", "cache_path", "thread_candidates",
           "AMP_DTYPES"]

CACHE_FILE = "training-settings.json"
STALE = 1.5        # a first epoch this many times slower than when the answer was measured: measure again
JUDGE_S = 2.0      # a shorter first epoch is mostly one-off setup: too little to judge a cached answer by
MAX_ENTRIES = 200  # the cache keeps the newest this many answers


@dataclass(frozen=True)
class Request:
    """One run about to train: its options, its model and step, one real batch, and its length in steps."""

    cfg: TrainConfig
    model: nn.Module
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    loss_fn: Callable
    x: torch.Tensor
    y: torch.Tensor
    planned_steps: int
    conv: bool
    distributed: bool = False
    retune: bool = False


def cache_path():
    return state_root() / CACHE_FILE


def thread_candidates(budget: int) -> tuple[int, ...]:
    """1, 2, 4, ... below the budget, and the budget itself: a handful even on 64 cores."""
    return tuple(sorted({1, budget} | {2 ** i for i in range(budget.bit_length()) if 2 ** i < budget}))


def check_options(cfg: TrainConfig, device: torch.device) -> None:
    """Refuse option pairs that cannot train (--amp fp16 on CPU, --kernels vtk beside bf16), before any work."""
    _fixed(cfg, device)


def _fixed(cfg: TrainConfig, device: torch.device) -> dict[str, object]:
    """The options the user gave: {'amp': 'bf16', 'threads': 1, 'kernels': 'vtk'}; refused pairs are errors."""
    fixed: dict[str, object] = {}
    if cfg.amp != "auto":
        fixed["amp"] = "fp32" if cfg.amp == "off" else cfg.amp
        if fixed["amp"] == "fp16" and device.type != "cuda":
            raise ProviderError("--amp fp16 needs a CUDA device; on CPU use --amp bf16 or --amp off")
    if cfg.threads is not None:
        fixed["threads"] = cfg.threads
    if cfg.kernels != "auto":
        fixed["kernels"] = cfg.kernels
        if cfg.kernels == "vtk" and (device.type != "cpu" or fixed.get("amp", "fp32") != "fp32" or cfg.compile):
            raise VtkError("--kernels vtk are fp32 CPU kernels for eager training: use them with --device cpu, "
                           "--amp off and without --compile, or choose --kernels torch")
    return fixed


def _candidates(req: Request, device: torch.device, fixed: dict) -> dict[str, tuple]:
    """What each dimension may take: the user's value, or every candidate worth timing on `device`."""
    cpu = device.type == "cpu"
    return {"amps": (fixed["amp"],) if "amp" in fixed else ("fp32", "bf16") if cpu else ("fp32", "bf16", "fp16"),
            "threads": (fixed["threads"],) if "threads" in fixed else
            (thread_candidates(torch.get_num_threads()) if cpu else (torch.get_num_threads(),)),
            "kernels": (fixed["kernels"],) if "kernels" in fixed else (("vtk", "torch") if cpu else ("torch",)),
            "layouts": (("contiguous", "channels_last") if cpu else ("channels_last", "contiguous")) if req.conv
            else ("contiguous",)}


def _unmeasured(device: torch.device, fixed: dict, conv: bool, compiled: bool) -> Setting:
    """The setting of a run nothing was measured for: the user's values, else fp32 on the current threads,
    vtk's kernels on CPU, and the layout each device measured best for conv nets (see docs/train.md)."""
    amp = fixed.get("amp", "fp32")
    kernels = fixed.get("kernels", "vtk" if device.type == "cpu" and amp == "fp32" and not compiled else "torch")
    return Setting(amp, int(fixed.get("threads", torch.get_num_threads())), kernels,
                   "channels_last" if conv and device.type == "cuda" else "contiguous")


def choose_setting(req: Request, trials: Callable[[Setting], Trial] | None = None) -> TuningRecord:
    """The setting this run trains with, and how it was decided; `trials` replaces real timing in tests."""
    device = req.x.device
    fixed = _fixed(req.cfg, device)
    names = tuple(fixed)
    everything = ("amp",) if device.type == "cuda" else ("amp", "threads", "kernels")
    default = _unmeasured(device, fixed, req.conv, req.cfg.compile)
    if set(everything) <= set(fixed):
        return TuningRecord(default, "fixed", device.type, fixed=names)
    why = "data-parallel runs are not measured" if req.distributed else \
        "--compile: the probe times eager steps, not compiled ones" if req.cfg.compile else None
    if why:
        return TuningRecord(default, "default", device.type, note=f"not measured: {why}", fixed=names)
    key, about = _key(req, device, fixed)
    if not req.retune:
        cached = _Cache.load().answer(key)
        if cached is not None:
            return cached.moved(how="cached", probe_s=0.0, fixed=names, key=key)
    options = _candidates(req, device, fixed)
    with _kept_state():
        got = probe(ProbeJob(req.model, req.make_optimizer, req.loss_fn, req.x, req.y, req.planned_steps,
                             **options), trials)
    if got.chosen is None or not got.figures:
        return TuningRecord(got.chosen or default, "default", device.type, note=got.note, fixed=names,
                            probe_s=got.probe_s)
    record = TuningRecord(got.chosen, "measured", device.type, got.figures, time.strftime("%Y-%m-%d %H:%M"),
                          names, round(got.probe_s, 3), got.planned_s and round(got.planned_s, 2), key)
    cache = _Cache.load()
    cache.put(key, about, record)
    cache.save()
    return record


def resumed_setting(record: RunRecord, device: torch.device, conv: bool) -> TuningRecord:
    """A resumed run trains as it started (the same numbers as never interrupted); a run from before vtk
    recorded its setting continues with what it recorded (its amp) and the defaults of the time."""
    if record.tuning is not None:
        return record.tuning.moved(how="resumed", note="as the run started; resumed runs are not measured again")
    amp = {"bfloat16": "bf16", "float16": "fp16"}.get(record.amp, "fp32")
    setting = _unmeasured(device, {"amp": amp}, conv, record.config.compile)
    return TuningRecord(setting, "resumed", device.type, note="as the run started (recorded before vtk "
                                                              "measured settings)")


def first_epoch(record: TuningRecord, images_per_s: float, seconds: float) -> str | None:
    """After the first epoch: keep its pace as the expectation of a measured answer, or judge a cached one.
    Returns a line to show when the cached answer turned out stale."""
    if record.how not in ("measured", "cached") or not record.key or seconds < JUDGE_S:
        return None
    cache = _Cache.load()
    entry = cache.entries.get(record.key)
    if entry is None:
        return None
    expected = entry.get("epoch_images_per_s")
    note = None
    if record.how == "measured" or not isinstance(expected, (int, float)) or expected <= 0:
        entry["epoch_images_per_s"] = round(images_per_s, 1)
    elif images_per_s * STALE < expected:
        entry["stale"] = True
        note = (f"this epoch ran {expected / images_per_s:.1f}x slower than when the cached setting was measured "
                f"({images_per_s:,.0f} against {expected:,.0f} images/s): the next run measures again")
    else:
        return None
    cache.save()
    return note


def _signature(model: nn.Module) -> str:
    """The architecture as layer types and parameter shapes: what the step's kernels depend on."""
    parts = [type(model).__qualname__] + [f"{n}:{type(m).__name__}" for n, m in model.named_modules()] + \
        [f"{n}:{tuple(p.shape)}:{p.dtype}" for n, p in model.named_parameters()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _key(req: Request, device: torch.device, fixed: dict) -> tuple[str, dict]:
    machine = cpu_identity() if device.type == "cpu" else f"{torch.cuda.get_device_name(device)} (capability " \
        f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))})"
    about = {"device": device.type, "machine": machine, "torch": torch.__version__, "model": _signature(req.model),
             "input": list(req.x.shape[1:]), "batch": len(req.y), "optimizer": req.cfg.optimizer,
             "augment": bool(req.cfg.augment), "thread_budget": torch.get_num_threads(), "fixed": fixed}
    return hashlib.sha256(json.dumps(about, sort_keys=True).encode()).hexdigest()[:24], about


@contextmanager
def _kept_state() -> Iterator[None]:
    """Every generator a run draws from, and the thread count, as they were: the probe leaves no trace."""
    cuda = torch.cuda.is_initialized()
    saved = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if cuda else None, np.random.get_state(),
             random.getstate(), torch.get_num_threads())
    try:
        yield
    finally:
        torch.set_rng_state(saved[0])
        if cuda:
            torch.cuda.set_rng_state_all(saved[1])
        np.random.set_state(saved[2])
        random.setstate(saved[3])
        torch.set_num_threads(saved[4])


class _Cache:
    """The per-user file of measured answers. A file that does not parse is measured over, never fatal."""

    def __init__(self, entries: dict):
        self.entries = entries

    @classmethod
    def load(cls) -> _Cache:
        try:
            data = json.loads(cache_path().read_text(encoding="utf-8"))
            entries = data["entries"] if isinstance(data, dict) and isinstance(data.get("entries"), dict) else {}
        except (OSError, UnicodeDecodeError, ValueError):
            entries = {}
        return cls({k: v for k, v in entries.items() if isinstance(v, dict)})

    def answer(self, key: str) -> TuningRecord | None:
        entry = self.entries.get(key)
        if entry is None or entry.get("stale"):
            return None
        try:
            return TuningRecord.from_dict(entry.get("record"))
        except ValueError:
            return None

    def put(self, key: str, about: dict, record: TuningRecord) -> None:
        self.entries.pop(key, None)
        self.entries[key] = {"about": about, "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                             "record": record.to_dict(), "epoch_images_per_s": None, "stale": False}
        while len(self.entries) > MAX_ENTRIES:
            self.entries.pop(next(iter(self.entries)))

    def save(self) -> None:
        """Atomic (core/atomic.py); two runs finishing at once may keep only one's answer, never a torn file."""
        write_json(cache_path(), {"version": 1, "entries": self.entries})
