"""`vtk bench --scenario ...`: the LoadGen options, declared once, their checks, and the load table.

The options live here rather than on `vtk bench` itself so that the bench
command gains one decorator line; `bench/loadgen_scenarios.py` does the work.
"""

from __future__ import annotations

import re

import click
from vtk_vision.bench.percentiles import shown
from vtk_vision.cli.options import Bounded
from vtk_vision.core.limits import Limit

__all__ = ["late_notes", "load_options", "load_from", "load_table", "parse_ms", "parse_slo"]

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
                     help="Server without --slo: the request rate (default: half a quick capacity estimate)."),
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


LOAD_COLUMNS = ["runtime", "thr", "workers", "batch", "rate/s", "done/s", "p50 ms", "p99 ms", "late p99", "verdict"]
_RIGHT = {"thr", "workers", "batch", "rate/s", "done/s", "p50 ms", "p99 ms", "late p99"}


def _num(value, fmt: str) -> str:
    return "-" if not isinstance(value, (int, float)) else format(value, fmt)


def _verdict(row: dict) -> str:
    failed = [name for name, met in (row.get("checks") or {}).items() if met is False]
    return row["validity"] + (f" ({', '.join(failed)})" if failed else "")


def load_table(section: dict) -> tuple[str, list[str], list[list[str]], set[str]]:
    """(title, columns, cells, right-aligned) of report["load"]; rows that did not run say why in the verdict."""
    from vtk_vision.bench.keys import runtime_label

    slo = any(r.get("slo") for r in section["rows"])
    columns = [*LOAD_COLUMNS[:4], *(["peak/s"] if slo else []), *LOAD_COLUMNS[4:]]
    cells = []
    for r in section["rows"]:
        head = [runtime_label(r), str(r["threads"]), str(r.get("workers", "-")), str(r.get("max_batch", "-"))]
        if r["status"] != "ok":
            cells.append(head + ["-"] * (len(columns) - len(head) - 1) + [f"{r['status']}: {r['reason']}"])
            continue
        lat, n = r["latency_ms"], r.get("queries")
        peak = [_num((r.get("slo") or {}).get("peak_qps"), ",.0f") if r.get("slo") else "-"] if slo else []
        # offline issues one query of every sample: its latency is the whole run's, no per-query figure
        p50, p99 = (("-", "-") if r["scenario"] == "offline" else
                    (shown(lat.get("p50"), n, 0.5, ".3f"), shown(lat.get("p99"), n, 0.99, ".3f")))
        cells.append(head + peak + [_num(r.get("target_qps"), ",.0f"), _num(r.get("completed_qps"), ",.0f"), p50, p99,
                                    _num(r["lateness_ms"].get("p99"), ".3f"), _verdict(r)])
    budget = next((r["slo"] for r in section["rows"] if r.get("slo")), None)
    title = (f"LoadGen {section['scenario']}"
             + (f": peak rate with p{100 * budget['percentile']:g} <= {budget['budget_ms']:g} ms" if budget else ""))
    return title, columns, cells, _RIGHT | ({"peak/s"} if slo else set())


def late_notes(section: dict) -> list[str]:
    """A line for each row whose p99 is mostly LoadGen's own issue delay: the host could not issue queries on
    time, so that p99 is the machine's, not the model's."""
    from vtk_vision.bench.keys import runtime_label

    out = []
    for r in section["rows"]:
        late, p99 = (r.get("lateness_ms") or {}).get("p99"), (r.get("latency_ms") or {}).get("p99")
        if r["status"] == "ok" and isinstance(late, (int, float)) and isinstance(p99, (int, float)) and late > p99 / 2:
            out.append(f"{runtime_label(r)}, {r['threads']} thr: LoadGen issued queries up to {late:.3f} ms late (p99) "
                       f"of a {p99:.3f} ms p99 latency: the generator was late, the host is busy; that p99 is the "
                       f"machine's, not the model's")
    return out
