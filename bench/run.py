"""`vtk bench`: accuracy and latency per runtime x provider x thread count x batch size for one run.

    report = bench_run(load_run(), BenchOptions(providers=("cpu",), threads=(1, 2)))

The run-specific part: artifacts come from the run's `exports/` (exported and
validated first when missing), inputs are its test split, and the reference
is eager PyTorch's accuracy on CPU. The timing itself is `bench/rows.py`,
which needs none of these. A runtime that fails gets rows with the reason;
the others go on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from vtk_vision.bench.environment import environment
from vtk_vision.bench.loadgen_scenarios import LoadOptions, load_section
from vtk_vision.bench.loadgen_sut import loadgen
from vtk_vision.inspection.sanity import warnings_for
from vtk_vision.bench.memory import MEASURE
from vtk_vision.bench.percentiles import min_samples
from vtk_vision.bench.rows import (
    Inputs,
    Row,
    Target,
    Timing,
    measure_accuracy,
    time_runtime,
)
from vtk_vision.bench.summary import fastest
from vtk_vision.core.inference import random_images
from vtk_vision.core.errors import ArtifactError, ExportError, ProviderError, VtkError
from vtk_vision.core.limits import BENCH_LIMITS, names, number, numbers
from vtk_vision.core.providers import PRECISIONS
from vtk_vision.core.text import printable
from vtk_vision.core.trust import require_trusted
from vtk_vision.exporters import (
    ExportOptions,
    artifact_name,
    export_run,
    get_format,
    runtimes,
)
from vtk_vision.exporters.formats import default_runtimes
from vtk_vision.exporters.runner import PROVIDERS, cuda_problem

__all__ = ["TIME_INCLUDES", "BenchOptions", "Row", "bench_run", "default_threads", "resolve_providers"]

TIME_INCLUDES = ("one call of the runtime on a batch already in place (device-resident on CUDA, via "
                 "ORT I/O binding for ONNX); excludes preprocessing and host<->device copies; CUDA "
                 "times end after the device has finished")


def default_threads() -> tuple[int, ...]:
    """1 and every core this process may use, plus half of them on larger machines (one per physical
    core where there are two hardware threads a core): the counts whose answer is not obvious."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return tuple(sorted({1, cores, *((cores // 2,) if cores >= 8 else ())}))


@dataclass(frozen=True)
class BenchOptions:
    providers: tuple[str, ...] = ("cpu",)
    runtimes: tuple[str, ...] = tuple(default_runtimes())  # those not in "all" (web, device formats) only when asked
    batch_sizes: tuple[int, ...] = (1, 8, 64, 256)
    warmup_s: float = 0.3
    min_iters: int = min_samples(0.9)  # 64: enough for the p90 of p90/p50 (bench/percentiles.py)
    min_s: float = 1.0
    threads: tuple[int, ...] | int = ()  # one row per count; () is default_threads(); an int is one count
    precisions: tuple[str, ...] = ("fp32",)  # reduced ones run on the runtimes whose artifact format has them
    trust_code: bool = False   # load TorchScript files this user's vtk did not write (core/trust.py)
    max_spread: float = 1.5    # p90/p50 above this: the row is timed again (rows.Timing)
    max_rounds: int = 3
    keep_samples: bool = True
    call_timeout_s: float | None = 60.0  # one runtime call longer than this is stopped (rows.Timing)
    load: LoadOptions | None = None  # also run an MLPerf LoadGen scenario per target (bench/loadgen_scenarios.py)
    max_time_s: float | None = None  # no row starts after this many seconds of timing; None: no cap

    def __post_init__(self):
        """`vtk bench`'s limits (core/limits.py), checked at once and named as Python spells them; a bare
        name or number is one of it."""
        put = partial(object.__setattr__, self)
        put("runtimes", names("runtimes", self.runtimes, runtimes(), "runtime"))
        put("providers", names("providers", self.providers, PROVIDERS, "provider"))
        put("precisions", names("precisions", self.precisions, PRECISIONS, "precision"))
        put("batch_sizes", numbers("batch_sizes", self.batch_sizes, BENCH_LIMITS["batch_sizes"]))
        put("threads", numbers("threads", self.threads, BENCH_LIMITS["threads"], allow_empty=True)
            or default_threads())
        for name in ("warmup_s", "min_iters", "min_s", "max_spread", "max_rounds"):
            number(name, getattr(self, name), BENCH_LIMITS[name])
        if self.load is not None and not isinstance(self.load, LoadOptions):
            raise VtkError(f"load must be a LoadOptions (vtk_vision.bench.loadgen_scenarios), not "
                           f"{type(self.load).__name__}")
        if self.max_time_s is not None:
            number("max_time_s", self.max_time_s, BENCH_LIMITS["max_time_s"])

    @property
    def timing(self) -> Timing:
        """The timing settings, with --max-time's deadline counted from now: read it once, as timing starts."""
        return Timing(self.warmup_s, self.min_iters, self.min_s, self.max_spread, self.max_rounds,
                      self.keep_samples, self.call_timeout_s,
                      deadline=None if self.max_time_s is None else time.monotonic() + self.max_time_s)


def resolve_providers(requested: str | None) -> tuple[str, ...]:
    """cpu | cuda | tensorrt | all | None (cpu, plus cuda when a GPU is present); GPU checked up front."""
    if requested is None:
        return ("cpu", "cuda") if cuda_problem() is None else ("cpu",)
    if requested == "all":
        return PROVIDERS
    if requested in ("cuda", "tensorrt") and (why := cuda_problem()) is not None:
        raise ProviderError(f"--provider {requested}: {why}. Run on a machine with an NVIDIA GPU, "
                            f"or use --provider cpu")
    return (requested,)


def _combinations(opts: BenchOptions) -> list[tuple[str, str]]:
    """(runtime, precision) pairs to time: each runtime at each requested precision it has."""
    pairs = [(r, p) for p in opts.precisions for r in opts.runtimes if p in get_format(r).precisions]
    for p in opts.precisions:
        if not any(q == p for _, q in pairs):
            able = [r for r in runtimes() if p in get_format(r).precisions]
            raise VtkError(f"--precision {p}: none of the runtimes asked for ({', '.join(opts.runtimes)}) runs "
                           f"{p}; it runs on {', '.join(able)}")
    return pairs


def _artifacts(run, pairs: list[tuple[str, str]], dataset, progress) -> dict[tuple[str, str], Path]:
    """The plain (float-input, dynamic-batch) artifact each runtime loads at each precision; missing ones are
    exported, validated (reduced precisions through their accuracy gate) and recorded in export.json."""
    needed = {(r, p): get_format(r).artifact_format for r, p in pairs if get_format(r).has_file}
    path = {(f, p): run.folder.exports_dir / artifact_name(f, ExportOptions(precision=p))
            for (_, p), f in needed.items()}
    for precision in sorted({p for _, p in path}):
        missing = sorted(f for (f, p), file in path.items() if p == precision and not file.exists())
        if not missing:
            continue
        progress(f"exporting {', '.join(missing)} at {precision} (missing from {run.folder.exports_dir})")
        _, results = export_run(run, missing, opts=ExportOptions(precision=precision), dataset=dataset,
                                written_by="vtk bench")
        failed = [r for r in results if not r.passed]
        if failed:
            raise ExportError(f"the bench needs {', '.join(r.format for r in failed)} at {precision} exported "
                              f"first, and that failed: " + "; ".join(f"{r.format}: {r.error}" for r in failed))
    for (f, _), p in path.items():  # a device, a pipe, or a link out of the run folder is no artifact to read
        run.folder.check_inside(p)
        if p.is_symlink() or not (p.is_dir() if get_format(f).folder else p.is_file()):
            raise ArtifactError(f"{printable(p)} is not a regular file; export again")
    return {(r, p): path[(f, p)] for (r, p), f in needed.items()}


def _targets(run, opts: BenchOptions, pairs, artifacts) -> list[Target]:
    """Every group of rows, in table order. Thread counts multiply the CPU rows only: on a GPU the host
    threads barely matter, so GPU rows run once, at the largest count."""
    out = []
    for provider in opts.providers:
        for runtime, precision in pairs:
            artifact = artifacts.get((runtime, precision))
            for threads in opts.threads if provider == "cpu" else (max(opts.threads),):
                out.append(Target(runtime, precision, provider, threads, artifact or run.model, artifact))
    return out


def _refuse_unloadable(artifacts: dict[tuple[str, str], Path], trust_code: bool) -> None:
    """Every file vtk must not load is refused before any work."""
    for (runtime, _), path in artifacts.items():
        fmt = get_format(runtime)
        if fmt.executes_code:
            require_trusted(path, trust_code)
        if fmt.vet is not None:
            fmt.vet(path)


def numbered(progress: Callable[[str], None], done: int, total: int) -> Callable[[int, str], None]:
    """'row 5 of 24: onnx on cpu, batch 64, 2 threads' for the i-th batch of a group after `done` rows."""
    return lambda i, what: progress(f"row {done + i + 1} of {total}: {what}")


def bench_run(run, opts: BenchOptions, data_dir: str | None = None,
              progress: Callable[[str], None] = lambda msg: None) -> dict:
    """Benchmark every runtime x provider x thread count x batch size; return the report (rows, environment,
    reference, the fastest thread count per runtime and batch)."""
    timing = opts.timing  # --max-time counts from here: exporting missing artifacts is part of the bench
    pairs = _combinations(opts)
    if opts.load is not None:
        loadgen()  # a missing LoadGen is one line before any work
    ds = run.dataset(data_dir) if run.has_data else None  # weights imported without data: timing only
    artifacts = _artifacts(run, pairs, ds, progress)
    _refuse_unloadable(artifacts, opts.trust_code)
    with torch.no_grad():  # prepared once, before any clock starts
        x = run.preprocess(ds.test.images if ds else random_images(run.record.data.image_shape)).contiguous()
    y = ds.test.labels if ds else None
    reference = measure_accuracy(get_format("eager").load(run.model, "cpu", max(opts.threads)), Inputs(x, y), 256,
                                 keep_predictions=True)
    warnings = warnings_for(reference.pop("predictions", None), y, run.record.model, run.record.data.classes)
    inputs = Inputs(x, y, reference.get("accuracy"))
    targets = _targets(run, opts, pairs, artifacts)
    total = len(targets) * len(opts.batch_sizes)
    rows: list[Row] = []
    for target in targets:
        rows += time_runtime(target, inputs, opts.batch_sizes, timing.after(rows), numbered(progress, len(rows), total))
    report_rows = [r.to_dict() for r in rows]
    load = {} if opts.load is None else {"load": load_section(targets, x, opts.load, report_rows, progress)}
    return {"run": str(run.path), "model": run.record.model.to_dict(), "dataset": ds.name if ds else None,
            "test_images": len(y) if ds else None, "accuracy_measured": ds is not None,
            "accuracy_note": None if ds else "the run holds weights imported without a dataset",
            "input": {"fed": ["batch", *run.record.model.input_shape], "dtype": "float32", "synthetic": ds is None},
            "eager_cpu_accuracy": reference.get("accuracy"), "eager_cpu_correct": reference.get("correct"),
            "time_includes": TIME_INCLUDES, "memory_measure": MEASURE, "options": asdict(opts),
            "environment": environment(opts.threads), "rows": report_rows, "fastest": fastest(report_rows),
            "warnings": warnings} | load
