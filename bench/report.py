"""Bench output: the console table, CSV, Markdown, a latency/throughput plot, and deltas against an old run."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from vtk_vision.core.atomic import write_json, write_text
from vtk_vision.core.errors import VtkError
from vtk_vision.core.text import printable

__all__ = ["COLUMNS", "OPTIONAL", "runtime_label", "row_key", "table_rows", "to_csv", "to_markdown", "plot", "compare", "write_outputs"]

COLUMNS = ["runtime", "provider", "batch", "status", "size", "accuracy", "Δ eager", "p50 ms", "p99 ms", "images/s"]
# Left out, in this order, when the terminal is too narrow for the whole table (`vtk bench --wide` keeps
# them; bench.json and --csv/--md always hold every figure).
OPTIONAL = ("p99 ms", "provider", "size", "Δ eager")


def runtime_label(row: dict) -> str:
    """'onnx', or 'onnx int8' for a reduced-precision artifact (rows from before precisions are fp32)."""
    precision = row.get("precision", "fp32")
    return row["runtime"] if precision == "fp32" else f"{row['runtime']} {precision}"


def row_key(row: dict) -> str:
    """What identifies a row between two bench files: runtime, precision, provider, batch."""
    return f"{runtime_label(row)}/{row['provider']}/{row['batch']}"


def _size(n: int | None) -> str:
    return "-" if not n else f"{n / 1e3:.0f} KB" if n < 1e6 else f"{n / 1e6:.1f} MB"


def table_rows(report: dict) -> list[list[str]]:
    out = []
    for r in report["rows"]:
        if r["status"] != "ok":
            out.append([runtime_label(r), r["provider"], str(r["batch"]), f"{r['status']}: {r['reason']}",
                        _size(r["size_bytes"]), *["-"] * 5])
            continue
        lat = r["latency_ms"]
        out.append([runtime_label(r), r["provider"], str(r["batch"]), "ok", _size(r["size_bytes"]),
                    f"{100 * r['accuracy']:.2f}%", f"{100 * r['accuracy_delta']:+.2f}", f"{lat['p50']:.4f}",
                    f"{lat['p99']:.4f}", f"{r['images_per_s']:,.0f}"])
    return out


def _flat(report: dict) -> list[dict]:
    rows = []
    for r in report["rows"]:
        lat = r.get("latency_ms") or {}
        rows.append({k: v for k, v in r.items() if k not in ("latency_ms", "active_providers")}
                    | {f"{k}_ms": v for k, v in lat.items() if k not in ("n", "cv")}
                    | {"samples": lat.get("n"), "cv": lat.get("cv"),
                       "active_providers": " ".join(r.get("active_providers") or [])})
    return rows


def to_csv(report: dict, path: Path) -> None:
    rows = _flat(report)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def to_markdown(report: dict, path: Path) -> None:
    env = report["environment"]
    lines = [f"# vtk bench: {report['model']['name']} on {report['dataset']}", "",
             f"{env['cpu']} ({env.get('cpu_features_text', 'CPU features not recorded')}), {env['threads']} threads; GPU: {(env['gpu'] or {}).get('name', 'none')}; "
             f"torch {env['versions']['torch']}, onnxruntime {env['versions']['onnxruntime']}; {env['date']}", "",
             f"Times: {report['time_includes']}.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(report)]
    write_text(path, "\n".join(lines) + "\n")


def plot(report: dict, path: Path) -> None:
    from vtk_vision.present.plots import plt, save_figure

    fig, (ax_lat, ax_tput) = plt.subplots(1, 2, figsize=(11, 4))
    series: dict[str, list] = {}
    for r in report["rows"]:
        if r["status"] == "ok":
            series.setdefault(f"{runtime_label(r)} ({r['provider']})", []).append(r)
    for label, rs in series.items():
        rs.sort(key=lambda r: r["batch"])
        b = [r["batch"] for r in rs]
        ax_lat.plot(b, [r["latency_ms"]["p50"] for r in rs], marker="o", label=label)
        ax_tput.plot(b, [r["images_per_s"] for r in rs], marker="o", label=label)
    for ax, name in ((ax_lat, "p50 latency (ms)"), (ax_tput, "throughput (images/s)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3, which="both")
    ax_tput.legend(fontsize=8)
    env = report["environment"]
    fig.suptitle(f"{report['model']['name']}: {env['cpu']} ({env.get('cpu_features_text', '')})")
    save_figure(fig, path)


def compare(report: dict, old_path: Path) -> list[list[str]]:
    """Rows of (key, old p50, new p50, change, old img/s, new img/s, change) for rows in both."""
    try:
        old = json.loads(Path(old_path).read_text())
        old_rows = {row_key(r): r for r in old["rows"]}
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise VtkError(f"--compare {old_path}: not a vtk bench JSON file ({e})") from None
    out = []
    for r in report["rows"]:
        o = old_rows.get(row_key(r))
        if not o or r["status"] != "ok" or o["status"] != "ok":
            continue
        try:
            p_old, t_old = float(o["latency_ms"]["p50"]), float(o["images_per_s"])
            if not (math.isfinite(p_old) and math.isfinite(t_old) and p_old > 0 and t_old > 0):
                raise ValueError("not positive")
        except (KeyError, TypeError, ValueError) as e:
            raise VtkError(f"--compare {printable(old_path)}: row {row_key(r)} "
                           f"holds no usable p50 and images/s ({e}); compare with a file vtk bench wrote") from None
        p_new, t_new = r["latency_ms"]["p50"], r["images_per_s"]
        out.append([row_key(r), f"{p_old:.4f}", f"{p_new:.4f}",
                    f"{100 * (p_new / p_old - 1):+.1f}%", f"{t_old:,.0f}", f"{t_new:,.0f}",
                    f"{100 * (t_new / t_old - 1):+.1f}%"])
    return out


def write_outputs(report: dict, json_path: Path, csv_path: Path | None = None, md_path: Path | None = None,
                  plot_path: Path | None = None) -> list[Path]:
    """The report as JSON (always) and as CSV, Markdown and a PNG plot where asked; the paths written."""
    write_json(json_path, report)
    written = [json_path]
    for path, writer in ((csv_path, to_csv), (md_path, to_markdown), (plot_path, plot)):
        if path:
            writer(report, path)
            written.append(path)
    return written
