"""Options that several commands share, each declared once as a decorator."""

from __future__ import annotations

from pathlib import Path

import click
from vtk_vision.core.limits import Limit


class Bounded(click.ParamType):
    """A number within a `Limit` (core/limits.py): NaN and infinity fail."""

    def __init__(self, limit: Limit):
        self.limit, self.name = limit, "integer" if limit.integer else "float"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(value) if self.limit.integer else float(value)
            except ValueError:
                self.fail(f"{value!r} is not {'a whole number' if self.limit.integer else 'a number'}", param, ctx)
        try:
            self.limit.check("value", number)
        except ValueError:
            self.fail(f"{value!r} is not {self.limit.describe()}", param, ctx)
        return number


def written_formats() -> list[str]:
    """The names `vtk export --format` takes, read from the format table's source without importing it
    (importing it imports torch: `vtk export --help` took 8-10 s where other commands take 0.4 s). Each
    module's `FORMAT = Format("name", order=N, ..., write=...)` is read as a syntax tree; a module whose
    entry is written any other way makes this fall back to importing the table, so the names stay right."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("vtk_vision.exporters")  # imports vtk_vision alone, not the exporters
    found = []
    for folder in spec.submodule_search_locations or []:
        for path in sorted(Path(folder, "formats").glob("*.py")):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if not (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["FORMAT"]):
                    continue
                call = node.value
                kw = {k.arg: k.value for k in getattr(call, "keywords", [])}
                if not (isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant)
                        and isinstance(kw.get("order"), ast.Constant)):
                    from vtk_vision.exporters.formats import artifact_formats

                    return artifact_formats()
                if "write" in kw:
                    found.append((kw["order"].value, call.args[0].value))
    return [name for _, name in sorted(found)]


class LazyChoice(click.Choice):
    """A click.Choice whose names come from a function, called only when they are needed (parsing a value
    or printing a command's help), so that `vtk --help` does not import the table behind them (and torch)."""

    def __init__(self, names, extra: tuple[str, ...] = ()):
        self._names, self._extra, self.case_sensitive = names, extra, True

    @property
    def choices(self):
        return (*self._names(), *self._extra)

__all__ = [
    "written_formats",
    "Bounded",
    "LazyChoice",
    "data_dir_option",
    "download_option",
    "json_flag",
    "run_argument",
    "runs_dir_option",
    "table_width",
    "trust_code_option",
    "wide_flag",
]

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
trust_code_option = click.option(
    "--trust-code", is_flag=True, help="Run code from a run folder or artifact this machine's vtk did not write "
    "(a user model's source copy, a TorchScript file): only for files from a source you trust.")



def _set_browser(ctx, param, value: str | None) -> None:
    import os

    if value is not None:
        os.environ["VTK_BROWSER"] = value  # read where the browser starts (exporters/browser.py)


browser_option = click.option(
    "--browser", metavar="PATH", expose_value=False, callback=_set_browser,
    help="Chromium for the web format (default: $VTK_BROWSER, else chromium on PATH).")
wide_flag = click.option("--wide", is_flag=True,
                         help="Every column, however narrow the terminal (by default a narrow one leaves some out).")


def table_width(wide: bool) -> int | None:
    """The width a table must fit (`present.tables.table`'s `width`): the terminal's, or None (every column,
    folded where needed) with --wide or when stdout is not a terminal, where nothing may be left out."""
    from vtk_vision.cli.app import console

    return None if wide or not console.is_terminal else console.width
