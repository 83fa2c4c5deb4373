"""`vtk compare OLD.json NEW.json`: what changed between two benches, row by row, and whether it is noise."""

from __future__ import annotations

from pathlib import Path

import click
from vtk_vision.cli.app import cli, console, emit_json
from vtk_vision.cli.options import Bounded, json_flag
from vtk_vision.core.errors import VtkError
from vtk_vision.core.limits import Limit

__all__ = ["compare", "show_comparison"]


def _percent(ctx, param, value: str | None) -> float | None:
    """'10%' or '10' -> 0.10."""
    if value is None:
        return None
    try:
        pct = float(value.strip().removesuffix("%"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a percentage, e.g. 10%") from None
    if not 0 <= pct <= 1000:
        raise click.BadParameter(f"{value!r} is not a percentage between 0% and 1000%")
    return pct / 100


def show_comparison(comparison, title: str, wide: bool) -> None:
    """Print a comparison: the table, accuracy changes to the image, and rows present on one side only.
    `vtk bench --compare` prints through here too."""
    from vtk_vision.bench.compare import CHANGE_COLUMNS, CHANGE_OPTIONAL, change_rows
    from vtk_vision.present.tables import table

    console.print(comparison.drift.describe(comparison.tolerance) if comparison.drift else
                  "machine drift not measured: a file predates the bench's calibration workload; the rows below "
                  "are as measured, so a busier machine reads as slower")
    providers = sorted({r.provider for r in comparison.rows})
    optional = tuple(c for c in CHANGE_OPTIONAL if c != "provider" or len(providers) == 1)
    title += f", provider {providers[0]}" if len(providers) == 1 else ""  # the column may be left out
    console.print(table(title, CHANGE_COLUMNS, change_rows(comparison), optional=optional,
                        right={"batch", "thr", "old ms", "new ms", "new/old", "Δ images"},
                        width=None if wide or not console.is_terminal else console.width))
    tol = f"{100 * comparison.tolerance:g}%"
    console.print(f"new/old = new p50 / old p50; 95% CI from a seeded bootstrap of both medians over the raw "
                  f"samples; verdict: faster or slower when the whole interval is more than {tol} away from 1, "
                  f"else same (within noise); no samples: a file kept none, so no interval"
                  + ("; !: a bench flagged the row unstable" if any(r.unstable for r in comparison.rows) else ""))
    for r in comparison.rows:
        if r.correct_change:
            console.print(f"accuracy {r.key}: {100 * r.old_accuracy:.2f}% -> {100 * r.new_accuracy:.2f}% "
                          f"({r.correct_change:+d} images right)")
    for side, keys in (("old", comparison.only_old), ("new", comparison.only_new)):
        if keys:
            console.print(f"only in the {side} file: {', '.join(keys)}")
    for note in comparison.notes:
        console.print(f"note: {note}")
    if comparison.load is not None:
        _show_load(comparison.load, wide)


def _show_load(loads, wide: bool) -> None:
    """The LoadGen configurations of both files, old row above new (bench/compare_load.py)."""
    from vtk_vision.bench.compare_load import load_change_notes, load_change_table
    from vtk_vision.present.tables import table

    if loads.rows:
        title, columns, cells, right = load_change_table(loads)
        console.print(table(title, columns, cells, right=right, optional=("workers", "batch"),
                            width=None if wide or not console.is_terminal else console.width,
                            key=("runtime", "thr", "file")))
    for line in load_change_notes(loads):
        console.print(line)


@cli.command()
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fail-slower", callback=_percent, metavar="PCT", help="Exit 1 when a row is slower by more than "
              "PCT with 95% confidence (its interval's lower bound above 1 + PCT), e.g. 10%.")
@click.option("--fail-accuracy-drop", type=Bounded(Limit(0, 100)), metavar="POINTS",
              help="Exit 1 when a row lost more than POINTS percentage points of accuracy, e.g. 0.1.")
@click.option("--tolerance", callback=_percent, default="5%", show_default=True, metavar="PCT",
              help="Changes a verdict ignores however narrow their interval: two benches of the same files drift "
              "by a few percent that the samples of either cannot see.")
@click.option("--wide", is_flag=True, help="Every column, however narrow the terminal (by default a narrow one "
              "leaves out old ms, new ms and a provider column that holds one value).")
@json_flag
def compare(old: Path, new: Path, fail_slower: float | None, fail_accuracy_drop: float | None, tolerance: float,
            wide: bool, as_json: bool) -> None:
    """Latency and accuracy of NEW against OLD (two bench JSON files), row by row, each latency change with
    a 95% confidence interval and a verdict: faster, slower or the same within noise."""
    from vtk_vision.bench.compare import compare_reports, failures, load_bench

    comparison = compare_reports(load_bench(old), load_bench(new), tolerance=tolerance)
    broken = failures(comparison, slower=fail_slower, accuracy_drop_pts=fail_accuracy_drop)
    if as_json:
        emit_json(comparison.to_dict() | {"failures": broken})
    else:
        show_comparison(comparison, f"{new} against {old}", wide)
    if broken:
        raise VtkError(f"{len(broken)} row{'s' if len(broken) != 1 else ''} beyond the thresholds: "
                       + "; ".join(broken))
