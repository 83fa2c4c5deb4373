"""`vtk datasets` and `vtk show`: what data is where, and what it looks like."""

from __future__ import annotations

from pathlib import Path

import click

from vtk_vision.cli.app import cli, console, emit_json
from vtk_vision.cli.options import data_dir_option, download_option, json_flag


@cli.command()
@data_dir_option
@json_flag
def datasets(data_dir: Path | None, as_json: bool) -> None:
    """Each dataset: whether and where it was found, split sizes, classes."""
    from vtk_vision.data.catalog import survey
    from vtk_vision.present.tables import table

    rows = survey(data_dir)
    if as_json:
        return emit_json(rows)
    found = [r for r in rows if r["source"]]
    console.print(table(None, ["dataset", "train", "test", "shape", "classes", "found at"],
                        [[r["name"], f"{r['train']:,}", f"{r['test']:,}", "x".join(map(str, r["shape"])),
                          f"{len(r['classes'])}: {', '.join(r['classes'][:2])}, ...", r["source"]] for r in found],
                        right={"train", "test"}))
    for r in rows:
        if not r["source"]:
            console.print(f"{r['name']}: not found: {r['error']}")


@cli.command()
@click.argument("dataset")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option("--n", type=click.IntRange(1, 400), default=25, show_default=True, help="How many samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which samples (random, reproducible).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("grid.png"),
              show_default=True, help="PNG file to write.")
@data_dir_option
@download_option
def show(dataset: str, split: str, n: int, seed: int, out: Path, data_dir: Path | None, download: bool) -> None:
    """Write a PNG grid of DATASET samples with their class names."""
    from vtk_vision.inspection.samples import sample_grid

    console.print(f"wrote {sample_grid(dataset, split, n, seed, out, data_dir, download)}")
