"""The `vtk` command line: one function per command, whose docstring is its help.

Only this module imports click and prints. Library errors (`VtkError`) become
one line on stderr and exit code 1; bad option combinations exit 2. `--debug`
keeps the traceback. Heavy imports (torch) happen inside commands so that
`vtk --help` answers at once.
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from toolkit import __version__
from toolkit.errors import VtkError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class VtkGroup(click.Group):
    """Turns `VtkError` into click's one-line error unless --debug is on."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VtkError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(str(e)) from None


@click.group(cls=VtkGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vtk")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """vtk: train, export and benchmark small vision models.

    \b
      vtk train lenet5              # train on Fashion-MNIST, 32x32 LeNet-5
      vtk export --format onnx      # export the latest run, checked against PyTorch
      vtk bench                     # accuracy and latency per runtime
    """
    ctx.ensure_object(dict)["debug"] = debug


def main() -> None:
    """Console-script entry point."""
    cli(obj={})


def _emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


# ---------------------------------------------------------------- models
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(as_json: bool) -> None:
    """List the model zoo: input shape, parameters, default dataset."""
    from models import create_model, list_models, model_spec
    from toolkit.render import fmt_int, table

    rows = []
    for name in list_models():
        spec, model = model_spec(name), create_model(name)
        rows.append({"name": name, "input_shape": list(model.vtk_info.input_shape),
                     "params": sum(p.numel() for p in model.parameters()),
                     "default_dataset": spec.default_dataset, "description": spec.description})
    if as_json:
        return _emit_json(rows)
    out.print(table(None, ["model", "input", "params", "dataset", "description"],
                    [[r["name"], "x".join(map(str, r["input_shape"])), fmt_int(r["params"]),
                      r["default_dataset"], r["description"]] for r in rows], right={"params"}))


# ---------------------------------------------------------------- summary
@cli.command()
@click.argument("model")
@click.option("--input-size", "input_sizes", type=int, multiple=True,
              help="Square input side; repeat to compare sizes (default: the model's own).")
@click.option("--depth", type=click.IntRange(1, 10), default=3, show_default=True,
              help="How deep torchinfo descends into nested modules.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def summary(model: str, input_sizes: tuple[int, ...], depth: int, as_json: bool) -> None:
    """torchinfo table of MODEL for each input size, then one comparison line per size."""
    from toolkit.render import fmt_int, table
    from toolkit.summary import summarize

    # Check every size before printing anything, so an error is the only output.
    results = [summarize(model, s, depth=depth) for s in (input_sizes or (None,))]
    if as_json:
        return _emit_json([r.to_dict() for r in results])
    for r in results:
        out.print(f"[bold]{r.model} at {'x'.join(map(str, r.input_shape))}[/bold]")
        out.print(r.table, markup=False)
    out.print(table("comparison", ["input", "params", "mult-adds", "est. size (MB)"],
                    [["x".join(map(str, r.input_shape)), fmt_int(r.params), fmt_int(r.mult_adds),
                      f"{r.estimated_mb:.2f}"] for r in results], right={"params", "mult-adds", "est. size (MB)"}))


if __name__ == "__main__":
    main()
