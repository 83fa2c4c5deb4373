"""`vtk export`: a run to the formats of the format table, each checked against eager PyTorch."""

from __future__ import annotations

from pathlib import Path

import click
from vtk_vision.cli.app import cli, console, emit_json
from vtk_vision.cli.options import (
    Bounded,
    LazyChoice,
    data_dir_option,
    json_flag,
    run_argument,
    runs_dir_option,
    table_width,
    wide_flag,
)
from vtk_vision.core.errors import VtkError
from vtk_vision.core.providers import CALIBRATION_METHODS, PRECISIONS
from vtk_vision.runs.config import Limit


def _formats():
    from vtk_vision.exporters.formats import artifact_formats

    return artifact_formats()


@cli.command()
@run_argument
@click.option("--format", "fmt", type=LazyChoice(_formats, ("all",)), default="onnx",
              show_default=True, help="Artifact format.")
@click.option("--opset", type=click.IntRange(1), help="ONNX opset (default: the exporter's own).")
@click.option("--dynamic-batch/--static-batch", default=True, show_default=True,
              help="A dynamic batch dimension named `batch`, or a fixed one.")
@click.option("--batch-size", type=click.IntRange(1), default=1, show_default=True,
              help="The fixed batch of a --static-batch export.")
@click.option("--bake-preprocess", is_flag=True,
              help="Input raw uint8 pixels; scaling, padding and normalisation inside the graph.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="int8: ONNX Runtime static QDQ quantization; fp16: fp16 weights and compute, fp32 input and "
              "output. Either lands only within --max-accuracy-drop of fp32 on the whole test split.")
@click.option("--calibration-size", type=click.IntRange(1, 100_000), default=None,
              help="int8: seeded, class-balanced training images to calibrate on.  [default: 512]")
@click.option("--calibration-method", type=click.Choice(CALIBRATION_METHODS), default=None,
              help="int8: how activation ranges are chosen (entropy: ORT's KL search over a 2048-bin "
              "histogram).  [default: minmax]")
@click.option("--max-accuracy-drop", type=Bounded(Limit(0, 100)), default=None,
              help="Points of test accuracy a reduced-precision artifact may lose against fp32 eager.  "
              "[default: 0.5]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: RUN/exports).")
@json_flag
@wide_flag
@runs_dir_option
@data_dir_option
def export(run: str | None, fmt: str, opset: int | None, dynamic_batch: bool, batch_size: int,
           bake_preprocess: bool, precision: str, calibration_size: int | None, calibration_method: str | None,
           max_accuracy_drop: float, out_dir: Path | None, as_json: bool, wide: bool, runs_dir: Path | None,
           data_dir: Path | None) -> None:
    """Export RUN (default: the latest) and check each artifact against eager PyTorch on the test split."""
    from vtk_vision.exporters import (
        ExportOptions,
        artifact_formats,
        check_precision,
        export_run,
    )
    from vtk_vision.present.tables import fmt_bytes, table
    from vtk_vision.runs.folder import load_run

    if opset is not None and fmt not in ("onnx", "all"):
        raise click.UsageError("--opset applies to --format onnx only")
    if batch_size != 1 and dynamic_batch:
        raise click.UsageError("--batch-size sets the fixed batch of a --static-batch export")
    if precision != "int8" and (calibration_size or calibration_method):
        raise click.UsageError("--calibration-size and --calibration-method apply to --precision int8 only")
    if precision == "fp32" and max_accuracy_drop is not None:
        raise click.UsageError("--max-accuracy-drop applies to --precision fp16 or int8 (fp32 must match eager "
                               "PyTorch within --atol/--rtol)")
    max_accuracy_drop = 0.5 if max_accuracy_drop is None else max_accuracy_drop
    formats = artifact_formats() if fmt == "all" else [fmt]
    opts = ExportOptions(dynamic_batch=dynamic_batch, batch_size=batch_size, opset=opset,
                         bake_preprocess=bake_preprocess, precision=precision,
                         calibration_size=calibration_size or 512, calibration_method=calibration_method or "minmax",
                         max_accuracy_drop=max_accuracy_drop)
    for f in formats:  # a format/precision pair that makes no sense stops before the run is even read
        check_precision(f, opts)
    r = load_run(run, runs_dir)
    folder, results = export_run(r, formats, out_dir, opts, str(data_dir) if data_dir else None)
    if as_json:
        emit_json([x.to_dict() for x in results])
    else:
        images = results[0].checks[0]["images"] if results[0].checks else 0
        console.print(table(f"{r.path.name} exports (checked against eager PyTorch on {images:,} test images)",
                            ["format", "file", "size", "max abs diff", "top-1 agree", "accuracy", "status"],
                            [[x.format, Path(x.path).name, fmt_bytes(x.size_bytes) if x.passed else "-",
                              f"{x.max_abs_diff:.1e}" if x.passed else "-",
                              f"{100 * x.agreement:.2f}%" if x.passed else "-",
                              f"{100 * x.accuracy:.2f}%" if x.accuracy is not None else "-",
                              "ok" if x.passed else f"FAILED: {x.error}"] for x in results],
                            right={"size", "max abs diff", "top-1 agree", "accuracy"}, optional=("size", "file"),
                            width=table_width(wide)))
        for x in results:
            if x.passed and x.accuracy_delta is not None:
                worst = x.worst_class
                console.print(f"{x.precision}: {100 * x.accuracy:.2f}% against {100 * x.eager_accuracy:.2f}% for "
                              f"fp32 eager ({100 * x.accuracy_delta:+.2f} pt; the gate allows a drop of "
                              f"{max_accuracy_drop:g} pt), {x.flipped:,} prediction{'s' * (x.flipped != 1)} "
                              f"flipped, worst class {worst.get('name', worst['class'])!r} "
                              f"{100 * worst['delta']:+.2f} pt")
        if any(x.passed for x in results):
            console.print(f"wrote {folder / 'export.json'}")
    failed = [x for x in results if not x.passed]
    if failed:
        raise VtkError(f"{len(failed)} of {len(results)} export(s) failed: "
                       + "; ".join(f"{x.format}: {x.error}" for x in failed))
