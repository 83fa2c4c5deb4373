"""vtk from Python, as in a notebook: the same doors as the command line, returning typed results.

    import vtk_vision as vtk
    run = vtk.train(MyNet(), dataset="fashion-mnist", epochs=3)   # or "mynet.py:MyNet", "lenet5"
    onnx = vtk.export(run, "onnx")                                # [ExportResult]
    report = vtk.benchmark(run, runtimes=["eager", "onnx"])       # BenchReport, .rows: [Row]

Nothing here prints or draws: progress goes to an optional callback and
warnings to the "vtk" logger; errors are `VtkError` with the CLI's one-line
message. A run trained from an object whose class vtk could not keep the
source of reloads from its path only with that object passed again
(`model=`); a `Run` returned here holds its model and needs nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from vtk_vision.core.errors import RunError, VtkError
from vtk_vision.runs.folder import Run, RunFolder, load_run

__all__ = ["train", "load", "export", "benchmark", "recommend", "BenchReport"]


def train(model: str | nn.Module, dataset: str | None = None, *, runs_dir: str | Path | None = None,
          data_dir: str | Path | None = None, on_epoch: Callable | None = None, retune: bool = False,
          quiet: bool = False, **options: Any) -> Run:
    """Train a zoo name, a spec (`mynet.py:MyNet`, `torchvision:resnet18`) or an `nn.Module` object; the Run.

    `options` are TrainConfig fields (epochs, lr, batch_size, subset, device, ...); `amp`, `threads` and
    `kernels` fix what the probe would otherwise measure (all three: no probe), `retune` measures again
    instead of using this machine's cached answer; `run.record.tuning` holds the choice and its figures.
    `on_epoch` gets each epoch's EpochStats as it ends. Unless `quiet`, one line per epoch and any sanity
    warning (inspection/sanity.py) go to stderr, as `vtk train` prints them: a notebook that trains for
    minutes says what it is doing."""
    from vtk_vision.runs.config import TrainConfig
    from vtk_vision.training.trainer import fit

    given = model if isinstance(model, nn.Module) else None
    name = f"object:{type(model).__qualname__}" if given is not None else model
    cfg = TrainConfig(model=name, dataset=dataset, data_dir=str(data_dir) if data_dir else None,
                      runs_dir=str(runs_dir) if runs_dir else None, **options)
    result = fit(cfg, _hooks(on_epoch, cfg.epochs, quiet), model=given, retune=retune)
    if not quiet:
        for line in result.record.warnings:
            _say(f"warning: {line}")
    if given is not None:  # the trained object itself: nothing to rebuild, whatever its source
        return Run(result.folder, result.record, given.eval().cpu(), _preprocess(result.record))
    return load_run(result.folder.path)


def _say(line: str) -> None:
    """One line to stderr. Not `logging`: under Python's default configuration INFO lines never show, and
    the point is that they do; quiet=True is the switch."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _hooks(on_epoch: Callable | None, epochs: int, quiet: bool):
    """The trainer's hooks: the caller's `on_epoch`, and unless `quiet` a line when training starts and one
    per epoch."""
    from vtk_vision.training.trainer import Hooks

    if quiet:
        return Hooks(on_epoch=on_epoch) if on_epoch else None

    def start(info: dict) -> None:
        _say(f"vtk: training {info['config'].model} on {info['config'].dataset} ({info['device']}), "
             f"{info['train']:,} training images, {epochs} epoch(s) -> {info['run_dir']}")

    def epoch(r) -> None:
        _say(f"vtk: epoch {r.epoch}/{epochs}: train loss {r.train_loss:.4f}, val loss {r.val_loss:.4f}, "
             f"val acc {100 * r.val_acc:.2f}%, {r.seconds:.1f}s")
        if on_epoch:
            on_epoch(r)

    return Hooks(on_start=start, on_epoch=epoch, on_note=lambda line: _say(f"vtk: {line}"))


def _preprocess(record):
    from vtk_vision.core.preprocess import Preprocess

    return Preprocess.from_spec(record.data.preprocess).eval()


def load(run: Run | str | Path | None = None, *, model: nn.Module | None = None, runs_dir: str | Path | None = None,
         trust_code: bool = False) -> Run:
    """A finished run (a Run, its folder, its name; None: the latest). `model` is the object a run trained
    from an object needs passed again; its weights are loaded from the run."""
    if isinstance(run, Run):
        return run
    if model is None:
        return load_run(run, runs_dir, trust_code)
    folder = RunFolder.find(run, runs_dir)
    record = folder.read()
    try:
        model.load_state_dict(folder.load_weights())
    except RuntimeError as e:
        raise RunError(f"the model passed does not fit {folder.path.name}'s weights ({str(e).splitlines()[0]})") \
            from None
    return Run(folder, record, model.eval().cpu(), _preprocess(record))


def export(run: Run | str | Path | None = None, formats: str | Sequence[str] = "onnx", *,
           model: nn.Module | None = None, out_dir: str | Path | None = None, data_dir: str | Path | None = None,
           trust_code: bool = False, **options: Any) -> list:
    """Export a run in each format, each checked against eager PyTorch; the ExportResults (export.json rows).

    `formats` is one name, "all" or a list; `options` are ExportOptions fields (precision, dynamic_batch,
    bake_preprocess, opset, ...), held to `vtk export`'s limits before the run is read."""
    from vtk_vision.core.limits import names
    from vtk_vision.exporters import ExportOptions, artifact_formats, export_run
    from vtk_vision.exporters.formats import all_formats, refuse_not_offered

    for name in [formats] if isinstance(formats, str) else formats if isinstance(formats, (list, tuple)) else ():
        if isinstance(name, str):
            refuse_not_offered(name)  # Core ML, TensorRT, ...: why not, as `--format` says it
    formats = names("formats", formats, [*artifact_formats(), "all"], "format")  # as `--format`, before any work
    formats = all_formats() if "all" in formats else list(formats)
    opts = ExportOptions(**options)
    r = load(run, model=model, trust_code=trust_code)
    _, results = export_run(r, formats, Path(out_dir) if out_dir else None, opts, str(data_dir) if data_dir else None)
    return results


@dataclass
class BenchReport:
    """`vtk bench`'s report: one Row per runtime x precision x provider x batch, and how it was measured."""

    rows: list
    environment: dict
    report: dict = field(repr=False)   # the whole report, as bench.json holds it

    def ok(self) -> list:
        return [r for r in self.rows if r.status == "ok"]


def benchmark(target: Run | str | Path | None = None, *, model: nn.Module | None = None,
          data_dir: str | Path | None = None, progress: Callable[[str], None] | None = None, save: bool = False,
          input_size: int | None = None, input_shape: Sequence[int] | None = None, dataset: str | None = None,
          mean: Sequence[float] | None = None, std: Sequence[float] | None = None, **options: Any) -> BenchReport:
    """Accuracy and latency per runtime, provider, thread count and batch size, of a run or of an .onnx /
    .torchscript / .pt2 file vtk never wrote (synthetic inputs; `input_size`, `input_shape`, `dataset` with
    `mean`/`std` as for `vtk bench FILE`). `options` are BenchOptions fields (runtimes, providers, batch_sizes,
    threads, precisions, min_s, trust_code, ...), held to `vtk bench`'s limits before any work; a bare name or
    number is one (`runtimes="onnx"`); `load=LoadOptions("server", slo_ms=1.0)` (vtk_vision.bench.loadgen_scenarios)
    adds LoadGen's scenario as `report["load"]`. `save` writes RUN/bench.json (or FILE.bench.json)."""
    from vtk_vision.bench.foreign import bench_file, is_artifact_file
    from vtk_vision.bench.report import write_outputs
    from vtk_vision.bench.rows import Row
    from vtk_vision.bench.run import BenchOptions, bench_run

    opts = BenchOptions(**options)  # checked there against the CLI's limits (core/limits.py)
    report_progress = progress or (lambda m: None)
    data = str(data_dir) if data_dir else None
    if isinstance(target, (str, Path)) and is_artifact_file(Path(target)):
        report = bench_file(Path(target), opts, input_size, tuple(input_shape) if input_shape else None, dataset,
                            tuple(mean) if mean else None, tuple(std) if std else None, data,
                            explicit_runtimes="runtimes" in options, progress=report_progress)
        out = Path(f"{Path(target).name}.bench.json")
    else:
        r = load(target, model=model, trust_code=opts.trust_code)
        report = bench_run(r, opts, data, progress=report_progress)
        out = r.folder.output("bench.json")
    if save:
        write_outputs(report, out)
    return BenchReport([Row(**row) for row in report["rows"]], report["environment"], report)


def recommend(sources: str | Path | Sequence[str | Path] | None = None, *, max_p99_ms: float | None = None,
              max_accuracy_drop: float | None = None, max_size_bytes: int | None = None,
              scenario: str | None = None, min_qps: float | None = None, runs_dir: str | Path | None = None):
    """`vtk recommend`'s record from measured rows only: runs (Run, folder, name; None: the latest) or bench JSON
    files. A Recommendation: `.pick` (None when nothing fits, then `.closest`), `.why`, `.front`, `.rejected`
    ((row, [constraints missed])), `.ties`; `.to_dict()` is what `--json` prints."""
    from vtk_vision.bench.recommend import Constraints
    from vtk_vision.bench.recommend import recommend as choose
    from vtk_vision.bench.recommend_input import bench_files, read_sources

    given = [sources] if isinstance(sources, (str, Path, Run)) else list(sources or [])
    paths = [s.folder.output("bench.json") if isinstance(s, Run) else s for s in given]
    constraints = Constraints(max_p99_ms, max_accuracy_drop, max_size_bytes, scenario, min_qps)
    return choose(read_sources(bench_files(paths, runs_dir)), constraints)
