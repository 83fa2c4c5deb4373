"""`vtk export`: a run to the formats of the format table, each checked against eager PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from vtk_vision.cli.app import cli, console, emit_json, stderr, warn
from vtk_vision.cli.options import (
    Bounded,
    LazyChoice,
    browser_option,
    data_dir_option,
    json_flag,
    run_argument,
    runs_dir_option,
    table_width,
    trust_code_option,
    wide_flag,
    written_formats,
)
from vtk_vision.core.errors import VtkError
from vtk_vision.core.providers import CALIBRATION_METHODS, PRECISIONS
from vtk_vision.core.limits import EXPORT_LIMITS
from vtk_vision.runs.config import LIMITS


def _formats():
    return written_formats()  # read from the table's source: help and parsing need no torch


class _FormatChoice(LazyChoice):
    """The table's formats; a format vtk deliberately does not write (Core ML, TensorRT, Triton) passes through
    unlisted, so that the command can say why in one line instead of "invalid choice"."""

    def convert(self, value, param, ctx):
        from vtk_vision.exporters.formats import NOT_OFFERED

        return value if value in NOT_OFFERED else super().convert(value, param, ctx)


def _imported(run, model_spec, weights, dataset, input_size, channels, num_classes, runs_dir, data_dir, precision):
    """The run folder that `--model SPEC --weights FILE` makes (removed again if nothing exports)."""
    from vtk_vision.runs.imported import import_weights

    if run is not None or not (model_spec and weights):
        raise click.UsageError("--model and --weights go together, in place of RUN")
    if precision != "fp32" and not dataset:
        raise click.UsageError(f"--precision {precision} is judged on the test accuracy it loses: give --dataset")
    if dataset and (channels or num_classes):
        raise click.UsageError("--channels and --num-classes come from --dataset when it is given")
    r = import_weights(model_spec, weights, dataset, str(data_dir) if data_dir else None, input_size, channels,
                       num_classes, str(runs_dir) if runs_dir else None)
    return r


@cli.command()
@run_argument
@click.option("--format", "fmt", type=_FormatChoice(_formats, ("all",)), default="onnx",
              show_default=True, help="Artifact format.")
@click.option("--opset", type=Bounded(EXPORT_LIMITS["opset"]), help="ONNX opset (default: the exporter's own).")
@click.option("--dynamic-batch/--static-batch", default=True, show_default=True,
              help="A dynamic batch dimension named `batch`, or a fixed one.")
@click.option("--batch-size", type=Bounded(EXPORT_LIMITS["batch_size"]), default=1, show_default=True,
              help="The fixed batch of a --static-batch export.")
@click.option("--bake-preprocess", is_flag=True,
              help="Input raw uint8 pixels; scaling, padding and normalisation inside the graph.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="int8: ONNX Runtime static QDQ quantization; fp16: fp16 weights and compute, fp32 input and "
              "output. Either lands only within --max-accuracy-drop of fp32 on the whole test split.")
@click.option("--calibration-size", type=Bounded(EXPORT_LIMITS["calibration_size"]), default=None,
              help="int8: seeded, class-balanced training images to calibrate on.  [default: 512]")
@click.option("--calibration-method", type=click.Choice(CALIBRATION_METHODS), default=None,
              help="int8: how activation ranges are chosen (entropy: ORT's KL search over a 2048-bin "
              "histogram).  [default: minmax]")
@click.option("--max-accuracy-drop", type=Bounded(EXPORT_LIMITS["max_accuracy_drop"]), default=None,
              help="Points of test accuracy a reduced-precision artifact may lose against fp32 eager.  "
              "[default: 0.5]")
@click.option("--allow-portable", is_flag=True, help="ExecuTorch: export even when XNNPACK does not take every "
              "compute node (the rest runs on ExecuTorch's portable kernels, often 100x slower).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: RUN/exports).")
@click.option("--model", "model_spec", metavar="SPEC", help="With --weights: export a model trained outside vtk "
              "(a zoo name, FILE.py:NAME, package.module:NAME or torchvision:NAME) instead of a RUN.")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), help="With --model: its weights, as "
              "safetensors or a state_dict .pt/.pth (loaded weights-only). They become a run folder.")
@click.option("--dataset", default=None, help="With --weights: the data they were trained on, to check artifacts "
              "and measure accuracy on its test split (without it: random inputs, accuracy not measured).")
@click.option("--input-size", type=Bounded(LIMITS["input_size"]), default=None,
              help="With --weights: the square input side (default: the dataset's, else the model's).")
@click.option("--channels", type=click.IntRange(1, 64), default=None, help="With --weights and no --dataset: "
              "input channels of a FILE.py or torchvision model.")
@click.option("--num-classes", type=click.IntRange(1, 100_000), default=None,
              help="With --weights and no --dataset: the model's outputs.")
@json_flag
@trust_code_option
@browser_option
@wide_flag
@runs_dir_option
@data_dir_option
def export(run: str | None, fmt: str, opset: int | None, dynamic_batch: bool, batch_size: int,
           bake_preprocess: bool, precision: str, calibration_size: int | None, calibration_method: str | None,
           max_accuracy_drop: float, allow_portable: bool, out_dir: Path | None, model_spec: str | None, weights: Path | None,
           dataset: str | None, input_size: int | None, channels: int | None, num_classes: int | None,
           as_json: bool, trust_code: bool, wide: bool, runs_dir: Path | None, data_dir: Path | None) -> None:
    """Export RUN (default: the latest) and check each artifact against eager PyTorch on the test split.

    \b
    With --model SPEC --weights FILE, weights trained outside vtk become a run folder first:
      vtk export --model mynet.py:MyNet --weights mynet.safetensors --dataset fashion-mnist
    """
    from vtk_vision.exporters import ExportOptions, check_precision, export_run
    from vtk_vision.exporters.formats import all_formats, refuse_not_offered
    from vtk_vision.present.tables import fmt_bytes, table
    from vtk_vision.runs.folder import load_run

    refuse_not_offered(fmt)
    if opset is not None and fmt not in ("onnx", "all"):
        raise click.UsageError("--opset applies to --format onnx only")
    if batch_size != 1 and dynamic_batch:
        raise click.UsageError("--batch-size sets the fixed batch of a --static-batch export")
    if precision != "int8" and (calibration_size or calibration_method):
        raise click.UsageError("--calibration-size and --calibration-method apply to --precision int8 only")
    if precision == "fp32" and max_accuracy_drop is not None:
        raise click.UsageError("--max-accuracy-drop applies to --precision fp16 or int8 (fp32 must match eager "
                               "PyTorch within --atol/--rtol)")
    if allow_portable and fmt != "executorch":
        raise click.UsageError("--allow-portable applies to --format executorch only")
    max_accuracy_drop = 0.5 if max_accuracy_drop is None else max_accuracy_drop
    formats = all_formats() if fmt == "all" else [fmt]
    opts = ExportOptions(dynamic_batch=dynamic_batch, batch_size=batch_size, opset=opset,
                         bake_preprocess=bake_preprocess, precision=precision,
                         calibration_size=calibration_size or 512, calibration_method=calibration_method or "minmax",
                         max_accuracy_drop=max_accuracy_drop, allow_portable=allow_portable)
    for f in formats:  # a format/precision pair that makes no sense stops before the run is even read
        check_precision(f, opts)
    imported = bool(model_spec or weights)
    r = _imported(run, model_spec, weights, dataset, input_size, channels, num_classes, runs_dir, data_dir,
                  precision) if imported else load_run(run, runs_dir, trust_code)
    try:
        folder, results = export_run(r, formats, out_dir, opts, str(data_dir) if data_dir else None)
    except BaseException:
        if imported:
            r.folder.discard(finished=True)  # the import was for this export: no folder without an artifact
        raise
    if imported and not any(x.passed for x in results):
        r.folder.discard(finished=True)
    elif imported:
        measured = f"test accuracy {100 * r.record.accuracy['test']:.2f}%" if r.record.accuracy else "no dataset"
        stderr.print(f"imported {weights} into {r.path} ({measured})")
    if as_json:
        emit_json([x.to_dict() for x in results])
    else:
        images = results[0].checks[0]["images"] if results[0].checks else 0
        against = f"{images:,} test images" if r.has_data else f"{images:,} seeded random inputs (no dataset)"
        console.print(table(f"{r.path.name} exports (checked against eager PyTorch on {against})",
                            ["format", "file", "size", "max abs diff", "top-1 agree", "accuracy", "status"],
                            [[x.format, Path(x.path).name, fmt_bytes(x.size_bytes) if x.passed else "-",
                              f"{x.max_abs_diff:.1e}" if x.passed else "-",
                              f"{100 * x.agreement:.2f}%" if x.passed else "-",
                              f"{100 * x.accuracy:.2f}%" if x.accuracy is not None else
                              "not measured" if x.passed else "-",
                              "ok" if x.passed else f"FAILED: {x.error}"] for x in results],
                            right={"size", "max abs diff", "top-1 agree", "accuracy"},
                            optional=("max abs diff", "top-1 agree", "accuracy"),  # file and size: what you need next
                            width=table_width(wide)))
        for x in results:
            if x.passed and x.accuracy_delta is not None:
                worst = x.worst_class
                console.print(f"{x.precision}: {100 * x.accuracy:.2f}% against {100 * x.eager_accuracy:.2f}% for "
                              f"fp32 eager ({100 * x.accuracy_delta:+.2f} pt; the gate allows a drop of "
                              f"{max_accuracy_drop:g} pt), {x.flipped:,} prediction{'s' * (x.flipped != 1)} "
                              f"flipped, " + (f"worst class {worst.get('name', worst['class'])!r} "
                                              f"{100 * worst['delta']:+.2f} pt" if worst["delta"] < 0
                                              else "no class lost accuracy"))
        warn(w for x in results if x.passed for w in x.warnings)
        if any(x.passed for x in results):
            console.print(f"wrote {folder / 'export.json'}")
    failed = [x for x in results if not x.passed]
    if failed:
        raise VtkError(f"{len(failed)} of {len(results)} export(s) failed: "
                       + "; ".join(f"{x.format}: {x.error}" for x in failed))


@cli.command()
@click.argument("what", type=click.Choice(["tflite"]))
def setup(what: str) -> None:
    """Build now what a format needs beyond vtk's own packages (vtk export builds it on first use).

    tflite: LiteRT's converter, litert-torch, requires torch<2.15, so it gets a Python environment of its own
    (torch 2.13 CPU + litert-torch, pinned, about 2 GB, a few minutes), built once per user from the package
    registry; $VTK_CONVERTER_DIR moves it. CI and offline machines run this while the registry is reachable.
    """
    from vtk_vision.exporters.converter_env import LITERT, converter_dir, converter_python, is_ready

    if is_ready(LITERT):
        console.print(f"the LiteRT converter environment is ready in {converter_dir(LITERT)}")
        return
    converter_python(LITERT, progress=stderr.print)
    console.print(f"built the LiteRT converter environment in {converter_dir(LITERT)}")
