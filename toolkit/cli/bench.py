"""`vtk bench`: accuracy and latency per runtime x provider x thread count x batch size."""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import click
from vtk_vision.bench.percentiles import min_samples
from vtk_vision.cli.app import cli, console, stderr, warn
from vtk_vision.cli.load_options import load_from, load_options
from vtk_vision.cli.options import (Bounded, browser_option, data_dir_option, run_argument, runs_dir_option,
                                    trust_code_option)
from vtk_vision.core.errors import VtkError
from vtk_vision.core.text import printable
from vtk_vision.core.limits import BENCH_LIMITS, Limit
from vtk_vision.core.providers import PRECISIONS, PROVIDERS
from vtk_vision.runs.config import LIMITS


def _int_list(what: str, example: str, limit: Limit, unique: bool = True):
    """A click callback for a comma-separated list of integers within `limit`: batch sizes and thread counts
    (`unique`: a repeat adds nothing), or a shape (3,32,32: repeats are the point)."""
    def parse(ctx, param, value: str | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        try:
            numbers = tuple(int(v) for v in value.split(",") if v.strip())
            numbers = tuple(dict.fromkeys(numbers)) if unique else numbers
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
        if not numbers or not all(limit.allows(n) for n in numbers):
            raise click.BadParameter(f"{what} must be integers from {limit.low:,} to {limit.high:,}, e.g. {example}")
        return numbers
    return parse


def _floats(ctx, param, value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers, e.g. 0.5 or "
                                 f"0.49,0.48,0.45") from None
    if not numbers or not all(math.isfinite(v) for v in numbers) or (param.name == "std" and min(numbers) <= 0):
        raise click.BadParameter(f"{value!r}: one finite number per channel{', each above 0' * (param.name == 'std')}")
    return numbers


def _given(name: str) -> bool:
    """Whether the user typed option `name` (not its default)."""
    ctx = click.get_current_context()
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def _names(value: str, known, what: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise click.BadParameter(f"unknown {what} {', '.join(bad) or '(none)'}; choose from {', '.join(known)}")
    return names


def _runtime_list(ctx, param, value: str | None) -> tuple[str, ...]:
    from vtk_vision.exporters.formats import default_runtimes, runtimes as all_runtimes

    return tuple(default_runtimes()) if value is None else _names(value, all_runtimes(), "runtime")


@cli.command()
@run_argument
@click.option("--provider", type=click.Choice([*PROVIDERS, "all"]),
              help="Execution provider (default: cpu, plus cuda when a GPU is present).")
@click.option("--runtime", "runtimes", callback=_runtime_list, metavar="NAME,...",
              help="Runtimes to time (default: every one in the format table: eager and each export format).")
@click.option("--precision", "precisions", default="fp32", show_default=True, callback=lambda c, p, v: _names(
              v, PRECISIONS, "precision"), metavar="NAME,...",
              help="Precisions to time, e.g. fp32,int8: each runtime whose artifact has them (ONNX Runtime and "
              "OpenVINO for fp16/int8; missing artifacts are exported through the accuracy gate first).")
@click.option("--batch-sizes", default="1,8,64,256", show_default=True,
              callback=_int_list("batch sizes", "1,8,64,256", BENCH_LIMITS["batch_sizes"]))
@click.option("--warmup-s", type=Bounded(BENCH_LIMITS["warmup_s"]), default=0.3, show_default=True,
              help="Warm-up per row.")
@click.option("--min-iters", type=Bounded(BENCH_LIMITS["min_iters"]), default=min_samples(0.9), show_default=True,
              help="Fewest timed calls. The default is the fewest MLPerf LoadGen's early stopping accepts for the p90 "
              "behind p90/p50; a p99 needs 662 and shows as n<662 from fewer (a p99.9: 6,636).")
@click.option("--min-s", type=Bounded(BENCH_LIMITS["min_s"]), default=1.0, show_default=True,
              help="Shortest timed span.")
@click.option("--threads", "threads", callback=_int_list("thread counts", "1,2", BENCH_LIMITS["threads"]),
              metavar="N,...",
              help="CPU thread counts: rows for each, every runtime really run at it (default: 1 and all cores, "
              "plus half of them on 8 or more). GPU rows run once, at the largest.")
@click.option("--max-spread", type=Bounded(BENCH_LIMITS["max_spread"]), default=1.5, show_default=True,
              help="A row whose p90/p50 is above this is timed again, and flagged unstable if it stays so.")
@click.option("--rounds", type=Bounded(BENCH_LIMITS["max_rounds"]), default=3, show_default=True,
              help="Timing rounds at most for such a row, the first included.")
@click.option("--call-timeout", type=Bounded(Limit(0.1, 86_400)), default=60.0, show_default=True, metavar="S",
              help="Stop any one runtime call (a load or a batch) that runs longer: its rows fail with the reason "
              "and the bench goes on. A graph crafted never to end is one line, not a hang.")
@click.option("--quick", is_flag=True, help="A first look: one batch size (1), "
              "one thread count (all cores), >= 10 calls over >= 0.2 s, no re-timing. Options given explicitly "
              "still apply; what it skips is said under the table.")
@click.option("--max-time", type=Bounded(BENCH_LIMITS["max_time_s"]), default=None, metavar="S",
              help="Start no row after S seconds (checked between rows, exporting included; the first runtime's "
              "rows always run): rows not reached are listed as skipped, never estimated.")
@click.option("--no-samples", is_flag=True, help="Leave the raw per-call samples out of the JSON "
              "(smaller file; `vtk compare` then cannot give an interval).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as JSON (default: RUN/bench.json).")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write CSV.")
@click.option("--md", "md_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write Markdown.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a PNG of latency and throughput against batch size.")
@click.option("--wide", is_flag=True, help="Every column, however narrow the terminal (by default a narrow "
              "one leaves out p99, memory, provider, size and Δ eager; bench.json always holds them all).")
@trust_code_option
@browser_option
@click.option("--input-size", type=Bounded(LIMITS["input_size"]), default=None,
              help="FILE: the side of square images, for free height and width in its declared input.")
@click.option("--input-shape", callback=_int_list("an input shape", "3,224,224", Limit(1, 1 << 16, integer=True),
                                                   unique=False), metavar="C,H,W",
              help="FILE: the per-image input shape, where the file declares none (TorchScript) or to override it.")
@click.option("--dataset", default=None, help="FILE: score accuracy on this dataset's test split (needs "
              "--mean and --std, unless the file holds vtk's metadata).")
@click.option("--mean", callback=_floats, metavar="M,...", help="FILE with --dataset: per-channel mean of "
              "pixels in [0, 1] the model was trained with.")
@click.option("--std", callback=_floats, metavar="S,...", help="FILE with --dataset: per-channel std.")
@click.option("--compare", "compare_to", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An earlier bench JSON: print each row's change, as `vtk compare` does.")
@load_options
@runs_dir_option
@data_dir_option
def bench(run, provider, runtimes, precisions, batch_sizes, warmup_s, min_iters, min_s, threads, max_spread, rounds,
          call_timeout, quick, max_time, no_samples, json_out, csv_out, md_out, plot_out, wide, trust_code, input_size,
          input_shape, dataset, mean, std, compare_to, runs_dir, data_dir, **load) -> None:
    """Accuracy and latency of RUN (default: the latest) per runtime, provider, thread count and batch size.

    \b
    RUN may also be an .onnx, .torchscript or .pt2 file vtk never wrote: it is timed on synthetic
    inputs of the shape it declares, and its accuracy is measured only where labels and
    preprocessing are known (vtk's metadata in it, or --dataset with --mean and --std).
    """
    from vtk_vision.bench.compare import compare_reports, load_bench
    from vtk_vision.bench.foreign import bench_file, is_artifact_file
    from vtk_vision.bench.report import write_outputs
    from vtk_vision.bench.run import BenchOptions, bench_run, resolve_providers
    from vtk_vision.cli.compare import show_comparison
    from vtk_vision.runs.folder import load_run

    file = Path(run) if run is not None and is_artifact_file(Path(run)) else None
    given = [n for n, v in (("--input-size", input_size), ("--input-shape", input_shape), ("--dataset", dataset),
                            ("--mean", mean), ("--std", std)) if v is not None]
    if file is None and given:
        raise click.UsageError(f"{', '.join(given)} apply to `vtk bench FILE` (an .onnx, .torchscript or .pt2 file); "
                               f"a run knows its own data and shapes")
    if (mean is None) != (std is None) or (mean is not None and dataset is None):
        raise click.UsageError("--mean and --std go together, with --dataset")
    providers = resolve_providers(provider)  # before any other work: --provider cuda without a GPU stops here
    old = load_bench(compare_to) if compare_to else None  # a bad --compare file stops before any work
    typed = {f"--{name.replace('_', '-')}" for name in load if _given(name)}
    load_opts = load_from(**load, keep=not no_samples, given=typed)  # LoadGen's scenario (cli/load_options.py)
    opts = BenchOptions(providers, runtimes, batch_sizes, warmup_s, min_iters, min_s, threads or (), precisions,
                        trust_code, max_spread, rounds, not no_samples, call_timeout, load_opts, max_time)
    opts, quick_note = _quick(opts) if quick else (opts, None)
    with _progress() as progress:
        if file is not None:
            report = bench_file(file, opts, input_size, input_shape, dataset, mean, std,
                                str(data_dir) if data_dir else None, explicit_runtimes=_given("runtimes"),
                                progress=progress)
            name, default_json = file.name, Path(f"{file.name}.bench.json")
        else:
            r = load_run(run, runs_dir, trust_code)
            report = bench_run(r, opts, str(data_dir) if data_dir else None, progress=progress)
            name, default_json = r.path.name, r.folder.output("bench.json")
    report["notes"] = [*([quick_note] if quick_note else []), *report.get("notes", [])]
    if all(row["status"] != "ok" for row in report["rows"]):
        reasons = sorted({row["reason"] for row in report["rows"]})
        raise VtkError(f"every row failed or was skipped ({'; '.join(reasons)[:400]}); nothing was written, and an earlier "
                       f"bench.json is kept")
    comparison = compare_reports(old, report) if old is not None else None  # before any write, as load_bench
    width = None if wide or not console.is_terminal else console.width
    _print_report(name, report, opts, width)
    warn(report.get("warnings") or [])
    for path in write_outputs(report, json_out or default_json, csv_out, md_out, plot_out):
        console.print(f"wrote {path}")
    if comparison is not None:
        show_comparison(comparison, f"changes against {compare_to}", wide)  # what `vtk compare` prints
    if any(row["status"] == "failed" for row in report["rows"]) and provider not in ("all", None):
        raise VtkError("some rows failed; their reasons are in the table")


QUICK = {"batch_sizes": (1,), "min_iters": 10, "min_s": 0.2, "warmup_s": 0.1, "max_rounds": 1}
_OPTION_OF = {"batch_sizes": "batch_sizes", "min_iters": "min_iters", "min_s": "min_s", "warmup_s": "warmup_s",
              "max_rounds": "rounds", "threads": "threads"}


def _quick(opts):
    """--quick's settings for every option not given on the command line, and the line that says what the
    bench skipped for them."""
    from dataclasses import replace

    from vtk_vision.bench.run import default_threads

    changes = {k: v for k, v in QUICK.items() if not _given(_OPTION_OF[k])}
    if not _given("threads"):
        changes["threads"] = (max(default_threads()),)
    quick = replace(opts, **changes)
    skipped = [f"batch sizes {', '.join(map(str, sorted(set(opts.batch_sizes) - set(quick.batch_sizes))))}"
               if set(opts.batch_sizes) - set(quick.batch_sizes) else "",
               f"thread count {', '.join(map(str, sorted(set(opts.threads) - set(quick.threads))))}"
               if set(opts.threads) - set(quick.threads) else "",
               "re-timing of unstable rows" if quick.max_rounds == 1 < opts.max_rounds else ""]
    return quick, (f"--quick: batch {', '.join(map(str, quick.batch_sizes))}, {', '.join(map(str, quick.threads))} "
                   f"thread(s), >= {quick.min_iters} calls over >= {quick.min_s:g} s a row; skipped "
                   f"{'; '.join(s for s in skipped if s) or 'nothing'}. Drop --quick for the full grid")


@contextmanager
def _progress():
    """Progress on one line that rewrites itself on a terminal (rich's transient status: nothing is left on
    screen); plain lines where stderr is a file or a pipe, so a log keeps every step."""
    from rich.text import Text

    if not stderr.is_terminal:
        yield lambda m: stderr.print(m)
        return
    with stderr.status("", spinner="dots") as status:
        yield lambda m: status.update(Text(printable(m), style="dim"))  # Text: never markup


def _print_report(name: str, report: dict, opts, width: int | None) -> None:
    from vtk_vision.bench.report import (
        COLUMNS,
        FASTEST_COLUMNS,
        OPTIONAL,
        RIGHT,
        cold_line,
        environment_line,
        fastest_rows,
        not_run_lines,
        table_rows,
    )
    from vtk_vision.bench.load_report import late_notes, load_table, verdict_notes
    from vtk_vision.present.tables import table

    # rows that did not run are lines under the table: a reason per cell would not fit 80 columns
    ran = dict(report, rows=[row for row in report["rows"] if row["status"] == "ok"])
    used = sorted({row["provider"] for row in ran["rows"]})
    counts = {row.get("threads") for row in ran["rows"]}
    optional = tuple(c for c in OPTIONAL if c != "provider" or len(used) == 1)  # several: the column must stay
    optional += ("thr",) if len(counts) == 1 else ()  # the title says the one count
    if report.get("accuracy_measured", True):
        inputs = f"{report['dataset']} test split ({report['test_images']:,} images)"
    else:
        fed = "x".join(map(str, report["input"]["fed"][1:]))
        inputs = f"synthetic {report['input']['dtype']} {fed} inputs, accuracy not measured ({report['accuracy_note']})"
    console.print(table(f"{name}: {inputs}, {environment_line(report)}, provider {', '.join(used)}",
                        COLUMNS, table_rows(ran), right=RIGHT, optional=optional, width=width,
                        key=("runtime", "provider", "batch", "thr")))
    for line in not_run_lines(report):
        console.print(line)
    for note in report.get("notes", []):
        console.print(note)
    if cold := cold_line(report):
        console.print(cold)
    unstable = sum(bool(row.get("unstable")) for row in report["rows"])
    console.print(f"times: {report['time_includes']}; images/s = batch / p50 latency (the median: one stall "
                  f"cannot drag it); p90/p50 over {opts.max_spread:g} is timed again, up to {opts.max_rounds} "
                  f"rounds" + (f"; {unstable} row{'s' if unstable != 1 else ''} stayed unstable" if unstable else ""))
    if "load" in report:
        title, columns, cells, right = load_table(report["load"])
        console.print(table(title, columns, cells, right=right, optional=("late p99", "done/s", "workers"),
                            width=width))
        for line in [report["load"]["settings_note"] + "; late p99: LoadGen's own issue delay against its schedule",
                     *verdict_notes(report["load"]), *late_notes(report["load"])]:
            console.print(line)
    if fastest := fastest_rows(report):
        console.print(table("fastest thread count per runtime and batch", FASTEST_COLUMNS, fastest,
                            right={"batch", "p50 ms"}, optional=("provider",) if len(used) == 1 else (),
                            width=width))
