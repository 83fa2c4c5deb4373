"""Accuracy targets with default settings: each runs `vtk train MODEL [--dataset D]` as a user would.

    VTK_DATA_DIR=../shared/datasets .venv/bin/python scripts/bench_accuracy.py [--only lenet5,mlp] [--cpu-epochs-cifar 1]

Prints test accuracy against the target and the whole command's wall time
(start-up, training, final evaluation, plots). vgg_cifar's target is a GPU
target: on a machine without one, it trains `--cpu-epochs-cifar` epochs and
reports what that reaches, labelled as such.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch

from vtk_vision.runs.folder import RunFolder

TARGETS = [  # (model, dataset, extra args, target test accuracy)
    ("lenet5", "fashion-mnist", [], 0.915),
    ("mlp", "fashion-mnist", [], 0.895),
    ("lenet5", "mnist", [], 0.992),
    ("deep_mlp", "mnist", ["--depth", "3"], 0.982),
    ("vgg3", "mnist-rgb", [], 0.993),
    ("vgg_cifar", "cifar10", [], 0.85),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated model:dataset or model names")
    ap.add_argument("--cpu-epochs-cifar", type=int, default=1)
    args = ap.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    gpu = torch.cuda.is_available()
    runs = tempfile.mkdtemp(prefix="vtk-acc-runs-")
    rows = []
    for model, dataset, extra, target in TARGETS:
        if wanted and model not in wanted and f"{model}:{dataset}" not in wanted:
            continue
        cmd = [sys.executable, "-m", "vtk_vision.cli", "train", model, "--dataset", dataset, *extra]
        note = ""
        if model == "vgg_cifar" and not gpu:
            cmd += ["--epochs", str(args.cpu_epochs_cifar)]
            note = f"CPU budget: {args.cpu_epochs_cifar} epoch(s); the target is for a GPU run"
        t0 = time.perf_counter()
        subprocess.run(cmd, env=os.environ | {"VTK_RUNS_DIR": runs}, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        record = RunFolder.find(None, runs).read()  # the latest complete run
        acc = record.accuracy["test"]
        rows.append((model, dataset, target, acc, wall, record.epochs_run, record.device, note))
        print(f"{model:<10}{dataset:<15} target {100 * target:5.1f}%  test {100 * acc:6.2f}%  "
              f"{'met' if acc >= target else 'MISSED':<6} {wall:7.1f} s  {record.epochs_run:>3} epochs  "
              f"{record.device}  {note}", flush=True)


if __name__ == "__main__":
    main()
