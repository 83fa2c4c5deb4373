"""Export a model to each format, and let it count only once it matches eager PyTorch.

    export_run(run, ["onnx", "torchscript", "pt2"])   # what `vtk export` does

Each artifact is written under a temporary name, loaded back in its own
runtime (the format table's `load`, the same one the bench uses), compared with
eager PyTorch on the whole test split, and only then given its metadata
(validation results included) and renamed into place. A failed check leaves
nothing behind that could be taken for a good file. Every artifact that lands
in a run's exports/ is recorded in its export.json, whoever asked for it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from vtk_vision.core.atomic import atomic_dir, atomic_path, write_text
from vtk_vision.core.errors import ExportError, UnknownNameError, ValidationError
from vtk_vision.core.inference import random_images
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.core.text import printable
from vtk_vision.core.trust import remember, require_state_folder
from vtk_vision.exporters.base import Exportable, ExportOptions, input_spec
from vtk_vision.exporters.formats import FORMATS, artifact_formats, format_of_file
from vtk_vision.exporters.precision import calibration_sample
from vtk_vision.exporters.validate import validate, verdict
from vtk_vision.inspection.sanity import input_size_warning
from vtk_vision.runs.schema import ExportResult, Provenance

__all__ = ["export_model", "export_run", "artifact_name", "check_precision", "read_artifact_metadata"]


def artifact_name(fmt: str, opts: ExportOptions = ExportOptions()) -> str:
    """model.onnx; model.raw.onnx with preprocessing baked in; model.b4.onnx for a static batch of 4;
    model.int8.onnx at reduced precision. Artifacts that differ in shape, input or precision never share a
    name, so one never overwrites another."""
    return (f"model{'.raw' if opts.bake_preprocess else ''}{'' if opts.dynamic_batch else f'.b{opts.batch_size}'}"
            f"{'' if opts.precision == 'fp32' else '.' + opts.precision}{FORMATS[fmt].suffix}")


def check_precision(fmt: str, opts: ExportOptions) -> None:
    """Refuse a format/precision pair that makes no sense, before any work."""
    spec = FORMATS[fmt]
    if opts.precision not in spec.precisions:
        able = [f.name for f in FORMATS.values() if opts.precision in f.reduced]
        raise ExportError(f"--precision {opts.precision} applies to --format {' or '.join(able)}: {fmt} artifacts "
                          f"are {' or '.join(spec.precisions)} only")


def _metadata(source: Provenance, shape, dtype, opts: ExportOptions, fmt: str) -> dict[str, str]:
    flat = {
        "model": source.model.name, "model_kwargs": json.dumps(source.model.kwargs),
        "classes": json.dumps(list(source.classes)),
        "input_shape": json.dumps(["batch" if opts.dynamic_batch else opts.batch_size, *shape]),
        "input_dtype": str(dtype).replace("torch.", ""), "preprocess_baked": str(opts.bake_preprocess).lower(),
        "mean": json.dumps(list(source.preprocess.mean)), "std": json.dumps(list(source.preprocess.std)),
        "dataset": source.dataset or "", "versions": json.dumps(source.versions), "precision": opts.precision,
        "description": (f"{source.model.name} exported by vtk as {fmt}; input "
                        + ("raw uint8 pixels" if opts.bake_preprocess else "normalised float32 "
                           "((pixels / 255 - mean) / std, zero-padded to the model size)")),
    }
    return flat | {"vtk": json.dumps(flat | {"preprocess": source.preprocess.to_dict()})}


def export_model(model: torch.nn.Module, preprocess: Preprocess, fmt: str, out_dir: Path, images: torch.Tensor,
                 labels: torch.Tensor | None, source: Provenance, opts: ExportOptions = ExportOptions(),
                 calibration: torch.Tensor | None = None) -> ExportResult:
    """Write `model` as `fmt` into `out_dir` and validate it on `images` (uint8, dataset size).

    `calibration` (uint8 training images) is what an int8 artifact's activation ranges come from."""
    if fmt not in artifact_formats():
        raise UnknownNameError("format", fmt, [*artifact_formats(), "all"])
    check_precision(fmt, opts)
    spec = FORMATS[fmt]
    if spec.executes_code:  # recorded as this user's once written: refused before writing if it cannot be
        require_state_folder(ExportError)
    if opts.precision != "fp32" and labels is None:
        raise ExportError(f"a {opts.precision} artifact is judged on the test accuracy it loses, and these test "
                          f"images have no labels")
    if opts.precision == "int8" and calibration is None:
        raise ExportError("an int8 export needs calibration images from the training split")
    if not opts.dynamic_batch and opts.batch_size > len(images):
        raise ExportError(f"--batch-size {opts.batch_size} is larger than the {len(images):,} test images it is "
                          f"checked on; choose {len(images)} or fewer")
    final = out_dir / artifact_name(fmt, opts)
    if spec.fixed_batch is not None and opts.dynamic_batch:  # named as the format's plain artifact, shaped as made
        opts = replace(opts, dynamic_batch=False, batch_size=spec.fixed_batch)
    t0 = time.perf_counter()
    module = Exportable(model.eval(), preprocess.eval() if opts.bake_preprocess else None).eval()
    shape, dtype = input_spec(model, preprocess, opts.bake_preprocess)

    def prepared(raw: torch.Tensor) -> torch.Tensor:
        """What the artifact takes: raw pixels ((N, H, W) when grey) when baked, else model inputs."""
        if not opts.bake_preprocess:
            return preprocess(raw)
        return raw[:, 0] if preprocess.image_shape[0] == 1 else raw

    with torch.no_grad():
        inputs = prepared(images)
        n_example = 2 if opts.dynamic_batch else opts.batch_size  # dynamo wants >= 2 for a dynamic dim
        example = inputs[:n_example].clone()  # not a view: pt2 saves its example, storage and all
        module(example)  # dry run: a model that cannot run eagerly fails here, not inside an exporter
    result = ExportResult(fmt, str(final), input_shape=["batch" if opts.dynamic_batch else opts.batch_size, *shape],
                          input_dtype=str(dtype).replace("torch.", ""), options=opts.to_dict())
    metadata = _metadata(source, shape, dtype, opts, fmt)
    result.precision = opts.precision
    with (atomic_dir if spec.folder else atomic_path)(final) as tmp, _companions(spec, tmp, final):
        result.lowering = spec.write(module, example, tmp, opts, metadata) or {}
        if opts.precision != "fp32":
            with torch.no_grad():
                calib = prepared(calibration).contiguous() if calibration is not None else None
            eager = {"module": module, "example": example} if spec.reduce_from_module else {}
            result.reduction = spec.reduce(tmp, opts.precision, opts, calib, **eager)
            result.lowering = result.reduction.pop("lowering", result.lowering)  # a reduced program's own lowering
            metadata |= result.reduction.get("metadata", {})  # what a deployer must know (int8 input scales)
        validate(result, spec.load(tmp, "cpu", torch.get_num_threads()).logits, module, inputs, labels, opts,
                 source.classes)
        if small := input_size_warning(source.model.name, source.model.input_shape):
            result.warnings.insert(0, small)
        if (why := verdict(result, opts)) is not None:
            raise ValidationError(f"{fmt} {opts.precision} export {why}; nothing was written")
        metadata |= {"validation": json.dumps(result.validation())}
        spec.embed(tmp, metadata)
    if (sidecar := spec.metadata_file(final)) is not None:
        write_text(sidecar, json.dumps(metadata, indent=2) + "\n")
    result.sidecars = [p.name for p in spec.sidecars(final)]
    if spec.executes_code:
        remember(final)  # this user's vtk wrote it: later loads need no --trust-code
    result.size_bytes, result.seconds = spec.size_bytes(final), time.perf_counter() - t0
    return result


@contextmanager
def _companions(spec, tmp: Path, final: Path) -> Iterator[None]:
    """The files a writer puts beside its temporary artifact (OpenVINO IR's .bin) move into place with it, just
    before it (the artifact's own rename comes last, so its name never points at missing weights); on failure
    they are removed."""
    try:
        yield
        for got, want in zip(spec.companion_files(tmp), spec.companion_files(final)):
            os.replace(got, want)
    finally:
        for got in spec.companion_files(tmp):
            got.unlink(missing_ok=True)


def read_artifact_metadata(path: Path) -> dict:
    """The metadata vtk embedded in an artifact, whatever its format."""
    return format_of_file(path).read_metadata(path)


def export_run(run, formats: list[str], out_dir: Path | None = None, opts: ExportOptions = ExportOptions(),
               data_dir: str | None = None, dataset=None, written_by: str = "vtk export"
               ) -> tuple[Path, list[ExportResult]]:
    """Export a run in each format (one failing format does not stop the others); record them in export.json.

    `dataset` skips loading the run's data when the caller has it already (the bench).
    """
    for fmt in formats:
        check_precision(fmt, opts)
    out_dir = Path(out_dir) if out_dir else run.folder.exports_dir
    run.folder.read_exports(out_dir)  # a damaged export.json is refused before any artifact is written
    created = not out_dir.exists()
    if not run.has_data and dataset is None:  # imported weights with no data: random inputs, no accuracy
        if opts.precision != "fp32":
            raise ExportError(f"an {opts.precision} artifact is judged on the test accuracy it loses, and "
                              f"{printable(run.path.name)} has no dataset; import its weights with --dataset")
        ds, (images, labels) = None, (random_images(run.record.data.image_shape), None)
    else:
        ds = dataset if dataset is not None else run.dataset(data_dir)
        images, labels = ds.test.images, ds.test.labels
    calibration = None
    if opts.precision == "int8":
        if opts.calibration_size > len(ds.train.labels):
            raise ExportError(f"--calibration-size {opts.calibration_size:,} is more than the "
                              f"{len(ds.train.labels):,} training images; choose fewer")
        calibration = calibration_sample(ds.train.images, ds.train.labels, opts.calibration_size)
    results = []
    try:
        for fmt in formats:
            try:
                result = export_model(run.model, run.preprocess, fmt, out_dir, images, labels,
                                      run.record.provenance, opts, calibration)
                result.written_by = written_by
                results.append(result)
            except ExportError as e:
                if len(formats) == 1:
                    raise
                results.append(ExportResult(fmt, str(out_dir / artifact_name(fmt, opts)), error=str(e),
                                            options=opts.to_dict(), written_by=written_by))
        if any(r.passed for r in results):
            run.folder.record_exports([r for r in results if r.passed], out_dir)
    finally:
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # nothing was exported: leave no empty folder behind
    return out_dir, results
