"""Export a model to each format, and let it count only once it matches eager PyTorch.

    export_run(run, ["onnx", "torchscript", "pt2"])   # what `vtk export` does

Each artifact is written under a temporary name, loaded back in its own
runtime, compared with eager PyTorch on the whole test split, and only then
given its metadata (validation results included) and renamed into place. A
failed check leaves nothing behind that could be taken for a good file.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from vtk_vision.exporters import onnx_format, pt2_format, torchscript_format
from vtk_vision.exporters.base import Exportable, ExportOptions, ExportResult, file_size, input_spec
from vtk_vision.exporters.validate import validate
from vtk_vision.core.atomic import atomic_path, write_json
from vtk_vision.core.errors import ExportError, UnknownNameError, ValidationError, VtkError
from vtk_vision.core.preprocess import Preprocess

__all__ = ["FORMATS", "export_model", "export_run", "artifact_name", "read_artifact_metadata", "run_info"]


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    runtime: str
    impl: ModuleType


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", ".onnx", "ONNX Runtime (CPU)", onnx_format),
    Format("torchscript", ".torchscript", "torch.jit.load", torchscript_format),
    Format("pt2", ".pt2", "torch.export.load", pt2_format),
)}


def artifact_name(fmt: str, baked: bool) -> str:
    return f"model{'.raw' if baked else ''}{FORMATS[fmt].suffix}"


def _metadata(info: dict, shape, dtype, opts: ExportOptions, fmt: str) -> dict[str, str]:
    flat = {
        "model": info["model"]["name"], "model_kwargs": json.dumps(info["model"]["kwargs"]),
        "classes": json.dumps(info["classes"]), "input_shape": json.dumps(["batch" if opts.dynamic_batch
                                                                           else opts.batch_size, *shape]),
        "input_dtype": str(dtype).replace("torch.", ""), "preprocess_baked": str(opts.bake_preprocess).lower(),
        "mean": json.dumps(info["preprocess"]["mean"]), "std": json.dumps(info["preprocess"]["std"]),
        "dataset": info.get("dataset") or "", "versions": json.dumps(info.get("versions", {})),
        "description": (f"{info['model']['name']} exported by vtk as {fmt}; input "
                        + ("raw uint8 pixels" if opts.bake_preprocess else "normalised float32 "
                           "((pixels / 255 - mean) / std, zero-padded to the model size)")),
    }
    return flat | {"vtk": json.dumps(flat | {"preprocess": info["preprocess"]})}


def export_model(model: torch.nn.Module, preprocess: Preprocess, fmt: str, out_dir: Path, images: torch.Tensor,
                 labels: torch.Tensor | None, info: dict, opts: ExportOptions = ExportOptions()) -> ExportResult:
    """Write `model` as `fmt` into `out_dir` and validate it on `images` (uint8, dataset size)."""
    if fmt not in FORMATS:
        raise UnknownNameError("format", fmt, [*FORMATS, "all"])
    impl = FORMATS[fmt].impl
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
    final = out_dir / artifact_name(fmt, opts.bake_preprocess)
    result = ExportResult(fmt, str(final), input_shape=["batch" if opts.dynamic_batch else opts.batch_size, *shape],
                          input_dtype=str(dtype).replace("torch.", ""))
    metadata = _metadata(info, shape, dtype, opts, fmt)
    with atomic_path(final) as tmp:
        impl.write(module, example, tmp, opts, metadata)
        validate(result, impl.load(tmp), module, inputs, labels, opts)
        if not result.passed:
            worst = max(result.checks, key=lambda c: c["max_abs_diff"])
            raise ValidationError(
                f"{fmt} export does not match eager PyTorch: max abs diff {result.max_abs_diff:.3g}, max rel diff "
                f"{result.max_rel_diff:.3g}, top-1 agreement {100 * result.agreement:.2f}% (worst at batch "
                f"{worst['batch']}; tolerance atol {opts.atol:g}, rtol {opts.rtol:g}); nothing was written")
        impl.embed(tmp, metadata | {"validation": result.summary_json()})
    if fmt == "pt2":
        pt2_format.sidecar(final, metadata | {"validation": result.summary_json()})
    result.size_bytes, result.seconds = file_size(final), time.perf_counter() - t0
    return result


def read_artifact_metadata(path: Path) -> dict:
    """The metadata vtk embedded in an artifact, whatever its format."""
    for f in FORMATS.values():
        if path.name.endswith(f.suffix):
            return f.impl.read_metadata(path)
    raise VtkError(f"{path} is not a vtk artifact ({', '.join(f.suffix for f in FORMATS.values())})")


def run_info(run) -> dict:
    """What an artifact's metadata says about the run it came from."""
    return {"model": run.meta["model"], "classes": run.classes, "preprocess": run.meta["data"]["preprocess"],
            "dataset": run.meta["data"]["name"], "versions": run.meta.get("versions", {})}


def export_run(run, formats: list[str], out_dir: Path | None = None, opts: ExportOptions = ExportOptions(),
               data_dir: str | None = None) -> tuple[Path, list[ExportResult]]:
    """Export a run in each format (one failing format does not stop the others); write export.json."""
    from vtk_vision.data import load_dataset

    out_dir = Path(out_dir) if out_dir else run.path / "exports"
    ds = load_dataset(run.meta["data"]["name"], data_dir)
    info = run_info(run)
    results = []
    for fmt in formats:
        try:
            results.append(export_model(run.model, run.preprocess, fmt, out_dir, ds.test.images, ds.test.labels,
                                        info, opts))
        except ExportError as e:
            if len(formats) == 1:
                raise
            results.append(ExportResult(fmt, str(out_dir / artifact_name(fmt, opts.bake_preprocess)), error=str(e)))
    _record(out_dir / "export.json", run, opts, results)
    return out_dir, results


def _record(path: Path, run, opts: ExportOptions, results: list[ExportResult]) -> None:
    """Merge these results into export.json, keyed by artifact file name."""
    try:
        record = json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        record = {}
    artifacts = record.get("artifacts", {})
    for r in results:
        artifacts[Path(r.path).name] = r.to_dict() | {"options": opts.__dict__}
    write_json(path, {"run": str(run.path), "model": run.meta["model"], "artifacts": artifacts})
