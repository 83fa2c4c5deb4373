"""First-load vs cached-load time per dataset (a benchmark script, not a test).

    VTK_DATA_DIR=../shared/datasets .venv/bin/python scripts/bench_data.py

Uses a fresh, temporary tensor cache so that "first" really decodes from the
source files (CIFAR-10 includes unpacking its JPEG tarball); "cached" is the
median of 5 further loads. The cache is memory-mapped, so each load also
touches every page of both splits: the time is for data really in memory.
"""

import os
import statistics
import tempfile
import time



def touch(ds) -> int:
    """Read one byte of every 4 KiB page of both splits."""
    return sum(int(s.images.reshape(-1)[::4096].sum()) + int(s.labels[::512].sum()) for s in (ds.train, ds.test))


def main() -> None:
    os.environ["VTK_CACHE_DIR"] = tempfile.mkdtemp(prefix="vtk-bench-cache-")
    from vtk_vision.data import load_dataset

    print(f"{'dataset':<16}{'first load (s)':>16}{'cached load (s)':>17}{'speed-up':>10}")
    for name in ("mnist", "fashion-mnist", "cifar10"):
        t0 = time.perf_counter()
        touch(load_dataset(name))
        first = time.perf_counter() - t0
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            touch(load_dataset(name))
            times.append(time.perf_counter() - t0)
        cached = statistics.median(times)
        print(f"{name:<16}{first:>16.3f}{cached:>17.4f}{first / cached:>9.0f}x")


if __name__ == "__main__":
    main()
