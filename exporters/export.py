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
import time
from pathlib import Path

import torch

from vtk_vision.core.atomic import atomic_path, write_text
from vtk_vision.core.errors import ExportError, UnknownNameError, ValidationError
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.core.trust import remember
from vtk_vision.exporters.base import Exportable, ExportOptions, file_size, input_spec
from vtk_vision.exporters.formats import FORMATS, artifact_formats, format_of_file
from vtk_vision.exporters.validate import validate
from vtk_vision.runs.schema import ExportResult, Provenance

__all__ = ["export_model", "export_run", "artifact_name", "read_artifact_metadata"]


def artifact_name(fmt: str, opts: ExportOptions = ExportOptions()) -> str:
    """model.onnx; model.raw.onnx with preprocessing baked in; model.b4.onnx for a static batch of 4.
    Artifacts that differ in shape or input never share a name, so one never overwrites another."""
    return (f"model{'.raw' if opts.bake_preprocess else ''}{'' if opts.dynamic_batch else f'.b{opts.batch_size}'}"
            f"{FORMATS[fmt].suffix}")


def _metadata(source: Provenance, shape, dtype, opts: ExportOptions, fmt: str) -> dict[str, str]:
    flat = {
        "model": source.model.name, "model_kwargs": json.dumps(source.model.kwargs),
        "classes": json.dumps(list(source.classes)),
        "input_shape": json.dumps(["batch" if opts.dynamic_batch else opts.batch_size, *shape]),
        "input_dtype": str(dtype).replace("torch.", ""), "preprocess_baked": str(opts.bake_preprocess).lower(),
        "mean": json.dumps(list(source.preprocess.mean)), "std": json.dumps(list(source.preprocess.std)),
        "dataset": source.dataset or "", "versions": json.dumps(source.versions),
        "description": (f"{source.model.name} exported by vtk as {fmt}; input "
                        + ("raw uint8 pixels" if opts.bake_preprocess else "normalised float32 "
                           "((pixels / 255 - mean) / std, zero-padded to the model size)")),
    }
    return flat | {"vtk": json.dumps(flat | {"preprocess": source.preprocess.to_dict()})}


def export_model(model: torch.nn.Module, preprocess: Preprocess, fmt: str, out_dir: Path, images: torch.Tensor,
                 labels: torch.Tensor | None, source: Provenance, opts: ExportOptions = ExportOptions()
                 ) -> ExportResult:
    """Write `model` as `fmt` into `out_dir` and validate it on `images` (uint8, dataset size)."""
    if fmt not in artifact_formats():
        raise UnknownNameError("format", fmt, [*artifact_formats(), "all"])
    spec = FORMATS[fmt]
    if not opts.dynamic_batch and opts.batch_size > len(images):
        raise ExportError(f"--batch-size {opts.batch_size} is larger than the {len(images):,} test images it is "
                          f"checked on; choose {len(images)} or fewer")
    t0 = time.perf_counter()
    module = Exportable(model.eval(), preprocess.eval() if opts.bake_preprocess else None).eval()
    shape, dtype = input_spec(model, preprocess, opts.bake_preprocess)
    with torch.no_grad():
        inputs = images if opts.bake_preprocess else preprocess(images)
        if opts.bake_preprocess and preprocess.image_shape[0] == 1:
            inputs = inputs[:, 0]                                # (N, H, W) raw grey pixels
        n_example = 2 if opts.dynamic_batch else opts.batch_size  # dynamo wants >= 2 for a dynamic dim
        example = inputs[:n_example].clone()  # not a view: pt2 saves its example, storage and all
        module(example)  # dry run: a model that cannot run eagerly fails here, not inside an exporter
    final = out_dir / artifact_name(fmt, opts)
    result = ExportResult(fmt, str(final), input_shape=["batch" if opts.dynamic_batch else opts.batch_size, *shape],
                          input_dtype=str(dtype).replace("torch.", ""), options=opts.to_dict())
    metadata = _metadata(source, shape, dtype, opts, fmt)
    with atomic_path(final) as tmp:
        spec.write(module, example, tmp, opts, metadata)
        validate(result, spec.load(tmp, "cpu", torch.get_num_threads()).logits, module, inputs, labels, opts)
        if not result.passed:
            worst = max(result.checks, key=lambda c: c["max_abs_diff"])
            raise ValidationError(
                f"{fmt} export does not match eager PyTorch: max abs diff {result.max_abs_diff:.3g}, max rel diff "
                f"{result.max_rel_diff:.3g}, top-1 agreement {100 * result.agreement:.2f}% (worst at batch "
                f"{worst['batch']}; tolerance atol {opts.atol:g}, rtol {opts.rtol:g}); nothing was written")
        metadata |= {"validation": json.dumps(result.validation())}
        spec.embed(tmp, metadata)
    for sidecar in spec.sidecars(final):
        write_text(sidecar, json.dumps(metadata, indent=2) + "\n")
        result.sidecars.append(sidecar.name)
    if spec.executes_code:
        remember(final)  # this user's vtk wrote it: later loads need no --trust-code
    result.size_bytes, result.seconds = file_size(final), time.perf_counter() - t0
    return result


def read_artifact_metadata(path: Path) -> dict:
    """The metadata vtk embedded in an artifact, whatever its format."""
    return format_of_file(path).read_metadata(path)


def export_run(run, formats: list[str], out_dir: Path | None = None, opts: ExportOptions = ExportOptions(),
               data_dir: str | None = None, images: torch.Tensor | None = None, labels: torch.Tensor | None = None,
               written_by: str = "vtk export") -> tuple[Path, list[ExportResult]]:
    """Export a run in each format (one failing format does not stop the others); record them in export.json.

    `images` / `labels` skip loading the test split when the caller has it already (the bench).
    """
    out_dir = Path(out_dir) if out_dir else run.folder.exports_dir
    run.folder.read_exports(out_dir)  # a damaged export.json is refused before any artifact is written
    created = not out_dir.exists()
    if images is None:
        ds = run.dataset(data_dir)
        images, labels = ds.test.images, ds.test.labels
    results = []
    try:
        for fmt in formats:
            try:
                result = export_model(run.model, run.preprocess, fmt, out_dir, images, labels,
                                      run.record.provenance, opts)
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
