"""Two bench targets measured side by side in one process, on a trained run's ONNX file:

1. ONNX Runtime CPU vs eager PyTorch at batch 1 (target: ORT >= 8x faster).
2. vtk bench's own overhead: its ONNX batch-1 p50 against a bare
   `session.run` loop over the same file (target: within 10%).

    .venv/bin/python scripts/bench_runtime.py [RUN] [--threads 1] [--repeats 3]

Each pair is timed in alternation `--repeats` times; the medians are compared.
"""

import argparse
import statistics
import sys
import time

import numpy as np
import torch


from vtk_vision.exporters.formats import get_format
from vtk_vision.bench.timing import measure
from vtk_vision.runs.folder import load_run


def bare_loop(sess, feed, out, seconds: float) -> float:
    """The simplest honest client: session.run in a loop, per-call perf_counter, median."""
    samples = []
    end = time.perf_counter() + seconds
    for _ in range(200):  # warm-up
        sess.run([out], feed)
    while time.perf_counter() < end or len(samples) < 50:
        t0 = time.perf_counter_ns()
        sess.run([out], feed)
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", nargs="?")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = load_run(args.run)
    onnx_path = run.path / "exports" / "model.onnx"
    if not onnx_path.exists():
        sys.exit(f"{onnx_path} missing: run `vtk export` first")
    x = run.preprocess(torch.zeros(1, *run.preprocess.image_shape, dtype=torch.uint8) + 128)
    eager = get_format("eager").load(run.model, "cpu", 1)
    ort_runner = get_format("onnx").load(onnx_path, "cpu", args.threads)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    bare = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    feed = {bare.get_inputs()[0].name: np.ascontiguousarray(x.numpy())}
    out = bare.get_outputs()[0].name
    kw = dict(warmup_s=0.3, min_iters=200, min_s=args.seconds)
    e, o, b = [], [], []
    for _ in range(args.repeats):
        e.append(measure(eager.bind(x), **kw).p50)
        o.append(measure(ort_runner.bind(x), **kw).p50)
        b.append(bare_loop(bare, feed, out, args.seconds))
    e, o, b = statistics.median(e), statistics.median(o), statistics.median(b)
    print(f"{run.path.name}, batch 1, CPU, {args.threads} thread(s), median of {args.repeats} alternating repeats")
    print(f"  eager PyTorch p50:          {1e3 * e:8.1f} us")
    print(f"  ONNX Runtime (vtk) p50:     {1e3 * o:8.1f} us   -> {e / o:.1f}x faster than eager (target >= 8x)")
    print(f"  bare session.run loop p50:  {1e3 * b:8.1f} us   -> vtk overhead {100 * (o / b - 1):+.1f}% "
          f"(target within 10%)")


if __name__ == "__main__":
    main()
