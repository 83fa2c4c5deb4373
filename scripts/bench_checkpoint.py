"""What the per-epoch checkpoint costs: snapshot + atomic write (fsync, rename) of everything a resume needs,
for LeNet-5 and vgg_cifar after real optimizer steps, against a measured training epoch of each.

    .venv/bin/python scripts/bench_checkpoint.py [--repeats 5]

Prints the checkpoint size, the median write time over `--repeats`, the epoch time it is compared with and
their ratio, and the CPU it ran on.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vtk_vision.bench.environment import environment
from vtk_vision.models import create_model
from vtk_vision.runs.folder import RunFolder
from vtk_vision.training.trainer import _State, _snapshot


def measure(name: str, images: int, repeats: int) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    c, h, w = model.vtk_info.input_shape
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x, y = torch.randn(128, c, h, w), torch.randint(0, 10, (128,))
    step_s = []
    for _ in range(6):  # real steps: Adam's moments exist, as at any epoch end after the first
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        step_s.append(time.perf_counter() - t0)
    epoch_s = statistics.median(step_s[1:]) * images / 128
    state = _State(epoch=1, history=[{"epoch": 1}], best_weights=model.state_dict())
    gen = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        folder, times = RunFolder(Path(d)), []
        for _ in range(repeats):
            t0 = time.perf_counter()
            folder.save_checkpoint(_snapshot(model, opt, None, gen, state))
            times.append(time.perf_counter() - t0)
        size = folder.checkpoint_path.stat().st_size
    t = statistics.median(times)
    print(f"{name:10s} checkpoint {size / 1e6:6.2f} MB  write {1e3 * t:7.1f} ms (median of {repeats}, "
          f"min {1e3 * min(times):.1f}, max {1e3 * max(times):.1f})  epoch of {images:,} images ~{epoch_s:7.1f} s  "
          f"-> {100 * t / epoch_s:.3f}% of an epoch")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    env = environment(torch.get_num_threads())
    print(f"{env['cpu']} ({env['cpu_features_text']}), {env['threads']} threads, torch {env['versions']['torch']}")
    measure("lenet5", 50_000, args.repeats)
    measure("vgg_cifar", 41_670, args.repeats)


if __name__ == "__main__":
    main()
