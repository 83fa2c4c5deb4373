"""Training speed: vtk's epoch against the plain tutorial loop, side by side in one run.

    VTK_DATA_DIR=../shared/datasets .venv/bin/python scripts/bench_train.py [--full]

The tutorial loop is torchvision's FashionMNIST + DataLoader(batch_size=100,
shuffle=True) with per-sample Pad(2) / ToTensor / Normalize and Adam, on the
same 32x32 LeNet-5 and the same 50,000 training images vtk uses (its 1/6
validation split held out). Both times are of a steady-state epoch (the
second of two: the first carries one-off oneDNN set-up), training pass only,
no evaluation. vtk runs its default LeNet-5 recipe (batch 256, no augmentation, no dropout).
Also prints the training-step throughput with PyTorch's kernels, with vtk's
fast CPU kernels (toolkit/core/fastpath.py) and with bf16 autocast (why CPU
training stays fp32 on AVX2 machines), and with --full the wall time and test accuracy of a
default `vtk train lenet5`.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from vtk_vision.models import create_model
from vtk_vision.core.paths import data_root
from vtk_vision.runs.config import TrainConfig
from vtk_vision.data import load_dataset
from vtk_vision.data.splits import stratified_indices
from vtk_vision.core.fastpath import fast_kernels
from vtk_vision.training.trainer import fit


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


def vtk_epoch(runs: str, fast: bool = True) -> float:
    """A steady-state epoch of the default recipe; `fast=False` swaps vtk's CPU kernels for PyTorch's."""
    from contextlib import nullcontext
    from unittest import mock

    cfg = TrainConfig(model="lenet5", epochs=2, device="cpu", runs_dir=runs)
    off = mock.patch("vtk_vision.training.trainer.fast_kernels", lambda model, enabled: nullcontext(model))
    with nullcontext() if fast else off:
        return fit(cfg).record.history[1].seconds


def step_throughput(amp: bool = False, fast: bool = False, steps: int = 20, bs: int = 256) -> float:
    """Images/s of LeNet-5 training steps on one fixed batch (no data path): the kernels alone."""
    torch.manual_seed(0)
    model = create_model("lenet5")
    opt = torch.optim.AdamW(model.parameters(), 1e-3, fused=True)
    x, y = torch.randn(bs, 1, 32, 32), torch.randint(0, 10, (bs,))
    with fast_kernels(model, enabled=fast):
        for i in range(steps + 5):
            if i == 5:
                t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return steps * bs / (time.perf_counter() - t0)


def median_of_alternating(fns: dict, repeats: int = 3) -> dict:
    """Each function `repeats` times, interleaved so machine noise hits all alike; the median of each."""
    got = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            got[k].append(f())
    return {k: statistics.median(v) for k, v in got.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="also time a default `vtk train lenet5`")
    args = ap.parse_args()
    runs = tempfile.mkdtemp(prefix="vtk-bench-runs-")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}")
    labels = load_dataset("fashion-mnist").train.labels
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[stratified_indices(labels, 1 / 6, seed=0)] = False  # the images vtk trains on
    indices = keep.nonzero().flatten()
    ours = vtk_epoch(runs)
    theirs = tutorial_epoch(indices)
    print(f"one LeNet-5 epoch on {len(indices):,} Fashion-MNIST images (CPU):")
    print(f"  tutorial loop (DataLoader, per-sample transforms): {theirs:6.2f} s")
    print(f"  vtk trainer (device tensors, fast CPU kernels):   {ours:6.2f} s")
    print(f"  ratio vtk / tutorial: {ours / theirs:.2f}x  (target <= 0.35x)")
    e = median_of_alternating({"plain": lambda: vtk_epoch(runs, fast=False), "fast": lambda: vtk_epoch(runs)})
    print("whole vtk epoch (training pass, 50,000 images), median of 3 alternating repeats:")
    print(f"  PyTorch's kernels: {e['plain']:6.2f} s")
    print(f"  vtk's fast kernels: {e['fast']:5.2f} s  ({e['plain'] / e['fast']:.2f}x)")
    r = median_of_alternating({"plain": step_throughput, "fast": lambda: step_throughput(fast=True),
                               "bf16": lambda: step_throughput(amp=True)})
    print("LeNet-5 training step, batch 256, median of 3 alternating repeats:")
    print(f"  fp32, PyTorch's kernels:        {r['plain']:8,.0f} img/s")
    print(f"  fp32, vtk's fast CPU kernels:   {r['fast']:8,.0f} img/s  ({r['fast'] / r['plain']:.2f}x)")
    print(f"  bf16 autocast, PyTorch kernels: {r['bf16']:8,.0f} img/s  ({r['bf16'] / r['plain']:.2f}x)")
    if args.full:
        env = os.environ | {"VTK_RUNS_DIR": runs}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vtk_vision.cli", "train", "lenet5"], env=env, check=True)
        print(f"default `vtk train lenet5`: {time.perf_counter() - t0:.1f} s wall, whole command")


if __name__ == "__main__":
    main()
