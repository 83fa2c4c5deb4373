"""Options that several commands share, each declared once as a decorator."""

from __future__ import annotations

from pathlib import Path

import click


class LazyChoice(click.Choice):
    """A click.Choice whose names come from a function, called only when they are needed (parsing a value
    or printing a command's help), so that `vtk --help` does not import the table behind them (and torch)."""

    def __init__(self, names, extra: tuple[str, ...] = ()):
        self._names, self._extra, self.case_sensitive = names, extra, True

    @property
    def choices(self):
        return (*self._names(), *self._extra)

__all__ = ["runs_dir_option", "data_dir_option", "download_option", "json_flag", "run_argument", "LazyChoice"]

runs_dir_option = click.option(
    "--runs-dir", type=click.Path(file_okay=False, path_type=Path),
    help="Runs folder (default: $VTK_RUNS_DIR, else ./runs).")
data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path),
    help="Data root (default: $VTK_DATA_DIR, else the per-user cache).")
download_option = click.option(
    "--download", is_flag=True, help="Fetch a missing dataset with torchvision (needs a network).")
json_flag = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
run_argument = click.argument("run", required=False)
