"""`vtk report`: a run as one HTML page that opens anywhere, offline."""

from __future__ import annotations

from pathlib import Path

import click
from vtk_vision.cli.app import cli, console, stderr
from vtk_vision.cli.options import run_argument, runs_dir_option, trust_code_option


@cli.command()
@run_argument
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="HTML file (default: RUN/report.html).")
@click.option("--bench", "bench_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A bench JSON kept elsewhere (vtk bench --json FILE), in place of RUN/bench.json.")
@trust_code_option
@runs_dir_option
def report(run: str | None, out: Path | None, bench_file: Path | None, trust_code: bool,
           runs_dir: Path | None) -> None:
    """One self-contained HTML page about RUN (default: the latest): summary, curves, confusion matrix,
    misclassified images, export parity, bench table and plots, environment. Parts not made yet name the
    command that makes them (vtk eval, vtk export, vtk bench)."""
    from vtk_vision.core.errors import ArtifactError
    from vtk_vision.inspection.report import write_report
    from vtk_vision.runs.folder import Run, RunFolder, load_run

    folder = RunFolder.find(run, runs_dir)
    try:
        r = load_run(folder.path, trust_code=trust_code)
    except ArtifactError as e:  # the model's code may not run here; the report reads files, so it goes on
        stderr.print(f"{e}; the report leaves out what needs the model (its parameter count)")
        r = Run(folder, folder.read(), None, None)
    if bench_file is not None:
        from vtk_vision.bench.compare import load_bench

        load_bench(bench_file)  # not a bench file: one line now, not a page that says it is unreadable
    result = write_report(r, out, bench_file)
    console.print(f"wrote {result.path.resolve()}")
    for command in result.missing:
        console.print(f"not in it yet: {command}")
