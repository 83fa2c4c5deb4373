"""The `vtk` group, its consoles and its error contract; the commands live beside it, one module per area.

Only the command line imports click and prints. Library errors (`VtkError`)
become one line on stderr and exit code 1 (or the code the error carries);
bad option combinations exit 2. Ctrl-C, SIGTERM and SIGHUP in any phase end
with one line and 130, 143 or 129 (core/signals.py), never click's "Aborted!".
`--debug` keeps the traceback. Heavy imports (torch) happen inside commands so
that `vtk --help` answers at once.
"""

from __future__ import annotations

import json
import logging
import sys

import click
from rich.console import Console

from vtk_vision import __version__
from vtk_vision.core.errors import VtkError
from vtk_vision.core.text import printable

__all__ = ["cli", "main", "console", "stderr", "emit_json", "warn"]

class SafeConsole(Console):
    """Never interprets markup, and prints every string through `printable`: paths, file and class names
    come from outside and must reach the terminal as text (core/text.py), newlines included, so that a name
    cannot forge a line. Multi-line text of vtk's own goes in as rich Text."""

    def __init__(self, **kwargs):
        super().__init__(markup=False, highlight=False, soft_wrap=True, **kwargs)

    def print(self, *objects, **kwargs):
        kwargs.pop("markup", None)
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


# Piped output gets wide tables rather than rich's 80-column default, so nothing is cut.
console = SafeConsole(width=None if sys.stdout.isatty() else 160)
stderr = SafeConsole(stderr=True)


class VtkGroup(click.Group):
    """Turns `VtkError` into click's one-line error unless --debug is on."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VtkError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            err = click.ClickException(printable(e))
            err.exit_code = getattr(e, "exit_code", 1)
            raise err from None
        except KeyboardInterrupt as e:  # SIGINT, or SIGTERM / SIGHUP through core/signals.py
            if ctx.obj and ctx.obj.get("debug"):
                raise
            from vtk_vision.core.signals import exit_code_of

            name = "interrupted" if type(e) is KeyboardInterrupt else f"stopped by {e}"
            stderr.print(f"{name}; files being written were left as they were before (writes are atomic)")
            ctx.exit(exit_code_of(e))


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
        return f"{record.levelname.lower()}: {printable(record.getMessage())}"


def main() -> None:
    """Console-script entry point: library warnings go to stderr as one line each."""
    from vtk_vision.core.install import missing_stack

    if (missing := missing_stack()) is not None and not {"--help", "-h", "--version"} & set(sys.argv[1:]):
        click.echo(f"Error: {missing}", err=True)
        sys.exit(1)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    log = logging.getLogger("vtk")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    from vtk_vision.core.signals import install

    install()
    try:
        cli(obj={})
    except SystemExit as e:
        from vtk_vision.core.stoppable import exit_now, left_behind

        if left_behind():  # a runtime call nothing could stop still runs: no exit handler may wait on it
            exit_now(e.code if isinstance(e.code, int) else 1)
        raise


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


def warn(lines) -> None:
    """Sanity warnings (inspection/sanity.py), each once, as `warning: ...` lines on stderr; on a terminal
    wrapped between words to its width (the console soft-wraps, and a terminal would break mid-word)."""
    import textwrap

    from rich.text import Text

    for line in dict.fromkeys(lines):
        text = printable(f"warning: {line}")  # escaped first: the line may hold a class name from outside
        stderr.print(Text(textwrap.fill(text, stderr.width, subsequent_indent="  ", break_on_hyphens=False))
                     if stderr.is_terminal else text)
