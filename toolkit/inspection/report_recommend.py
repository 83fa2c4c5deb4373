"""The recommendation part of `vtk report`: bench.json's Pareto front and the row to ship, with no budget.

A report knows no deployer's budget, so it shows what `vtk recommend` says
without constraints: the rows no other row beats on speed, accuracy and size
at once, and the fastest of them (ties within noise broken by size, then
accuracy), beside a latency-accuracy plot whose marker area is the file's
size. `vtk recommend --max-p99 ...` applies a budget.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from vtk_vision.core.errors import VtkError
from vtk_vision.present import html

__all__ = ["recommend_section"]


def _plot(rec, path: Path) -> None:
    from vtk_vision.present.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(7, 4.5))
    front = {c.name for c in rec.front}
    for c in rec.fits:
        if c.p50_ms is None or c.accuracy is None:
            continue  # a row without one of the two axes has no place on this plot
        size = 20 + 200 * ((c.size_bytes or 0) / max(x.size_bytes or 1 for x in rec.fits))
        on = c.name in front
        ax.scatter(c.p50_ms, 100 * c.accuracy, s=size, alpha=0.8 if on else 0.3,
                   edgecolors="black" if c is rec.pick else "none", linewidths=2)
        if on:
            ax.annotate(c.name, (c.p50_ms, 100 * c.accuracy), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency (ms, closed loop)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("latency, accuracy and size (marker area); labelled: the Pareto front; ringed: the pick",
                 fontsize=9)
    ax.grid(alpha=0.3, which="both")
    save_figure(fig, path)


def recommend_section(bench_path: Path) -> str:
    """The front, the pick and why, and the plot; a bench.json recommend cannot read says why instead."""
    from vtk_vision.bench.recommend import Constraints, recommend
    from vtk_vision.bench.recommend_input import read_sources

    try:
        rec = recommend(read_sources([bench_path]), Constraints())
    except VtkError as e:
        return f'<p class="missing">no recommendation: {html.esc(e)}</p>'
    rows = [[c.name, c.p50_ms, c.p99_ms if c.p99_ms is not None else c.p99_note,
             None if c.accuracy is None else f"{100 * c.accuracy:.2f}%",
             None if c.size_bytes is None else round(c.size_bytes / 1e3)] for c in rec.front]
    body = (f"<p>ship {html.esc(rec.why)} (no budget applied; <code>vtk recommend --max-p99 2ms "
            f"--max-accuracy-drop 0.3 --max-size 200KB</code> applies one)</p>"
            + html.table(["Pareto front", "p50 ms", "p99 ms", "accuracy", "size (KB)"], rows))
    with tempfile.TemporaryDirectory(prefix="vtk-report-") as tmp:
        try:
            _plot(rec, Path(tmp) / "front.png")
        except (ValueError, TypeError) as e:
            return body + f'<p class="missing">plot not drawn: {html.esc(e)}</p>'
        return body + html.picture((Path(tmp) / "front.png").read_bytes(), "latency, accuracy and size of each row")
