"""`vtk bench --scenario ...`: the LoadGen options, declared once, and their checks.

The options live here rather than on `vtk bench` itself so that the bench
command gains one decorator line; `bench/loadgen_scenarios.py` does the work.
"""

from __future__ import annotations

import re

import click
from vtk_vision.cli.options import Bounded
from vtk_vision.core.limits import Limit

__all__ = ["load_options", "load_from", "parse_ms", "parse_slo"]

SCENARIO_NAMES = ("single-stream", "multi-stream", "server", "offline")
_UNITS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}


def parse_ms(text: str, what: str) -> float:
    """'1ms', '500us', '0.002s' -> milliseconds; a bare number is ms."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*(us|µs|ms|s)?\s*", text)
    value = float(m.group(1)) * _UNITS[m.group(2) or "ms"] if m else None
    if value is None or not 1e-3 <= value <= 60_000:
        raise click.BadParameter(f"{what} {text!r} is not a time from 1us to 60s, e.g. 1ms, 500us or 0.002s")
    return value


def parse_slo(ctx, param, value: str | None) -> tuple[float, float] | None:
    """'p99=1ms' -> (0.99, 1.0): a latency budget at a percentile."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*p(\d{1,2}(?:\.\d+)?)\s*=\s*(.+)", value)
    if not m or not 0 < float(m.group(1)) < 100:
        raise click.BadParameter(f"{value!r} is not a budget like p99=1ms (a percentile below 100, then a time)")
    return float(m.group(1)) / 100, parse_ms(m.group(2), "the budget")


def load_options(f):
    """The --scenario family, applied to `vtk bench` in one line."""
    for option in reversed((
        click.option("--scenario", type=click.Choice(SCENARIO_NAMES), default=None,
                     help="Also run MLPerf LoadGen's scenario against each runtime (after the closed loop): its "
                     "issue pattern, latency from each query's scheduled time, VALID/INVALID per row. Short runs: "
                     "--load-s and enough queries for the percentile (662 for a p99)."),
        click.option("--slo", callback=parse_slo, metavar="pNN=TIME",
                     help="Server: search the highest request rate whose pNN latency meets TIME (e.g. p99=1ms), "
                     "bisecting to within 5%."),
        click.option("--qps", type=Bounded(Limit(0.1, 1e7)), default=None,
                     help="Server without --slo: the request rate (default: a quarter of a quick capacity estimate)."),
        click.option("--workers", type=Bounded(Limit(1, 64, integer=True)), default=1, show_default=True,
                     help="Server/offline: worker threads taking queries, each with its own loaded runtime."),
        click.option("--max-batch", type=Bounded(Limit(1, 4096, integer=True)), default=None,
                     help="Dynamic batching: a worker runs up to N queued queries as one batch (default: 1; "
                     "multi-stream: its 8 samples; offline: 64)."),
        click.option("--batch-timeout", default="1ms", show_default=True, metavar="TIME",
                     help="How long a worker waits to fill a batch."),
        click.option("--load-s", type=Bounded(Limit(0.1, 600)), default=1.0, show_default=True,
                     help="Shortest LoadGen test, in seconds (MLPerf submissions: 600)."),
    )):
        f = option(f)
    return f


def load_from(scenario, slo, qps, workers, max_batch, batch_timeout, load_s, keep: bool, given: set[str]):
    """The LoadOptions the command line asked for, or None; bad combinations are a usage error (exit 2)."""
    from vtk_vision.bench.loadgen_scenarios import LoadOptions

    server_only = {"--slo": slo, "--qps": qps}
    if scenario is None:
        stray = [name for name in ("--slo", "--qps", "--workers", "--max-batch", "--batch-timeout", "--load-s")
                 if name in given]
        if stray:
            raise click.UsageError(f"{', '.join(stray)} go with --scenario (e.g. --scenario server)")
        return None
    if scenario != "server" and (bad := [n for n, v in server_only.items() if v is not None]):
        raise click.UsageError(f"{', '.join(bad)} go with --scenario server, not {scenario}")
    if slo is not None and qps is not None:
        raise click.UsageError("--slo searches the request rate; give it or --qps, not both")
    timeout_ms = parse_ms(batch_timeout, "--batch-timeout")
    return LoadOptions(scenario, slo_ms=slo[1] if slo else None, percentile=slo[0] if slo else 0.99, qps=qps,
                       workers=workers, max_batch=max_batch, batch_timeout_ms=timeout_ms, min_duration_s=load_s,
                       keep_latencies=keep)
