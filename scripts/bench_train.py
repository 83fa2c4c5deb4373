"""Training speed on this machine: every candidate setting the probe times, the one it chooses, and vtk's
epoch against the plain tutorial loop.

    VTK_DATA_DIR=../shared/datasets .venv/bin/python scripts/bench_train.py [--fixed] [--full]

1. The probe (training/probe.py) on the default LeNet-5 recipe (batch 256, Fashion-MNIST, the 1,960 steps
   of a default run), measured afresh (--retune): each candidate's images/s and the choice, with the CPU.
2. One steady-state epoch (the second of two: the first carries one-off oneDNN set-up), training pass only,
   of vtk's trainer with that choice, against the tutorial loop: torchvision's FashionMNIST +
   DataLoader(batch_size=100, shuffle=True) with per-sample Pad(2) / ToTensor / Normalize and Adam, on the
   same 32x32 LeNet-5 and the same 50,000 training images (vtk's 1/6 validation split held out); and the
   same epoch with PyTorch's kernels instead of vtk's (median of 3 alternating repeats).
3. With --fixed, the steady epoch of every fixed setting (--amp off/bf16, --kernels vtk/torch, each thread
   count), one after another, against the chosen one: the check that measuring picks the fast one.
4. With --full, a default `vtk train lenet5 --retune` (the probe measured again in it): its wall time, its
   probe's share of its training time, and its test accuracy.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vtk_vision.core.cpu import cpu_name, describe_features
from vtk_vision.core.paths import data_root
from vtk_vision.data import Split, load_dataset
from vtk_vision.data.splits import stratified_indices
from vtk_vision.models import create_model
from vtk_vision.runs.config import TrainConfig
from vtk_vision.runs.setting import Setting
from vtk_vision.training.distributed import World
from vtk_vision.training.trainer import _loss_fn, _optimizer, _prepare, _probe_batch, fit
from vtk_vision.training.tuning import Request, choose_setting, thread_candidates


def tutorial_epoch(indices: torch.Tensor) -> float:
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Pad(2), transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])
    train = Subset(datasets.FashionMNIST(str(data_root()), train=True, transform=tf), indices.tolist())
    loader = DataLoader(train, batch_size=100, shuffle=True)
    torch.manual_seed(0)
    model = create_model("lenet5")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(2):  # the second epoch is the one timed
        t0 = time.perf_counter()
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def vtk_epoch(runs: str, setting: Setting | None = None, **fixed) -> float:
    """A steady-state epoch of the default recipe with `setting` (None: as the probe chooses)."""
    if setting is not None:
        fixed = {"amp": "off" if setting.amp == "fp32" else setting.amp, "threads": setting.threads,
                 "kernels": setting.kernels} | fixed
    cfg = TrainConfig(model="lenet5", epochs=2, device="cpu", runs_dir=runs, **fixed)
    return fit(cfg).record.history[1].seconds


def probe_default_run():
    """The probe as a default `vtk train lenet5` runs it, measured afresh."""
    cfg, device, ds, model, prep = _prepare(TrainConfig(model="lenet5", device="cpu"), World(), None, None, False)
    train_raw, _ = ds.train.subset(cfg.subset, cfg.seed).split(cfg.val_fraction, cfg.seed)
    train = Split(prep.pad(train_raw.images), train_raw.labels)
    steps = -(-len(train) // cfg.batch_size)
    x, y = _probe_batch(train, prep, cfg.batch_size)
    _optimizer(cfg, model)  # as fit() does: the first optimizer's one-off import is not the probe's cost
    return choose_setting(Request(cfg, model, lambda m: _optimizer(cfg, m), _loss_fn(cfg, len(ds.classes), device),
                                  x, y, cfg.epochs * steps, conv=True, retune=True))


def median_of_alternating(fns: dict, repeats: int = 3) -> dict:
    """Each function `repeats` times, interleaved so machine noise hits all alike; the median of each."""
    got = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            got[k].append(f())
    return {k: statistics.median(v) for k, v in got.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixed", action="store_true", help="also time a whole epoch of every fixed setting")
    ap.add_argument("--full", action="store_true", help="also time a default `vtk train lenet5`")
    args = ap.parse_args()
    runs = tempfile.mkdtemp(prefix="vtk-bench-runs-")
    os.environ.setdefault("VTK_STATE_DIR", tempfile.mkdtemp(prefix="vtk-bench-state-"))  # not the user's cache
    budget = torch.get_num_threads()
    print(f"{cpu_name()} ({describe_features()}), {os.cpu_count()} cores, thread budget {budget}, "
          f"torch {torch.__version__}")
    rec = probe_default_run()
    print(f"probe of a default `vtk train lenet5` (batch 256, {rec.planned_s or 0:.1f} s of training steps "
          f"estimated): {rec.probe_s:.2f} s, {100 * rec.probe_s / rec.planned_s if rec.planned_s else 0:.1f}% of them")
    print(f"  {'stage':18} {'setting':40} {'images/s':>9}  {'vs best':>9}  note")
    for f in rec.candidates:  # against the stage's winner, timed beside it (another stage ran at another moment)
        best = max((g.images_per_s for g in rec.candidates if g.stage == f.stage and g.samples), default=None)
        vs = f"{f.images_per_s / best:.2f}x" if f.images_per_s and best else "-"
        print(f"  {f.stage:18} {f.setting.describe():40} {f.images_per_s or 0:9,.0f}  {vs:>9}  {f.note}")
    print(f"chosen: {rec.summary()}")
    labels = load_dataset("fashion-mnist").train.labels
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[stratified_indices(labels, 1 / 6, seed=0)] = False  # the images vtk trains on
    indices = keep.nonzero().flatten()
    ours = vtk_epoch(runs)  # the probe's answer, from the cache it just wrote
    theirs = tutorial_epoch(indices)
    print(f"one LeNet-5 epoch on {len(indices):,} Fashion-MNIST images (CPU):")
    print(f"  tutorial loop (DataLoader, per-sample transforms, {torch.get_num_threads()} threads): {theirs:6.2f} s")
    print(f"  vtk trainer ({rec.chosen.describe()}): {ours:6.2f} s")
    print(f"  ratio vtk / tutorial: {ours / theirs:.2f}x  (target <= 0.35x)")
    if rec.chosen.amp == "fp32":
        e = median_of_alternating({"torch": lambda: vtk_epoch(runs, rec.chosen, kernels="torch"),
                                   "vtk": lambda: vtk_epoch(runs, rec.chosen, kernels="vtk")})
        print("whole vtk epoch (training pass, 50,000 images), median of 3 alternating repeats:")
        print(f"  PyTorch's kernels: {e['torch']:6.2f} s")
        print(f"  vtk's kernels:     {e['vtk']:6.2f} s  ({e['torch'] / e['vtk']:.2f}x)")
    if args.fixed:
        settings = [Setting(amp, n, "vtk" if amp == "fp32" else "torch") for amp in ("fp32", "bf16")
                    for n in thread_candidates(budget)] + \
            [Setting("fp32", n, "torch") for n in thread_candidates(budget)]
        chosen = vtk_epoch(runs, rec.chosen)
        print(f"steady epoch of each fixed setting (one run each; chosen {rec.chosen.describe()}: {chosen:.2f} s):")
        for s in settings:
            t = vtk_epoch(runs, s)
            print(f"  {s.describe():40} {t:6.2f} s  {50_000 / t:8,.0f} img/s  chosen is {t / chosen:.2f}x as fast")
    if args.full:
        full_runs = tempfile.mkdtemp(prefix="vtk-bench-full-")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vtk_vision.cli", "train", "lenet5", "--retune", "--runs-dir", full_runs],
                       check=True)
        wall = time.perf_counter() - t0
        run = json.loads(next(Path(full_runs).glob("*/run.json")).read_text())
        shutil.rmtree(full_runs)
        trained = sum(e["seconds"] for e in run["history"])
        probe_s = (run.get("tuning") or {}).get("probe_s", 0.0)
        print(f"default `vtk train lenet5 --retune`: {wall:.1f} s wall, whole command; epochs {trained:.1f} s; "
              f"probe {probe_s:.2f} s = {100 * probe_s / (trained + probe_s):.1f}% of probe + epochs; "
              f"test accuracy {100 * run['accuracy']['test']:.2f}%")


if __name__ == "__main__":
    main()
