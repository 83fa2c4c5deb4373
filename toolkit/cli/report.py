"""`vtk report`: a run as one HTML page that opens anywhere, offline."""

from __future__ import annotations

from pathlib import Path

import click
from vtk_vision.cli.app import cli, console
from vtk_vision.cli.options import run_argument, runs_dir_option


@cli.command()
@run_argument
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="HTML file (default: RUN/report.html).")
@runs_dir_option
def report(run: str | None, out: Path | None, runs_dir: Path | None) -> None:
    """One self-contained HTML page about RUN (default: the latest): summary, curves, confusion matrix,
    misclassified images, export parity, bench table and plots, environment. Parts not made yet name the
    command that makes them (vtk eval, vtk export, vtk bench)."""
    from vtk_vision.inspection.report import write_report
    from vtk_vision.runs.folder import load_run

    result = write_report(load_run(run, runs_dir), out)
    console.print(f"wrote {result.path.resolve()}")
    for command in result.missing:
        console.print(f"not in it yet: {command}")
