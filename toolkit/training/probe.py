"""Training-step settings timed side by side on copies of the run's model: the measurement behind the
choice training/tuning.py makes.

Why copies: the run's model, optimizer and every random generator must come out of the probe exactly as
they went in, so that a fixed seed with a fixed setting gives the same numbers whether the probe ran or not
(tests/test_tuning.py checks it). The copies train on one fixed batch of the real training split (its first
`batch_size` images, normalised, no augmentation): the run's shapes, dtypes and layers, and no draw from
any generator.

The search, in order; each stage is timed side by side at the winner of the stages before:

1. threads: 1, 2, 4, ... and the whole thread budget, at fp32 (with vtk's kernels where they apply). The
   thread count moves every other figure most (on a loaded 2-core machine a two-thread step measured 9x
   slower than one thread), so it is settled first, at the precision that always works.
2. precision and kernels: the stage-1 winner against bf16 autocast (and fp16 with a grad scaler on CUDA)
   and, where vtk's kernels apply, against PyTorch's kernels at fp32. vtk's kernels are fp32-only, so these
   are variations of one setting, not a product.
3. layout (models with convolutions): the stage-2 winner against the same in the other memory layout.

On 2 cores that is 2 + 3 + 2 = 7 timed slots where the cross product would be 12, and each winner is timed
again beside its challengers instead of against a figure from another moment of a noisy machine.

Within a stage each candidate runs one forward and backward pass whose loss and gradients must be finite
(unscaled, under its autocast; a candidate that fails is recorded and never chosen), then one warm-up step
(one-off kernel setup is behind both). A candidate whose first pass (or the forward part of it) or warm-up
step took over PRUNE times the stage's quickest stops there: bf16 on AVX2 measured 4-14x slower and two
threads on a loaded 2-core machine 9-14x, and timing them further only spends the budget. The rest are
timed in ROUNDS interleaved rounds (A B C A B C ...), each sample k steps of one candidate, k sized so the
stage fits its share of the budget; a candidate's figure is the median of its samples.

Budget: SHARE of the run's training steps (their number times the fastest step measured so far: the run
goes at least that fast), at most CAP_S seconds; everything counts, copies and checks too, and each stage
keeps back the least that each slot of the stages after it costs (check, warm-up, a step a round). A
stage's incumbent (the winner of the stages before) was checked and warmed up there: it is timed again
beside its challengers, with no second check. A stage whose
smallest cost (5 steps a slot) does not fit in SHARE of the run's steps is left out, from the last: a short
run may measure its threads only, or nothing.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import nn

from vtk_vision.core.fastpath import fast_kernels, kernels_apply
from vtk_vision.runs.setting import Figure, Setting

__all__ = ["ProbeJob", "ProbeResult", "Trial", "probe", "fastest", "SHARE", "CAP_S"]

SHARE = 0.03     # of the run's training steps: the most the probe may cost
CAP_S = 30.0     # and never longer than this, however long the run
ROUNDS = 3       # interleaved samples per candidate: the median of three shrugs off one disturbed sample
PRUNE = 3.0      # a warm-up step this many times the stage's fastest cannot win: it is not timed further
SETUP_PRUNE = 8.0  # a first pass carrying new kernels' set-up: only this far behind is it hopeless (bf16 on
                   # AVX2 measured 13-15x; 8x leaves room for set-up that a steady step would not pay)
_CHECK_AND_WARMUP = 2  # steps per candidate before its samples: the finiteness check, one warm-up step
AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
STAGES = ("threads", "precision/kernels", "layout")


class Trial(Protocol):
    """One candidate, ready to run: what the probe needs of it (tests inject trials with made-up times)."""

    def finite(self, limit: float | None = None) -> tuple[bool | None, float, float]:
        """One forward and backward pass: (loss and gradients finite, seconds, seconds of the forward part).
        A forward that took over `limit` seconds stops there: (None, its seconds, its seconds)."""

    def steps(self, k: int) -> float:
        """k training steps; the seconds they took, the device finished."""


@dataclass(frozen=True)
class ProbeJob:
    """What to measure: the run's model and step, one real batch, and the settings allowed to vary."""

    model: nn.Module
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    loss_fn: Callable
    x: torch.Tensor                  # one real batch, normalised, on the device
    y: torch.Tensor
    planned_steps: int               # training steps of the whole run
    amps: tuple[str, ...] = ("fp32",)
    threads: tuple[int, ...] = (1,)
    kernels: tuple[str, ...] = ("torch",)
    layouts: tuple[str, ...] = ("contiguous",)
    share: float = SHARE
    cap_s: float = CAP_S


@dataclass(frozen=True)
class ProbeResult:
    chosen: Setting | None           # None: not measured (`note` says why)
    figures: tuple[Figure, ...] = ()
    probe_s: float = 0.0
    planned_s: float | None = None
    note: str = ""


def fastest(figures: list[Figure] | tuple[Figure, ...]) -> Figure | None:
    """The winner: the most images/s among candidates with finite loss and gradients and timed samples."""
    return max((f for f in figures if f.finite and f.samples and f.images_per_s), key=lambda f: f.images_per_s,
               default=None)


class _Budget:
    """Seconds the probe may still spend; set once the first step has been timed. What it has spent is the
    larger of the steps' own times and the wall clock since it began (copies, checks and set-up count too)."""

    def __init__(self, job: ProbeJob, slots: int, began: float):
        self.job, self.slots_left, self.total, self.steps_s = job, slots, None, 0.0
        self.planned_s, self.began = None, began

    @property
    def spent(self) -> float:
        return max(self.steps_s, time.perf_counter() - self.began)

    def add(self, seconds: float) -> None:
        self.steps_s += seconds

    def step(self, seconds: float) -> None:
        """One step of some candidate took `seconds`: the run will go at least as fast as the fastest seen, so
        its length, and the budget with it, is that step times its steps. Judged on the first step alone, a
        slow first candidate (one thread of two) made the budget 1.7x what the run would take."""
        if self.total is None or seconds * self.job.planned_steps < self.planned_s:
            self.planned_s = seconds * self.job.planned_steps
            self.total = min(self.job.cap_s, self.job.share * self.planned_s)

    def for_stage(self, slots: int) -> float:
        """This stage's share of what is left for timed samples, after keeping back what each slot of the
        stages still to come costs at least (its check, warm-up step and a step a round, at the fastest step
        so far). Keeping back only the checks and warm-ups, the last stage's rounds ran 2-8% past the budget
        (3.02-3.08% of the planned steps, 2-core EPYC)."""
        later = self.slots_left - slots
        fastest = (self.planned_s or 0.0) / max(self.job.planned_steps, 1)
        free = (self.total or 0.0) - self.spent - later * (_CHECK_AND_WARMUP + ROUNDS) * fastest
        self.slots_left = later
        return max(0.0, free) * slots / max(slots + later, 1)

    @property
    def exhausted(self) -> bool:
        return self.total is not None and self.spent >= self.total


def _stage(name: str, settings: list[Setting], trials: Callable[[Setting], Trial], budget: _Budget,
           batch: int, known: dict[Setting, float], forwards: dict[Setting, float]) -> list[Figure]:
    """Check, warm up, prune and time `settings` side by side; one Figure each.

    `known`: seconds a step of each setting timed in an earlier stage. Such a setting (the stage's incumbent)
    was checked finite and warmed up on the same copy and thread count: it is timed again beside its
    challengers, without a second check and warm-up. `forwards`: seconds of each checked setting's forward
    pass (this stage's are added).

    Thread counts are judged on their first pass at PRUNE: they share their kernels, so none of them pays a
    setup the others have not. A new precision or layout sets up its kernels in its first pass, which
    makes it look slower than it is (AMX bf16 compiles its kernels then), so its first pass stops it only
    past SETUP_PRUNE; otherwise its warm-up step is judged at PRUNE. The same bar stops a check after its
    forward pass when the forward alone is that far behind the quickest forward of the stage (its backward
    would only add to it): a 12x slower bf16 pass costs a third as much this way."""
    by_first_pass = name == STAGES[0]
    checks, warm, figures = {}, {}, {}
    for s in settings:
        if s in known:
            checks[s] = warm[s] = known[s]
            continue
        t = trials(s)
        bar = PRUNE if by_first_pass else SETUP_PRUNE
        ref = [(checks[o], forwards[o]) for o in checks if forwards.get(o)]
        ref_step, ref_fwd = min(ref, key=lambda r: r[1], default=(None, None))
        try:
            ok, seconds, fwd = t.finite(bar * ref_fwd if ref_fwd else None)
        except RuntimeError as e:  # a precision or layout this device or model cannot run at all
            ok, seconds, fwd, why = False, 0.0, 0.0, f"failed: {str(e).splitlines()[0][:120]}"
        else:
            why = "loss or gradients not finite: never chosen"
        budget.add(seconds)
        if ok is None:  # its forward alone was hopeless: its step is estimated at the forwards' ratio
            ratio = fwd / ref_fwd
            figures[s] = Figure(s, name, batch / (ratio * ref_step), 0, True,
                                f"stopped after its forward pass: {ratio:.1f}x the quickest forward")
            continue
        forwards[s] = fwd
        if not ok:
            figures[s] = Figure(s, name, None, 0, False, why)
            continue
        quickest = min(checks.values(), default=seconds)
        checks[s] = seconds
        if seconds > (PRUNE if by_first_pass else SETUP_PRUNE) * quickest:  # cannot win: not one step more
            figures[s] = Figure(s, name, batch / seconds, 0, True,
                                f"stopped after its first pass: {seconds / quickest:.1f}x the quickest")
            continue
        warm[s] = t.steps(1)
        budget.add(warm[s])
        budget.step(warm[s])
    stage_s = budget.for_stage(len(settings))  # what is left after the checks and warm-ups, this stage's share
    best = min(warm.values(), default=0.0)
    timed = []
    for s, w in warm.items():
        if w > PRUNE * best:
            figures[s] = Figure(s, name, batch / w, 0, True, f"stopped after warm-up: {w / best:.1f}x the fastest")
        else:
            timed.append(s)
    sample_s = max(0.0, stage_s) / max(len(timed) * ROUNDS, 1)
    k = {s: max(1, int(sample_s / warm[s])) for s in timed}
    samples: dict[Setting, list[float]] = {s: [] for s in timed}
    for _ in range(ROUNDS):
        for s in timed:
            seconds = trials(s).steps(k[s])
            budget.add(seconds)
            budget.step(seconds / k[s])
            samples[s].append(k[s] * batch / seconds)
        if budget.exhausted:  # a whole round each, then stop: every candidate keeps the same number of samples
            break
    for s in timed:
        figures[s] = Figure(s, name, statistics.median(samples[s]), len(samples[s]), True,
                            f"{k[s]} step{'s' * (k[s] != 1)} a sample")
    return [figures[s] for s in settings]


def _plan(job: ProbeJob, vtk_applies: bool) -> tuple[Setting, list[int]]:
    """The starting setting (fp32 where allowed, the whole thread budget) and each stage's number of slots."""
    amp = "fp32" if "fp32" in job.amps else job.amps[0]
    kernels = "vtk" if vtk_applies and amp == "fp32" and "vtk" in job.kernels else \
        ("torch" if "torch" in job.kernels else job.kernels[0])
    start = Setting(amp, max(job.threads), kernels, job.layouts[0])
    variations = len(_variations(start, job, vtk_applies))
    return start, [len(job.threads) if len(job.threads) > 1 else 0, 1 + variations if variations else 0,
                   len(job.layouts) if len(job.layouts) > 1 else 0]


def _variations(s: Setting, job: ProbeJob, vtk_applies: bool) -> list[Setting]:
    """Stage 2: one change each from `s`: another precision (PyTorch's kernels), or the other kernels at fp32."""
    out = [replace(s, amp=a, kernels="torch") for a in job.amps if a != s.amp and "torch" in job.kernels]
    if s.amp == "fp32" and vtk_applies:
        out += [replace(s, kernels=k) for k in ("vtk", "torch") if k != s.kernels and k in job.kernels]
    return out


def probe(job: ProbeJob, trials: Callable[[Setting], Trial] | None = None) -> ProbeResult:
    """Measure the stages above within the budget; the fastest finite setting and every figure.

    `trials` builds a runnable candidate; by default a copy of `job.model` (tests pass made-up ones). The
    caller keeps the RNG and the thread count as they were (training/tuning.py `probed`)."""
    t0 = time.perf_counter()
    vtk_applies = "vtk" in job.kernels and "fp32" in job.amps and job.x.device.type == "cpu" and \
        kernels_apply(copy.deepcopy(job.model), job.x)
    start, slots = _plan(job, vtk_applies)
    if not any(slots):
        return ProbeResult(start, note="one candidate: nothing to measure")
    # stages in order while their smallest cost (each slot: the check, a warm-up step, a step a round) fits
    fits = [sum(slots[:i + 1]) * (_CHECK_AND_WARMUP + ROUNDS) <= job.share * job.planned_steps for i in range(3)]
    if not any(fits[i] for i in range(3) if slots[i]):
        return ProbeResult(None, note=f"not measured: {job.planned_steps:,} training steps are too few for a "
                                      f"probe within {job.share:.0%} of the run")
    with ExitStack() as stack:
        trials = trials or _Trials(job, stack)
        budget = _Budget(job, sum(n for n, ok in zip(slots, fits) if ok), t0)
        figures, best, known, forwards = [], start, {}, {}
        for i, name in enumerate(STAGES):
            settings = [replace(start, threads=n) for n in job.threads] if i == 0 else \
                [best, *_variations(best, job, vtk_applies)] if i == 1 else \
                [best, *(replace(best, layout=lay) for lay in job.layouts if lay != best.layout)]
            if len(settings) < 2:
                continue
            why = "the run is too short to measure it within its budget" if not fits[i] else \
                "the probe's budget was spent" if budget.exhausted else None
            if why:
                figures += [Figure(s, name, None, 0, True, f"not measured: {why}") for s in settings if s != best]
                continue
            got = _stage(name, settings, trials, budget, len(job.y), known, forwards)
            figures += got
            known.update({f.setting: len(job.y) / f.images_per_s for f in got if f.samples})
            winner = fastest(got)
            best = winner.setting if winner is not None else best
    return ProbeResult(best, tuple(figures), time.perf_counter() - t0, budget.planned_s)


class _Trials:
    """Real candidates: one copy of the model and its optimizer per precision, kernels and layout (thread
    counts share a copy), each trained on the job's batch."""

    def __init__(self, job: ProbeJob, stack: ExitStack):
        self.job, self.stack, self.copies = job, stack, {}

    def __call__(self, s: Setting) -> Trial:
        key = (s.amp, s.kernels, s.layout)
        if key not in self.copies:
            self.copies[key] = _Copy(self.job, s, self.stack)
        return _Threaded(self.copies[key], s.threads)


class _Copy:
    def __init__(self, job: ProbeJob, s: Setting, stack: ExitStack):
        fmt = torch.channels_last if s.layout == "channels_last" else torch.contiguous_format
        self.job, self.device = job, job.x.device
        self.model = copy.deepcopy(job.model).to(memory_format=fmt).train()
        self.opt = job.make_optimizer(self.model)
        self.amp = AMP_DTYPES[s.amp]
        self.scaler = torch.amp.GradScaler("cuda") if s.amp == "fp16" else None
        self.x = job.x.contiguous(memory_format=fmt) if job.x.dim() == 4 else job.x
        stack.enter_context(fast_kernels(self.model, enabled=s.kernels == "vtk" and s.amp == "fp32"
                                         and self.device.type == "cpu"))

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _loss(self) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            return self.job.loss_fn(self.model(self.x), self.job.y)

    def finite(self, limit: float | None = None) -> tuple[bool | None, float, float]:
        self._sync()
        t0 = time.perf_counter()
        loss = self._loss()
        self._sync()
        forward = time.perf_counter() - t0
        if limit is not None and forward > limit:
            return None, forward, forward
        self.opt.zero_grad(set_to_none=True)
        loss.backward()  # unscaled, even for fp16: the gradients the precision itself gives
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        ok = bool(torch.isfinite(loss).item()) and all(bool(torch.isfinite(g).all()) for g in grads)
        self._sync()
        return ok, time.perf_counter() - t0, forward

    def steps(self, k: int) -> float:
        self._sync()
        t0 = time.perf_counter()
        for _ in range(k):
            loss = self._loss()
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                loss.backward()
                self.opt.step()
        self._sync()
        return time.perf_counter() - t0


@dataclass(frozen=True)
class _Threaded:
    copy: _Copy
    threads: int

    def finite(self, limit: float | None = None) -> tuple[bool | None, float, float]:
        torch.set_num_threads(self.threads)
        return self.copy.finite(limit)

    def steps(self, k: int) -> float:
        torch.set_num_threads(self.threads)
        return self.copy.steps(k)
