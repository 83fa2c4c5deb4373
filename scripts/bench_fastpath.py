"""Per-shape check of toolkit/core/fastpath.py: each layer of the zoo that its kernels could take,
forward + backward at the recipe's batch size, PyTorch's kernel against vtk's, side by side.

    .venv/bin/python scripts/bench_fastpath.py [--repeats 5]

The kernels are only used where this prints a ratio above 1 (fastpath's bounds
name these shapes); a shape below 1 must stay outside the bounds. Each pair is
timed alternately, so machine noise hits both alike; the figure is the median
of the repeats, with the spread of the ratio over them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from vtk_vision.core.fastpath import conv2d_fast_wgrad, max_pool_2x2, wants_fast_kernel

# (what, batch, layer, input shape without batch): every conv and 2x2 pool of the zoo's models
SHAPES = [
    ("lenet5@32 conv1", 256, lambda: nn.Conv2d(1, 6, 5), (1, 32, 32)),
    ("lenet5@32 conv2", 256, lambda: nn.Conv2d(6, 16, 5), (6, 14, 14)),
    ("lenet5@32 conv3", 256, lambda: nn.Conv2d(16, 120, 5), (16, 5, 5)),
    ("lenet5@32 pool1", 256, lambda: nn.MaxPool2d(2), (6, 28, 28)),
    ("lenet5@32 pool2", 256, lambda: nn.MaxPool2d(2), (16, 10, 10)),
    ("lenet5@28 conv1", 256, lambda: nn.Conv2d(1, 6, 3), (1, 28, 28)),
    ("lenet5@28 conv2", 256, lambda: nn.Conv2d(6, 16, 3), (6, 13, 13)),
    ("lenet5@28 conv3", 256, lambda: nn.Conv2d(16, 120, 3), (16, 5, 5)),
    ("lenet5@28 pool1", 256, lambda: nn.MaxPool2d(2), (6, 26, 26)),
    ("vgg3 conv 3-32 @28", 128, lambda: nn.Conv2d(3, 32, 3, padding=1, bias=False), (3, 28, 28)),
    ("vgg3 conv 64-128 @7", 128, lambda: nn.Conv2d(64, 128, 3, padding=1, bias=False), (64, 7, 7)),
    ("vgg3 conv 128-128 @7", 128, lambda: nn.Conv2d(128, 128, 3, padding=1, bias=False), (128, 7, 7)),
    ("vgg_cifar conv 128-256 @8", 256, lambda: nn.Conv2d(128, 256, 3, padding=1, bias=False), (128, 8, 8)),
    ("vgg_cifar conv 256-256 @8", 256, lambda: nn.Conv2d(256, 256, 3, padding=1, bias=False), (256, 8, 8)),
]


def step_time(layer: nn.Module, x: torch.Tensor, fast: bool, iters: int) -> float:
    """Seconds per forward + backward through PyTorch's kernel or vtk's (whatever the bounds say),
    after two warm-up steps."""
    if isinstance(layer, nn.MaxPool2d):
        call = (lambda: max_pool_2x2(x)) if fast else (lambda: F.max_pool2d(x, 2))
    else:
        call = (lambda: conv2d_fast_wgrad(x, layer.weight, layer.bias, layer.padding)) if fast else (lambda: layer(x))
    for i in range(iters + 2):
        if i == 2:
            t0 = time.perf_counter()
        call().square().mean().backward()
    return (time.perf_counter() - t0) / iters


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{torch.backends.cpu.get_cpu_capability()}; median of {args.repeats} alternating repeats")
    print(f"{'layer':<28}{'batch':>6}{'PyTorch ms':>12}{'vtk ms':>9}{'ratio':>8}{'spread':>15}  used by vtk")
    for what, batch, make, shape in SHAPES:
        torch.manual_seed(0)
        layer = make()
        first = "conv1" in what or "3-32" in what  # a network's first layer gets no input gradient
        x = torch.randn(batch, *shape, requires_grad=not first)
        iters = max(3, int(0.3 / max(step_time(layer, x, False, 1), 1e-4)))
        plain, fast = [], []
        for _ in range(args.repeats):
            plain.append(step_time(layer, x, False, iters))
            fast.append(step_time(layer, x, True, iters))
        ratios = sorted(p / f for p, f in zip(plain, fast))
        used = "yes" if wants_fast_kernel(layer, x) else "no"
        print(f"{what:<28}{batch:>6}{1e3 * statistics.median(plain):>12.3f}{1e3 * statistics.median(fast):>9.3f}"
              f"{statistics.median(plain) / statistics.median(fast):>7.2f}x  {ratios[0]:.2f}-{ratios[-1]:.2f}x"
              f"  {used}")


if __name__ == "__main__":
    main()
