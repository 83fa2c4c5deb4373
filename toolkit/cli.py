"""The `vtk` command line: one function per command, whose docstring is its help.

Only this module imports click and prints. Library errors (`VtkError`) become
one line on stderr and exit code 1; bad option combinations exit 2. `--debug`
keeps the traceback. Heavy imports (torch) happen inside commands so that
`vtk --help` answers at once.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

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


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def main() -> None:
    """Console-script entry point: library warnings go to stderr as one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    log = logging.getLogger("vtk")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    cli(obj={})


def data_options(fn):
    """--data-dir and --download, shared by every command that reads a dataset."""
    fn = click.option("--download", is_flag=True,
                      help="Fetch a missing dataset with torchvision (needs a network).")(fn)
    return click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Data root (default: $VTK_DATA_DIR, else the per-user cache).")(fn)


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



# ---------------------------------------------------------------- datasets
@cli.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Data root (default: $VTK_DATA_DIR, else the per-user cache).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets(data_dir: Path | None, as_json: bool) -> None:
    """Each dataset: whether and where it was found, split sizes, classes."""
    from toolkit.data.catalog import survey
    from toolkit.render import table

    rows = survey(data_dir)
    if as_json:
        return _emit_json(rows)
    found = [r for r in rows if r["source"]]
    out.print(table(None, ["dataset", "train", "test", "shape", "classes", "found at"],
                    [[r["name"], f"{r['train']:,}", f"{r['test']:,}", "x".join(map(str, r["shape"])),
                      f"{len(r['classes'])}: {', '.join(r['classes'][:2])}, ...", r["source"]] for r in found],
                    right={"train", "test"}))
    for r in rows:
        if not r["source"]:
            out.print(f"{r['name']}: not found: {r['error']}")


@cli.command()
@click.argument("dataset")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option("--n", type=click.IntRange(1, 400), default=25, show_default=True, help="How many samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which samples (random, reproducible).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("grid.png"),
              show_default=True, help="PNG file to write.")
@data_options
def show(dataset: str, split: str, n: int, seed: int, out: Path, data_dir: Path | None, download: bool) -> None:
    """Write a PNG grid of DATASET samples with their class names."""
    import torch

    from toolkit.data import load_dataset
    from toolkit.plots import image_grid

    ds = load_dataset(dataset, data_dir, download)
    part = getattr(ds, split)
    idx = torch.randperm(len(part), generator=torch.Generator().manual_seed(seed))[:n]
    image_grid(part.images[idx], [ds.classes[i] for i in part.labels[idx].tolist()], out,
               suptitle=f"{ds.name} ({split}, {len(idx)} of {len(part):,})")
    globals()["out"].print(f"wrote {out}")


if __name__ == "__main__":
    main()
