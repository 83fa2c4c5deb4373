"""`vtk datasets` and `vtk show`: what data is where, and what it looks like."""

from __future__ import annotations

from pathlib import Path

import click
from vtk_vision.cli.app import cli, console, emit_json
from vtk_vision.cli.options import (
    data_dir_option,
    download_option,
    json_flag,
    table_width,
    wide_flag,
)


@cli.command()
@data_dir_option
@json_flag
@wide_flag
def datasets(data_dir: Path | None, as_json: bool, wide: bool) -> None:
    """Each dataset: where it was found, whether it is decoded yet, split sizes, classes. Lists without
    decoding or unpacking anything (sizes not in a file header show as "-" until the first use)."""
    from vtk_vision.data.catalog import survey

    rows = survey(data_dir)
    if as_json:
        return emit_json(rows)
    found = [r for r in rows if r["source"]]
    if found:
        _print_found(found, wide)
    for r in rows:
        if r.get("error"):
            console.print(r["error"] if not r["source"] else f"{r['name']}: {r['error']}")
    if len(found) < len(rows):
        console.print("to get one: `vtk train` / `vtk show` with --download, or --data-dir / VTK_DATA_DIR")
    if any(not r["decoded"] for r in found):
        console.print('"not yet": decoded (and unpacked, for a tarball) on first use, then cached')


def _print_found(found: list[dict], wide: bool) -> None:
    from vtk_vision.present.tables import table

    console.print(table(None, ["dataset", "found at", "decoded", "train", "test", "shape", "classes"],
                        [[r["name"], r["source"], "yes" if r["decoded"] else "not yet", _count(r["train"]),
                          _count(r["test"]), "x".join(map(str, r["shape"])) if r["shape"] else "-",
                          f"{len(r['classes'])}: {', '.join(r['classes'][:2])}, ..." if r["classes"] else "-"]
                         for r in found],
                        right={"train", "test"}, optional=("classes", "shape", "test", "train"),
                        width=table_width(wide)))


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


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

    console.print(f"wrote {sample_grid(dataset, split, n, seed, out, data_dir, download).resolve()}")
