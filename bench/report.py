"""Bench output: the console table, CSV, Markdown, a latency/throughput plot, the thread-scaling summary,
and the cells of a comparison with an older bench (bench/compare.py computes it)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from vtk_vision.bench.keys import report_threads, row_key, runtime_label, thread_label
from vtk_vision.bench.percentiles import shown
from vtk_vision.core.atomic import write_text

__all__ = ["cold_line", "not_run_lines", "reasons", "COLUMNS", "FASTEST_COLUMNS", "OPTIONAL", "RIGHT", "dumps", "environment_line", "fastest_rows", "plot",
           "row_key", "runtime_label", "table_rows", "to_csv", "to_markdown", "write_outputs"]

COLUMNS = ["runtime", "provider", "batch", "thr", "status", "size", "accuracy", "Δ eager", "p50 ms",
           "p90/p50", "p99 ms", "images/s", "memory", "cold×"]
# Left out, in this order, when the terminal is too narrow for the whole table (`vtk bench --wide` keeps
# them; bench.json and --csv/--md always hold every figure).
OPTIONAL = ("cold×", "p99 ms", "memory", "provider", "size", "Δ eager")
RIGHT = {"batch", "thr", "size", "accuracy", "Δ eager", "p50 ms", "p90/p50", "p99 ms", "images/s", "memory", "cold×"}
COLD_GAP = "after_100ms"  # the cold× column: the first call after 100 ms idle over the warm p50
NOT_MEASURED = "-"  # accuracy of a row timed without labels, memory where the kernel cannot say


def _size(n: int | None) -> str:
    return "-" if not n else f"{n / 1e3:.0f} KB" if n < 1e6 else f"{n / 1e6:.1f} MB"


def reasons(report: dict) -> list[str]:
    """Each distinct reason a row failed or did not apply, numbered as the table's status cells cite them."""
    return list(dict.fromkeys(r["reason"] or "no reason given" for r in report["rows"] if r["status"] != "ok"))


def not_run_lines(report: dict) -> list[str]:
    """One line per reason rows did not run: which runtimes on which providers, and why."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in report["rows"]:
        if r["status"] != "ok":
            what = f"{runtime_label(r)} on {r['provider']}"
            reason = (r["reason"] or "no reason given").removeprefix(f"{r['runtime']} on {r['provider']}: ")
            whats = groups.setdefault((r["status"], reason), [])
            if what not in whats:
                whats.append(what)
    return [f"{status}: {', '.join(whats)}: {reason}" for (status, reason), whats in groups.items()]


def _status(r: dict, cited: list[str]) -> str:
    if r["status"] != "ok":  # "failed [1]": the reason once under the table, not in every cell of an 80-column one
        return f"{r['status']} [{cited.index(r['reason'] or 'no reason given') + 1}]"
    return "unstable" if r.get("unstable") else "ok"


def _accuracy_cells(r: dict) -> list[str]:
    if r.get("accuracy") is None:
        return [NOT_MEASURED, NOT_MEASURED]
    delta = r.get("accuracy_delta")
    return [f"{100 * r['accuracy']:.2f}%", NOT_MEASURED if delta is None else f"{100 * delta:+.2f}"]


def _memory(r: dict) -> str:
    mb = r.get("runtime_memory_mb")
    return NOT_MEASURED if mb is None else f"{mb:.1f} MB"


def _cold_ratio(r: dict) -> str:
    cold = (r.get("cold_ms") or {}).get(COLD_GAP)
    return NOT_MEASURED if not isinstance(cold, (int, float)) else f"{cold / r['latency_ms']['p50']:.1f}x"


def cold_line(report: dict) -> str | None:
    """One line on the first call after an idle gap against the warm p50, over every row that measured it."""
    ratios = {gap: [r["cold_ms"][gap] / r["latency_ms"]["p50"] for r in report["rows"] if r["status"] == "ok"
                    and isinstance((r.get("cold_ms") or {}).get(gap), (int, float))]
              for gap in dict.fromkeys(g for r in report["rows"] for g in (r.get("cold_ms") or {}))}
    parts = [f"{gap.removeprefix('after_')} idle {min(v):.1f}-{max(v):.1f}x" for gap, v in ratios.items() if v]
    return None if not parts else ("cold: the first call after " + ", after ".join(parts)
                                   + " the warm p50 (the median per gap; cold_ms in the JSON)")


def table_rows(report: dict) -> list[list[str]]:
    """Cells under COLUMNS, one list per row; '-' wherever a figure was not measured."""
    threads = report_threads(report)
    cited, out = reasons(report), []
    for r in report["rows"]:
        head = [runtime_label(r), r["provider"], str(r["batch"]), str(r.get("threads") or threads or "?"),
                _status(r, cited), _size(r["size_bytes"])]
        if r["status"] != "ok":
            out.append(head + [NOT_MEASURED] * (len(COLUMNS) - len(head)))
            continue
        lat, n = r["latency_ms"], r["latency_ms"].get("n")
        spread = lat.get("spread") or (lat["p90"] / lat["p50"])  # a p90 from too few calls is no figure either
        out.append(head + _accuracy_cells(r) + [shown(lat["p50"], n, 0.5), shown(spread, n, 0.9, ".2f"),
                                                shown(lat["p99"], n, 0.99), f"{r['images_per_s']:,.0f}", _memory(r),
                                                _cold_ratio(r)])
    return out


FASTEST_COLUMNS = ["runtime", "provider", "batch", "fastest", "p50 ms", "p50 ms by threads"]


def fastest_rows(report: dict) -> list[list[str]]:
    """The thread-scaling summary as table cells: the fastest count per runtime and batch."""
    out = []
    for f in report.get("fastest") or []:
        others = ", ".join(f"{t}: {p:.4f}" for t, p in f["p50_ms_by_threads"].items())
        out.append([runtime_label(f), f["provider"], str(f["batch"]),
                    thread_label(f["threads"]) + (" (unstable)" if f["unstable"] else ""),
                    f"{f['p50_ms']:.4f}", others])
    return out


def _flat(report: dict) -> list[dict]:
    """One flat dict per row for CSV: latency figures as columns, raw samples left to the JSON."""
    rows = []
    for r in report["rows"]:
        lat = r.get("latency_ms") or {}
        rows.append({k: v for k, v in r.items() if k not in ("latency_ms", "active_providers", "samples_ms",
                                                             "round_spreads", "cold_ms")}
                    | {f"cold_{gap}_ms": ms for gap, ms in (r.get("cold_ms") or {}).items()}
                    | {f"{k}_ms": v for k, v in lat.items() if k not in ("n", "cv", "spread")}
                    | {"samples": lat.get("n"), "cv": lat.get("cv"), "p90_over_p50": lat.get("spread"),
                       "rounds": len(r.get("round_spreads") or []) or None,
                       "active_providers": " ".join(r.get("active_providers") or [])})
    return rows


def to_csv(report: dict, path: Path) -> None:
    rows = _flat(report)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def _threads_text(env: dict) -> str:
    counts = env.get("threads")
    if not isinstance(counts, list):  # a file from before thread scaling: one count
        return thread_label(counts)
    return f"{', '.join(map(str, counts))} thread{'' if counts == [1] else 's'}"


def environment_line(report: dict) -> str:
    """CPU, its features, thread counts and GPU: what every figure of the report was measured on."""
    env = report["environment"]
    return (f"{env['cpu']} ({env.get('cpu_features_text', 'CPU features not recorded')}), {_threads_text(env)}, "
            f"GPU: {(env['gpu'] or {}).get('name', 'none')}")


def to_markdown(report: dict, path: Path) -> None:
    env = report["environment"]
    lines = [f"# vtk bench: {report['model']['name']} on {report['dataset']}", "",
             (f"{environment_line(report)}; torch {env['versions']['torch']}, onnxruntime "
              f"{env['versions']['onnxruntime']}; {env['date']}"), "",
             f"Times: {report['time_includes']}.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(report)]
    if fastest := fastest_rows(report):
        lines += ["", "Fastest thread count:", "", "| " + " | ".join(FASTEST_COLUMNS) + " |",
                  "|" + "---|" * len(FASTEST_COLUMNS)] + ["| " + " | ".join(c) + " |" for c in fastest]
    write_text(path, "\n".join(lines) + "\n")


def _series(report: dict) -> dict[tuple[str, str, str, object], list[dict]]:
    """Plot lines: one per (runtime, precision, provider, thread count), points sorted by batch."""
    series: dict[tuple, list] = {}
    threads = report_threads(report)
    for r in report["rows"]:
        if r["status"] == "ok":
            key = (r["runtime"], r.get("precision", "fp32"), r["provider"], r.get("threads") or threads or "?")
            series.setdefault(key, []).append(r)
    return {key: sorted(rs, key=lambda r: r["batch"]) for key, rs in series.items()}


_DASHES = ["-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 3, 2, 3))]
_MARKERS = {"cpu": "o", "cuda": "s", "tensorrt": "^"}


def _styles(keys) -> tuple[dict, dict, dict]:
    """Colour per runtime, line style per precision and thread count, marker per provider: 18 series of 5
    runtimes shared 10 colours, and the chart meant to compare runtimes could not be read."""
    from vtk_vision.present.plots import plt

    runtimes = list(dict.fromkeys(k[0] for k in keys))
    palette = plt.get_cmap("tab10" if len(runtimes) <= 10 else "tab20").colors
    colour = {rt: palette[i % len(palette)] for i, rt in enumerate(runtimes)}
    ways = list(dict.fromkeys((k[1], k[3]) for k in keys))
    dash = {w: _DASHES[i % len(_DASHES)] for i, w in enumerate(ways)}
    providers = list(dict.fromkeys(k[2] for k in keys))
    marker = {p: _MARKERS.get(p, "D") for p in providers}
    return colour, dash, marker


def plot(report: dict, path: Path) -> None:
    """p50 latency and throughput against batch size; both panels from p50, so they always agree. Colour
    names the runtime, line style the precision and thread count, marker the provider, each in its own
    legend, so that twenty lines stay told apart."""
    from matplotlib.lines import Line2D
    from vtk_vision.present.plots import plt, save_figure

    series = _series(report)
    colour, dash, marker = _styles(series)
    fig, (ax_lat, ax_tput) = plt.subplots(1, 2, figsize=(11, 4.4))
    batches: set[int] = set()
    for (runtime, precision, provider, threads), rs in series.items():
        b = [r["batch"] for r in rs]
        batches.update(b)
        p50 = [r["latency_ms"]["p50"] for r in rs]
        style = dict(color=colour[runtime], linestyle=dash[(precision, threads)], marker=marker[provider],
                     markersize=4, linewidth=1.4)
        ax_lat.plot(b, p50, **style)
        ax_tput.plot(b, [n / (ms / 1e3) for n, ms in zip(b, p50)], **style)
    for ax, name in ((ax_lat, "p50 latency (ms)"), (ax_tput, "throughput (images/s, from p50)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sorted(batches), [str(b) for b in sorted(batches)])  # 1, 8, 64, not 2^0, 2^3, 2^6
        ax.minorticks_off()
        ax.set_xlabel("batch size")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3, which="both")
    keys = [
        ("runtime", [Line2D([], [], color=c, linewidth=3) for c in colour.values()], list(colour)),
        ("precision, threads", [Line2D([], [], color="0.3", linestyle=d) for d in dash.values()],
         [f"{p}, {t} thr" for p, t in dash]),
        ("provider", [Line2D([], [], color="0.3", linestyle="", marker=m) for m in marker.values()], list(marker)),
    ]
    keys = [k for k in keys if k[0] == "runtime" or len(k[1]) > 1]  # one style for every line: nothing to tell
    for i, (title, handles, labels) in enumerate(keys):
        fig.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(1.0, 0.95 - 0.32 * i),
                   fontsize=8, title_fontsize=8, frameon=False)
    fig.suptitle(f"{report['model']['name']}: {environment_line(report)}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def dumps(report: dict) -> str:
    """Strict JSON (no NaN), indented, with each row's raw samples on one line rather than one per value."""
    rows = report.get("rows") or []
    samples = [r.get("samples_ms") for r in rows]
    placeholder = [r | {"samples_ms": f"@samples{i}@" if s is not None else None} for i, (r, s) in
                   enumerate(zip(rows, samples))]
    text = json.dumps(report | {"rows": placeholder}, indent=2, default=str, allow_nan=False)
    for i, s in enumerate(samples):
        if s is not None:
            text = text.replace(f'"@samples{i}@"', json.dumps(s, allow_nan=False), 1)
    return text + "\n"


def write_outputs(report: dict, json_path: Path, csv_path: Path | None = None, md_path: Path | None = None,
                  plot_path: Path | None = None) -> list[Path]:
    """The report as JSON (always) and as CSV, Markdown and a PNG plot where asked; the paths written."""
    write_text(json_path, dumps(report))
    written = [json_path]
    for path, writer in ((csv_path, to_csv), (md_path, to_markdown), (plot_path, plot)):
        if path:
            writer(report, path)
            written.append(path)
    return written
