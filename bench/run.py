"""`vtk bench`: accuracy and latency per runtime x provider x batch size for one run.

    report = bench_run(load_run(), BenchOptions(providers=["cpu"]))

Artifacts come from the run's `exports/` (exported and validated first when
missing). Each row holds the accuracy of that runtime on the whole test split
at that batch size, its difference from eager PyTorch on CPU, and latency
statistics from raw per-call samples. A runtime that fails gets a row with
the reason; the others go on.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from vtk_vision.bench.environment import environment
from vtk_vision.bench.timing import measure
from vtk_vision.exporters import ExportOptions, artifact_name, export_run, get_format, runtimes
from vtk_vision.exporters.runner import PROVIDERS, Runner, cuda_problem
from vtk_vision.core.errors import ArtifactError, ExportError, ProviderError, VtkError
from vtk_vision.core.text import printable
from vtk_vision.core.trust import require_trusted

__all__ = ["BenchOptions", "Row", "bench_run", "resolve_providers", "TIME_INCLUDES"]

TIME_INCLUDES = ("one call of the runtime on a batch already in place (device-resident on CUDA, via "
                 "ORT I/O binding for ONNX); excludes preprocessing and host<->device copies; CUDA "
                 "times end after the device has finished")


@dataclass(frozen=True)
class BenchOptions:
    providers: tuple[str, ...] = ("cpu",)
    runtimes: tuple[str, ...] = tuple(runtimes())
    batch_sizes: tuple[int, ...] = (1, 8, 64, 256)
    warmup_s: float = 0.3
    min_iters: int = 50
    min_s: float = 1.0
    threads: int = 2
    precisions: tuple[str, ...] = ("fp32",)  # reduced ones run on the runtimes whose artifact format has them
    trust_code: bool = False   # load TorchScript files this user's vtk did not write (core/trust.py)


@dataclass
class Row:
    runtime: str
    provider: str
    batch: int
    precision: str = "fp32"
    status: str = "ok"            # ok | failed | n/a
    reason: str | None = None
    artifact: str | None = None
    size_bytes: int | None = None
    accuracy: float | None = None
    accuracy_delta: float | None = None  # against eager PyTorch on CPU
    correct: int | None = None
    latency_ms: dict | None = None
    images_per_s: float | None = None  # batch / p50 latency: the median, which one stall cannot drag
    session_s: float | None = None
    first_inference_s: float | None = None
    peak_rss_mb: float | None = None   # process high-water mark after this row
    gpu_peak_mb: float | None = None   # PyTorch allocator peak (CUDA, PyTorch runtimes)
    active_providers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


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


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


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
    for p in path.values():  # a device, a pipe, or a link out of the run folder is no artifact to read
        run.folder.check_inside(p)
        if not p.is_file():
            raise ArtifactError(f"{printable(p)} is not a regular file; export again")
    return {(r, p): path[(f, p)] for (r, p), f in needed.items()}


def _accuracy(runner: Runner, x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[float, int]:
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((runner.logits(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return correct / len(x), correct


def _bench_one(runtime: str, precision: str, provider: str, opts: BenchOptions, model, artifact: Path | None,
               x: torch.Tensor, y: torch.Tensor, reference: float, progress) -> list[Row]:
    base = {"runtime": runtime, "precision": precision, "provider": provider,
            "artifact": str(artifact) if artifact else None,
            "size_bytes": artifact.stat().st_size if artifact else None}
    try:
        t0 = time.perf_counter()
        fmt = get_format(runtime)
        if provider not in fmt.providers:
            return [Row(batch=b, status="n/a", reason=f"{runtime} runs on {', '.join(fmt.providers)}, not {provider}",
                        **base) for b in opts.batch_sizes]
        runner = fmt.load(artifact if fmt.has_file else model, provider, opts.threads)
        session_s = time.perf_counter() - t0
        call = runner.bind(x[:1])
        t0 = time.perf_counter()
        call()
        runner.sync()
        first_s = time.perf_counter() - t0
    except ArtifactError:
        raise  # a file vtk refuses to load (untrusted code, pickled objects) stops the bench: one line, exit 1
    except ProviderError as e:
        return [Row(batch=b, status="failed", reason=str(e), **base) for b in opts.batch_sizes]
    except Exception as e:  # a runtime that cannot load must not stop the others; its rows say why
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else 'no message'}"
        return [Row(batch=b, status="failed", reason=reason, **base) for b in opts.batch_sizes]
    rows = []
    for b in opts.batch_sizes:
        progress(f"{runtime}{'' if precision == 'fp32' else ' ' + precision} on {provider}, batch {b}")
        try:
            if runner.cuda_events:
                torch.cuda.reset_peak_memory_stats()
            acc, correct = _accuracy(runner, x, y, b)
            reps = -(-b // len(x))  # a batch larger than the test split repeats it: b images are timed
            batch_x = x[:b] if b <= len(x) else x.repeat(reps, 1, 1, 1)[:b]
            lat = measure(runner.bind(batch_x), runner.sync, warmup_s=opts.warmup_s, min_iters=opts.min_iters,
                          min_s=opts.min_s, cuda_events=runner.cuda_events)
        except Exception as e:  # one failing runtime/batch must not stop the others; the row says why
            rows.append(Row(batch=b, status="failed", reason=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}",
                            **base))
            continue
        rows.append(Row(batch=b, accuracy=acc, accuracy_delta=acc - reference, correct=correct,
                        latency_ms=lat.to_dict(), images_per_s=b / (lat.p50 / 1e3), session_s=session_s,
                        first_inference_s=first_s, peak_rss_mb=_peak_rss_mb(),
                        gpu_peak_mb=torch.cuda.max_memory_allocated() / 2**20 if runner.cuda_events else None,
                        active_providers=runner.active, **base))
    return rows


def bench_run(run, opts: BenchOptions, data_dir: str | None = None,
              progress: Callable[[str], None] = lambda msg: None) -> dict:
    """Benchmark every runtime x provider x batch size; return the report (rows, environment, reference)."""

    unknown = sorted(set(opts.runtimes) - set(runtimes()))
    if unknown:
        raise VtkError(f"unknown runtime {', '.join(unknown)}; choose from {', '.join(runtimes())}")
    pairs = _combinations(opts)
    torch.set_num_threads(opts.threads)
    ds = run.dataset(data_dir)
    artifacts = _artifacts(run, pairs, ds, progress)
    for (runtime, _), path in artifacts.items():  # every file vtk must not load is refused before any work
        fmt = get_format(runtime)
        if fmt.executes_code:
            require_trusted(path, opts.trust_code)
        if fmt.vet is not None:
            fmt.vet(path)
    with torch.no_grad():
        x = run.preprocess(ds.test.images).contiguous()  # prepared once, before any clock starts
    y = ds.test.labels
    reference, ref_correct = _accuracy(get_format("eager").load(run.model, "cpu", opts.threads), x, y, 256)
    rows: list[Row] = []
    for provider in opts.providers:
        for runtime, precision in pairs:
            rows += _bench_one(runtime, precision, provider, opts, run.model, artifacts.get((runtime, precision)),
                               x, y, reference, progress)
    return {"run": str(run.path), "model": run.record.model.to_dict(), "dataset": ds.name, "test_images": len(y),
            "eager_cpu_accuracy": reference, "eager_cpu_correct": ref_correct, "time_includes": TIME_INCLUDES,
            "options": asdict(opts), "environment": environment(opts.threads), "rows": [r.to_dict() for r in rows]}
