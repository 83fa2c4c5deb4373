"""`vtk recommend`: which measured row to ship under a latency, accuracy and size budget."""

from __future__ import annotations

import re
import click
from vtk_vision.cli.app import cli, console, emit_json
from vtk_vision.cli.load_options import parse_ms
from vtk_vision.cli.options import Bounded, json_flag, runs_dir_option
from vtk_vision.core.errors import VtkError
from vtk_vision.core.limits import Limit
from vtk_vision.core.text import printable

__all__ = ["recommend"]

_SIZE_UNITS = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024, "mib": 1024**2}


def _size(ctx, param, value: str | None) -> int | None:
    """'200KB', '1.5MB', '300000' -> bytes (KB = 1000 bytes, as the bench table prints sizes)."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise click.BadParameter(f"{value!r} is not a size, e.g. 200KB or 1.5MB")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def _ms(ctx, param, value: str | None) -> float | None:
    return None if value is None else parse_ms(value, "--max-p99")


def _show(rec, server: bool) -> None:
    from vtk_vision.present.tables import table

    def cells(c) -> list[str]:
        return [c.name, "-" if c.p50_ms is None else f"{c.p50_ms:.4f}",
                c.p99_note if c.p99_ms is None else f"{c.p99_ms:.4f}",
                *(["-" if c.qps is None else f"{c.qps:,.0f}"] if server else []),
                "-" if c.accuracy is None else f"{100 * c.accuracy:.2f}%",
                "-" if c.accuracy_drop_pts is None else f"{-c.accuracy_drop_pts:+.2f}",
                "-" if c.size_bytes is None else f"{c.size_bytes / 1e3:,.0f} KB"]

    columns = ["row", "p50 ms", "p99 ms", *(["peak/s"] if server else []), "accuracy", "Δ eager", "size"]
    if rec.front:
        fits = f"{len(rec.fits)} row{'s' * (len(rec.fits) != 1)}"
        console.print(table(f"Pareto front of the {fits} meeting every constraint (speed, accuracy, size)",
                            columns, [cells(c) for c in rec.front], right=set(columns) - {"row"}))
    for c, missed in rec.rejected:  # names come from a file: never markup, no control characters
        console.print(printable(f"rejected {c.name}: {'; '.join(missed)}"), markup=False)
    if rec.pick is not None:
        console.print(printable(f"ship {rec.why}"), markup=False)


@cli.command()
@click.argument("sources", nargs=-1)
@click.option("--max-p99", callback=_ms, metavar="TIME", help="Latency budget at p99, e.g. 2ms: a closed-loop row's "
              "p99 (shown only from 662 calls up), or with --scenario server the p99 under load at the peak rate.")
@click.option("--max-accuracy-drop", type=Bounded(Limit(0, 100)), metavar="POINTS",
              help="Accuracy points a row may lose against eager PyTorch on CPU, e.g. 0.3.")
@click.option("--max-size", callback=_size, metavar="SIZE", help="Largest artifact file, e.g. 200KB.")
@click.option("--scenario", type=click.Choice(["single-stream", "multi-stream", "server", "offline"]),
              help="Choose among LoadGen's rows of this scenario (vtk bench --scenario) instead of the closed loop.")
@click.option("--min-qps", type=Bounded(Limit(0, 1e9)), metavar="RATE",
              help="With --scenario server: the peak request rate meeting the bench's --slo must reach RATE.")
@json_flag
@runs_dir_option
def recommend(sources, max_p99, max_accuracy_drop, max_size, scenario, min_qps, as_json, runs_dir) -> None:
    """The row to ship from measured bench rows (RUN folders or names, or BENCH.json files; default: the
    latest run), under a latency, accuracy and size budget.

    \b
    Nothing is measured again. Prints the Pareto front over speed, accuracy and size, the one to ship and
    why (rows the same speed within noise are ties, broken by the smaller file, then the higher accuracy),
    and each rejected row with the constraint it missed. Exit 1 when nothing fits, naming the closest row.
    """
    from vtk_vision.bench.recommend import Constraints, recommend as choose
    from vtk_vision.bench.recommend_input import bench_files, read_sources

    if min_qps is not None and scenario != "server":
        raise click.UsageError("--min-qps goes with --scenario server (a request rate under load)")
    constraints = Constraints(max_p99, max_accuracy_drop, max_size, scenario, min_qps)
    reports = read_sources(bench_files(sources, runs_dir))
    rec = choose(reports, constraints)
    if as_json:
        emit_json(rec.to_dict())
    else:
        for i, (source, _) in enumerate(reports if len(reports) > 1 else []):
            console.print(printable(f"[{i + 1}] {source}"), markup=False)  # the [n] after each row's name
        _show(rec, scenario == "server")
    if rec.pick is None:
        raise VtkError(rec.why)
