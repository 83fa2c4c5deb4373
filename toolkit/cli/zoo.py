"""`vtk models` and `vtk summary`: the model zoo and what a model costs at each input size."""

from __future__ import annotations

import click
from rich.text import Text
from vtk_vision.cli.app import cli, console, emit_json
from vtk_vision.cli.options import Bounded, json_flag, table_width, wide_flag
from vtk_vision.runs.config import LIMITS


@cli.command()
@json_flag
def models(as_json: bool) -> None:
    """List the model zoo: input shape, parameters, default dataset."""
    from vtk_vision.models import create_model, list_models, model_spec
    from vtk_vision.present.tables import fmt_int, table

    rows = []
    for name in list_models():
        spec, model = model_spec(name), create_model(name)
        rows.append({"name": name, "input_shape": list(model.vtk_info.input_shape),
                     "params": sum(p.numel() for p in model.parameters()),
                     "default_dataset": spec.default_dataset, "description": spec.description})
    if as_json:
        return emit_json(rows)
    console.print(table(None, ["model", "input", "params", "dataset", "description"],
                        [[r["name"], "x".join(map(str, r["input_shape"])), fmt_int(r["params"]),
                          r["default_dataset"], r["description"]] for r in rows], right={"params"}))


@cli.command()
@click.argument("model")
@click.option("--input-size", "input_sizes", type=Bounded(LIMITS["input_size"]), multiple=True,
              help="Square input side; repeat to compare sizes (default: the model's own).")
@click.option("--depth", type=click.IntRange(1, 10), default=3, show_default=True,
              help="How deep torchinfo descends into nested modules.")
@click.option("--channels", type=click.IntRange(1, 64), default=None, help="Input channels of a FILE.py:NAME "
              "or torchvision:NAME model (default: 1, and 3 for torchvision).")
@click.option("--num-classes", type=click.IntRange(1, 100_000), default=None,
              help="Outputs (default: 10, and 1000 for torchvision).")
@json_flag
@wide_flag
def summary(model: str, input_sizes: tuple[int, ...], depth: int, channels: int | None, num_classes: int | None,
            as_json: bool, wide: bool) -> None:
    """torchinfo table of MODEL for each input size, then one comparison line per size. A terminal
    narrower than torchinfo's table (116 columns) gets it without the mult-adds column (--wide: all).

    MODEL is a zoo name, FILE.py:NAME, package.module:NAME or torchvision:NAME."""
    from vtk_vision.inspection.summary import summarize
    from vtk_vision.models.external import is_external
    from vtk_vision.present.tables import fmt_int, table

    if channels is not None and not is_external(model):
        raise click.UsageError("--channels applies to FILE.py:NAME and torchvision:NAME models; the zoo's "
                               "models have their own (see `vtk models`)")
    extra = {k: v for k, v in (("in_channels", channels), ("num_classes", num_classes)) if v is not None}
    # Check every size before printing anything, so an error is the only output.
    results = [summarize(model, s, depth=depth, width=table_width(wide), **extra) for s in (input_sizes or (None,))]
    if as_json:
        return emit_json([r.to_dict() for r in results])
    for r in results:
        console.print(Text(f"{r.model} at {'x'.join(map(str, r.input_shape))}", style="bold"))
        console.print(Text(r.table))  # torchinfo's own multi-line table
    console.print(table("comparison", ["input", "params", "mult-adds", "est. total (MB)"],
                        [["x".join(map(str, r.input_shape)), fmt_int(r.params), fmt_int(r.mult_adds),
                          f"{r.estimated_mb:.2f}"] for r in results],
                        right={"params", "mult-adds", "est. total (MB)"}))
    console.print("est. total: input + forward/backward activations + parameters (torchinfo)")
