"""`vtk bench FILE`: latency and throughput of an artifact vtk never wrote, as perf_test and benchmark_app do.

    report = bench_file(Path("resnet18.onnx"), BenchOptions(batch_sizes=(1, 8)), input_size=224)

The inputs are synthetic (seeded), of the shape the file declares
(bench/artifact_input.py). Accuracy is measured only where both labels and
preprocessing are known: vtk's own metadata in the file naming a dataset found
here, or `--dataset` with `--mean`/`--std`. Everywhere else the rows say "not
measured" and the JSON holds null: a number is never made up. The file is
vetted as any artifact is: TorchScript runs only with trust (core/trust.py),
pt2 loads with pickling refused, ONNX is data. With `--scenario` each runtime
that ran also goes under LoadGen (bench/loadgen_scenarios.py) on the same
inputs, as a run's runtimes do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from vtk_vision.bench.artifact_input import DeclaredInput, concrete_shape, declared_input
from vtk_vision.bench.environment import environment
from vtk_vision.bench.loadgen_scenarios import load_section
from vtk_vision.bench.loadgen_sut import loadgen
from vtk_vision.bench.memory import MEASURE
from vtk_vision.bench.rows import Inputs, Row, Target, time_runtime
from vtk_vision.bench.run import TIME_INCLUDES, BenchOptions, numbered
from vtk_vision.bench.summary import fastest
from vtk_vision.core.artifact_metadata import (MAX_ELEMENTS, Unusable, check_elements, elements, normalisation,
                                               text_field)
from vtk_vision.core.errors import ArtifactError, DataError, VtkError
from vtk_vision.core.inference import random_images
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.core.stoppable import Watch, run_stoppable
from vtk_vision.core.text import printable
from vtk_vision.core.trust import require_trusted
from vtk_vision.exporters.formats import format_of_file, get_format, runtimes

__all__ = ["bench_file", "is_artifact_file", "FOREIGN_PRECISION"]

FOREIGN_PRECISION = "file"  # a file vtk did not write: its precision is whatever its author made it
_SYNTHETIC = 256            # synthetic images generated; larger batches repeat them
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "uint8": torch.uint8}


def is_artifact_file(path: Path) -> bool:
    """An existing file whose name ends like an artifact of the format table (model.onnx, x.pt2, ...)."""
    from vtk_vision.core.errors import UnknownNameError

    try:
        format_of_file(path)
    except UnknownNameError:
        return False
    return path.is_file() or not path.exists()  # a missing model.onnx is a file the user meant, not a run


def _runtimes_for(path: Path, requested: tuple[str, ...], explicit: bool) -> list[str]:
    fmt = format_of_file(path)
    able = [r for r in runtimes() if get_format(r).artifact_format == fmt.name]
    chosen = [r for r in requested if r in able]
    if explicit and len(chosen) < len(requested):
        other = [r for r in requested if r not in able]
        raise VtkError(f"--runtime {', '.join(other)} cannot load a {fmt.suffix} file; the runtimes that can: "
                       f"{', '.join(able)}")
    return chosen or able


def _vet(path: Path, names: list[str], trust_code: bool) -> None:
    """Everything vtk must not load is refused before any other work (the file's shape is read after)."""
    for runtime in names:
        fmt = get_format(runtime)
        if fmt.executes_code:
            require_trusted(path, trust_code, otherwise="or bench an ONNX or pt2 export of the model instead")
        if fmt.vet is not None:
            fmt.vet(path)


def _from_metadata(decl: DeclaredInput, shape: tuple[int, ...], data_dir: str | None):
    """The dataset and normalisation the file's own metadata names, checked as data; `Unusable` says why
    accuracy cannot be measured from them. Metadata may name only a dataset of vtk's table: a handed file
    never chooses a folder for vtk to read (`imagefolder:PATH` is for --dataset, given by the user)."""
    from vtk_vision.data import DATASETS, load_dataset

    meta = decl.metadata
    dataset = text_field(meta, "dataset", "") or None
    if dataset is None:
        raise Unusable("no labels: the file names no dataset")
    if dataset not in DATASETS:
        raise Unusable(f"its metadata names the dataset {printable(dataset)!r}, which is not one of vtk's "
                       f"({', '.join(DATASETS)}); a file's metadata never chooses a folder for vtk to read")
    mean, std = normalisation(meta, shape[0]) if decl.dtype != "uint8" and len(shape) == 3 else (None, None)
    try:
        return load_dataset(dataset, data_dir), mean, std
    except DataError as e:
        raise Unusable(f"its metadata names {dataset}, which is not readable here ({e})") from None


def _labelled(decl: DeclaredInput, shape: tuple[int, ...], dataset: str | None, mean, std,
              data_dir: str | None) -> tuple[Inputs | None, str]:
    """Test images prepared as the file wants them with labels, and the dataset's name; or None and why
    accuracy is not measured."""
    from vtk_vision.data import load_dataset

    if dataset is None:
        try:
            if decl.metadata_note:
                raise Unusable(decl.metadata_note)
            ds, mean, std = _from_metadata(decl, shape, data_dir)
        except Unusable as e:
            return None, f"{e}; pass --dataset with --mean and --std to measure accuracy"
    else:
        if decl.dtype != "uint8" and (mean is None or std is None):
            raise VtkError(f"--dataset {dataset} needs --mean and --std too: how the file's author normalised "
                           f"its inputs is not written in it")
        ds = load_dataset(dataset, data_dir)
    if len(ds.test.labels) * elements(shape) > MAX_ELEMENTS:
        return None, (f"{len(ds.test.labels):,} {ds.name} test images at the file's size {list(shape)} are more "
                      f"than the {MAX_ELEMENTS:,} input elements vtk prepares")
    with torch.no_grad():
        if decl.dtype == "uint8":  # preprocessing is inside the graph: raw pixels, (N, H, W) for grey
            x = ds.test.images[:, 0] if len(shape) == 2 else ds.test.images
        else:
            if len(shape) != 3:
                return None, f"the file takes rank-{len(shape) + 1} input; vtk prepares images as (N, C, H, W)"
            try:
                prep = Preprocess(tuple(mean), tuple(std), ds.shape, shape)
            except DataError as e:
                if dataset is not None:  # the user's own choice: their mistake to fix
                    raise
                return None, f"its metadata names {ds.name}, whose images do not fit it ({e})"
            x = prep(ds.test.images).to(_DTYPES[decl.dtype])
    if tuple(x.shape[1:]) != tuple(shape):
        return None, f"{ds.name} images prepare to {list(x.shape[1:])}, the file takes {list(shape)}"
    return Inputs(x.contiguous(), ds.test.labels), ds.name


def _check_dtype(decl: DeclaredInput, path: Path) -> None:
    if decl.dtype not in _DTYPES:
        raise ArtifactError(f"{printable(path.name)} takes {printable(decl.dtype)} input; vtk benches float32, "
                            f"float16 and uint8 inputs")


def _synthetic(decl: DeclaredInput, shape: tuple[int, ...]) -> torch.Tensor:
    n = max(1, min(_SYNTHETIC, MAX_ELEMENTS // elements(shape)))  # large inputs: fewer, repeated in batches
    if decl.dtype == "uint8":
        return random_images(shape, n)
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(0)).to(_DTYPES[decl.dtype])


def _check_classes(runtime: str, path: Path, inputs: Inputs, classes: int, limit_s: float | None) -> None:
    """A file whose outputs do not match the labels' classes cannot be scored on them. Its first call is
    as stoppable as the bench's (core/stoppable.py): the file may be a graph that never ends."""
    watch = Watch(limit_s, runtime)

    def first_outputs() -> torch.Tensor:
        runner = watch.guard(get_format(runtime).load)(path, "cpu", 1)
        watch.cancel = runner.cancel
        return watch.guard(runner.logits)(inputs.x[:2])

    out = run_stoppable(first_outputs, watch)
    if out.dim() != 2 or out.shape[1] < classes:
        raise VtkError(f"{printable(path.name)} gives outputs of shape {list(out.shape[1:])}, which cannot be scored "
                       f"against {classes} classes; leave out --dataset to time it without accuracy")


def _batches(decl: DeclaredInput, shape: tuple[int, ...], requested: tuple[int, ...], path: Path
             ) -> tuple[tuple[int, ...], list[str]]:
    """The batch sizes to time, and notes on those left out: all but a fixed batch, and any batch larger than
    one input tensor vtk builds (refused, before anything is allocated, when none is small enough)."""
    fixed = decl.fixed_batch
    batches = (fixed,) if fixed else requested
    skipped = [b for b in requested if fixed and b != fixed]
    notes = [f"batch {', '.join(map(str, skipped))} skipped: {path.name} fixes its batch at {fixed}"] if skipped else []
    too_large = [b for b in batches if b * elements(shape) > MAX_ELEMENTS]
    if too_large:
        check_elements(shape, printable(path.name), min(batches))
        notes.append(f"batch {', '.join(map(str, too_large))} skipped: more than the {MAX_ELEMENTS:,} input "
                     f"elements vtk builds for one batch of {list(shape)}")
    return tuple(b for b in batches if b not in too_large), notes


def _check_load(opts: BenchOptions, decl: DeclaredInput, path: Path) -> None:
    """LoadGen's scenario on a file, refused before any work where it cannot run: LoadGen must be installed,
    and a file that fixes its batch takes no other: the workers run 1 to --max-batch queries at once."""
    if opts.load is None:
        return
    loadgen()
    fixed, batch = decl.fixed_batch, opts.load.batch
    if fixed and fixed != 1:
        raise VtkError(f"--scenario: {printable(path.name)} fixes its batch at {fixed}, and LoadGen's queries reach "
                       f"the runtime 1 to {batch} at a time; bench an export with a free batch dimension")
    if fixed == 1 and batch != 1:
        raise VtkError(f"--scenario {opts.load.scenario}: {printable(path.name)} fixes its batch at 1, and a worker "
                       f"runs up to {batch} queries as one batch; add --max-batch 1")


def bench_file(path: Path, opts: BenchOptions, input_size: int | None = None,
               input_shape: tuple[int, ...] | None = None, dataset: str | None = None,
               mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
               data_dir: str | None = None, explicit_runtimes: bool = False,
               progress: Callable[[str], None] = lambda msg: None) -> dict:
    """Time `path` with every runtime that loads its format, per provider, thread count and batch size."""
    timing = opts.timing  # --max-time counts from here
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{printable(path)} is not a file")
    if opts.precisions != ("fp32",):
        raise VtkError("--precision picks a run's artifacts; a file is benched as it is")
    names = _runtimes_for(path, opts.runtimes, explicit_runtimes)
    _vet(path, names, opts.trust_code)
    decl = declared_input(path, format_of_file(path))
    shape = concrete_shape(decl, path, input_size, input_shape)
    _check_dtype(decl, path)
    batches, notes = _batches(decl, shape, opts.batch_sizes, path)
    _check_load(opts, decl, path)
    labelled, note = _labelled(decl, shape, dataset, mean, std, data_dir) \
        if (dataset or decl.metadata or decl.metadata_note) \
        else (None, "no labels: pass --dataset with --mean and --std to measure accuracy")
    if labelled is not None:
        _check_classes(names[0], path, labelled, int(labelled.y.max()) + 1, opts.call_timeout_s)
    inputs = labelled or Inputs(_synthetic(decl, shape))
    targets = [Target(r, FOREIGN_PRECISION, p, t, path, path) for p in opts.providers for r in names
               for t in (opts.threads if p == "cpu" else (max(opts.threads),))]
    rows: list[Row] = []
    total = len(targets) * len(batches)
    for target in targets:
        rows += time_runtime(target, inputs, batches, timing.after(rows), numbered(progress, len(rows), total))
    report_rows = [r.to_dict() for r in rows]
    load = {} if opts.load is None else {"load": load_section(targets, inputs.x, opts.load, report_rows, progress)}
    return {"file": str(path), "model": {"name": path.name, **({"vtk": decl.metadata} if decl.metadata else {})},
            "dataset": note if labelled is not None else None, "test_images": len(inputs.x) if labelled else None,
            "accuracy_measured": labelled is not None, "accuracy_note": None if labelled is not None else note,
            "input": {"name": decl.name, "declared": [d if isinstance(d, int) else str(d) for d in decl.dims or []],
                      "fed": ["batch", *shape], "dtype": decl.dtype, "fixed_batch": decl.fixed_batch,
                      "synthetic": labelled is None},
            "eager_cpu_accuracy": None, "eager_cpu_correct": None, "time_includes": TIME_INCLUDES,
            "memory_measure": MEASURE, "options": asdict(opts), "environment": environment(opts.threads),
            "rows": report_rows, "fastest": fastest(report_rows), "notes": notes} | load
