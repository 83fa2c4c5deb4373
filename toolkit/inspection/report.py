"""`vtk report`: one self-contained HTML page about a run, from what its folder holds.

    vtk report runs/lenet5-fashion-mnist-1      # -> runs/lenet5-fashion-mnist-1/report.html

It reads, never measures: the summary and curves come from run.json, the
confusion matrix and the gallery of wrong answers from `vtk eval`, the parity
table from `vtk export`, latency and throughput from `vtk bench`. A part whose
command has not run yet says which command makes it, so the page never shows
a number that was not measured.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from vtk_vision.core.atomic import write_text
from vtk_vision.inspection.report_bench import bench_section
from vtk_vision.inspection.report_recommend import recommend_section
from vtk_vision.present import html
from vtk_vision.runs.folder import Run

__all__ = ["ReportResult", "render_report", "write_report"]


@dataclass(frozen=True)
class ReportResult:
    path: Path
    missing: tuple[str, ...]   # the commands that would fill the parts still empty


def _summary(run: Run) -> str:
    rec, cfg = run.record, run.record.config
    acc = rec.accuracy or {}
    params = sum(p.numel() for p in run.model.parameters()) if run.model is not None else \
        "not counted: the model's code does not run here without --trust-code"
    facts = [("model", rec.model.name), ("parameters", params), ("input", _shape(rec.model.input_shape)),
             ("status", rec.status), ("created", rec.created),
             ("data", f"{rec.data.name} ({len(rec.data.classes)} classes, images {_shape(rec.data.image_shape)})"),
             ("classes", _names(rec.data.classes)),
             ("data source", rec.data.source),
             *[(f"{split} accuracy", f"{100 * acc[split]:.2f}%") for split in ("train", "val", "test") if split in acc],
             ("epochs run", rec.epochs_run), ("best epoch", rec.best_epoch),
             ("wall time", f"{rec.wall_s:.1f} s" if rec.wall_s is not None else None), ("device", rec.device)]
    recipe = [(k, v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v))
              for k, v in cfg.to_dict().items()]
    return html.columns("<h3>run</h3>" + html.key_values(f for f in facts if f[1] is not None),
                        "<h3>recipe</h3>" + html.key_values(recipe, per_row=2))


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _names(classes: tuple[str, ...], shown: int = 20) -> str:
    return ", ".join(classes[:shown]) + (f", ... ({len(classes)} in all)" if len(classes) > shown else "")


def _curves(run: Run) -> str:
    """Drawn from the history run.json records (markers, so that a one-epoch run shows its point); a
    record without one falls back to the curves.png training wrote."""
    if not run.record.history:
        path = run.folder.output("curves.png")
        return html.picture(path.read_bytes(), "training curves") if path.is_file() else \
            '<p class="missing">run.json records no epochs</p>'
    from vtk_vision.present.plots import curves

    with tempfile.TemporaryDirectory(prefix="vtk-report-") as tmp:
        drawn = curves([asdict(h) for h in run.record.history], Path(tmp) / "curves.png", run.record.best_epoch)
        return html.picture(drawn.read_bytes(), "training curves")


def _png(run: Run, name: str, alt: str, what: str, command: str) -> tuple[str, str | None]:
    """(html, None) with the picture embedded, or (the missing box, command) when there is none."""
    path = run.folder.output(name)
    if not path.is_file():
        return html.missing(what, command), command
    return html.picture(path.read_bytes(), alt), None


def _exports(run: Run, command: str) -> tuple[str, str | None]:
    artifacts = run.folder.read_exports().artifacts
    if not artifacts:
        return html.missing("not exported yet", command), command
    rows = [[a.format, a.precision, name, round(a.size_bytes / 1e3) if a.passed else None,
             f"{a.max_abs_diff:.1e}" if a.max_abs_diff is not None else None,
             f"{100 * a.agreement:.2f}%" if a.agreement is not None else None,
             f"{100 * a.accuracy:.2f}%" if a.accuracy is not None else None,
             "ok" if a.passed else f"FAILED: {a.error}"] for name, a in sorted(artifacts.items())]
    images = next((a.checks[0].get("images") for a in artifacts.values() if a.checks), None)
    caption = f"each artifact against eager PyTorch on {images:,} test images" if isinstance(images, int) else \
        "each artifact against eager PyTorch"
    return (f'<p class="sub">{html.esc(caption)}</p>'
            + html.table(["format", "precision", "file", "size (KB)", "max abs diff", "top-1 agree", "accuracy",
                          "status"], rows, ["" if a.passed else "bad" for _, a in sorted(artifacts.items())]), None)


def _bench(run: Run, command: str, path: Path | None = None) -> tuple[str, str | None, dict | None]:
    """The bench section from RUN/bench.json, or from `path` (`vtk report --bench FILE`: a bench kept
    elsewhere, read as data like any bench file)."""
    path = path or run.folder.output("bench.json")
    if not path.is_file():
        return html.missing("not benched yet", command), command, None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(report, dict):
            raise TypeError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:
        return html.missing(f"bench.json is unreadable ({e}); bench again", command), command, None
    return bench_section(report, str(path)), None, report


def _tuning(run: Run) -> str:
    """How the run trained and every candidate the probe timed: the figures behind the choice."""
    t = run.record.tuning
    if t is None:
        return '<p class="missing">recorded before vtk measured its training setting</p>'
    rate = t.chosen_rate
    rows = [[f.stage, f.setting.describe(t.device), round(f.images_per_s) if f.images_per_s else None,
             "chosen" if f.setting == t.chosen else
             f"{f.images_per_s / rate:.2f}x" if rate and f.images_per_s and f.finite else None, f.note]
            for f in t.candidates]
    table = html.table(["stage", "setting", "images/s", "throughput vs chosen", "note"], rows,
                       ["" if f.finite else "bad" for f in t.candidates]) if rows else ""
    return f"<h3>setting</h3><p>{html.esc(t.summary())}</p>" + table


# The bench's environment block in words; a key vtk does not know yet shows with its underscores as spaces.
_ENV_LABELS = {"date": "date", "host": "host", "cpu": "CPU", "cpu_features_text": "CPU features",
               "cpu_count": "cores", "threads": "thread counts", "gpu": "GPU", "platform": "platform",
               "ort_providers_available": "ONNX Runtime providers", "versions": "versions",
               "calibration": "calibration (machine drift, vtk compare)"}
_ENV_HIDDEN = {"cpu_features"}  # the flags behind "CPU features", already said in words


def _env_value(key: str, value: object) -> object:
    if key == "gpu":
        return value.get("name", "-") if isinstance(value, dict) else "none"
    if key == "calibration" and isinstance(value, dict):
        p50 = value.get("p50_ms")
        return f"{p50:.3f} ms p50: {value.get('workload')}" if isinstance(p50, (int, float)) else "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value


def _environment(run: Run, bench: dict | None) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in run.record.versions.items())
    trained = [("device", run.record.device), ("mixed precision", run.record.amp), ("versions", versions)]
    parts = ["<h3>training</h3>" + html.key_values(trained) + _tuning(run)]
    env = (bench or {}).get("environment")
    if isinstance(env, dict):
        pairs = [(_ENV_LABELS.get(k, str(k).replace("_", " ")), _env_value(k, v)) for k, v in env.items()
                 if k not in _ENV_HIDDEN]
        parts.append("<h3>bench</h3>" + html.key_values(pairs))
    return html.columns(*parts)


def _warnings(run: Run, bench: dict | None) -> str | None:
    """The sanity warnings (inspection/sanity.py) that training, export and bench recorded, each once with
    the steps that saw it; None when there are none."""
    seen: dict[str, list[str]] = {}
    for line in run.record.warnings:
        seen.setdefault(line, []).append("training")
    for name, a in sorted(run.folder.read_exports().artifacts.items()):
        for line in a.warnings:
            seen.setdefault(line, []).append(f"export {name}")
    for line in (bench or {}).get("warnings") or []:
        seen.setdefault(str(line), []).append("bench")
    if not seen:
        return None
    return "<ul>" + "".join(f"<li>{html.esc(line)} <span class=\"sub\">({html.esc(', '.join(where))})</span></li>"
                            for line, where in seen.items()) + "</ul>"


def render_report(run: Run, bench_file: Path | None = None) -> tuple[str, tuple[str, ...]]:
    """The page, and the commands that would fill its empty parts; `bench_file` in place of RUN/bench.json."""
    where = shlex.quote(str(run.path.resolve()))
    evaluate = f"vtk eval {where}"
    curves = _curves(run)
    confusion, c2 = _png(run, "confusion.png", "confusion matrix", "not evaluated yet", evaluate)
    wrong, c3 = _png(run, "misclassified.png", "misclassified test images", "not evaluated yet", evaluate)
    if c2 is None and c3 is not None:  # evaluated, and `vtk eval` draws no gallery when nothing was wrong
        wrong, c3 = '<p class="missing">no test image was misclassified</p>', None
    exports, c4 = _exports(run, f"vtk export {where}")
    bench, c5, bench_report = _bench(run, f"vtk bench {where}", bench_file)
    sections = [("summary", "Summary", _summary(run)), ("curves", "Training curves", curves),
                ("confusion", "Confusion matrix (test split)", confusion),
                ("misclassified", "Misclassified test images", wrong), ("exports", "Export parity", exports),
                ("bench", "Benchmark", bench),
                *([("recommend", "Recommendation", recommend_section(bench_file or run.folder.output("bench.json")))]
                  if bench_report is not None else []),
                ("environment", "Environment", _environment(run, bench_report))]
    if (warned := _warnings(run, bench_report)) is not None:
        sections.insert(0, ("warnings", "Warnings", warned))
    rec = run.record
    subtitle = (f"{rec.model.name} on {rec.data.name}, {rec.status}; run folder {run.path.resolve()}")
    todo = tuple(dict.fromkeys(c for c in (c2, c3, c4, c5) if c))
    return html.page(f"vtk report: {run.path.name}", subtitle, sections), todo


def write_report(run: Run, out: Path | None = None, bench_file: Path | None = None) -> ReportResult:
    """Write the page to `out` (default: RUN/report.html) atomically; `bench_file`: a bench JSON kept
    elsewhere, in place of RUN/bench.json."""
    target = Path(out) if out else run.folder.output("report.html")
    page, todo = render_report(run, bench_file)
    write_text(target, page)
    return ReportResult(target, todo)
