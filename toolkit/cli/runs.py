"""`vtk runs`: every run folder, its status and whether it can be resumed."""

from __future__ import annotations

from pathlib import Path

from vtk_vision.cli.app import cli, console, emit_json
from vtk_vision.cli.options import json_flag, runs_dir_option, table_width, wide_flag


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


@cli.command()
@json_flag
@wide_flag
@runs_dir_option
def runs(as_json: bool, wide: bool, runs_dir: Path | None) -> None:
    """List the runs under the runs folder, newest first: status (a "running" run whose process is gone
    is "died"), test accuracy, epochs, age, whether `vtk train --resume RUN` can continue it, and what
    export, bench and report made in it."""
    from vtk_vision.core.paths import runs_root
    from vtk_vision.present.tables import table
    from vtk_vision.runs.listing import list_runs

    found = list_runs(runs_dir)
    if as_json:
        emit_json([{**r.__dict__, "path": str(r.path)} for r in found])
        return
    if not found:
        console.print(f"no runs under {runs_root(runs_dir)}; train one with `vtk train MODEL`")
        return
    console.print(table(f"runs in {runs_root(runs_dir)} (* latest)",
                        ["run", "status", "test acc", "epochs", "age", "resume", "made"],
                        [[("* " if r.latest else "") + r.name, r.status,
                          f"{100 * r.test_accuracy:.2f}%" if r.test_accuracy is not None else "-",
                          r.epochs, _age(r.age_s), "yes" if r.resumable else "-", ", ".join(r.made) or "-"]
                         for r in found],
                        right={"test acc", "epochs", "age"}, optional=("age", "epochs", "resume"),
                        width=table_width(wide)))
    for r in found:
        if r.problem:
            console.print(f"{r.name}: {r.problem}")
