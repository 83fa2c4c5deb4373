"""The `vtk` command line: one function per command, whose docstring is its help.

Only this module imports click and prints. Library errors (`VtkError`) become
one line on stderr and exit code 1; bad option combinations exit 2. `--debug`
keeps the traceback. Heavy imports (torch) happen inside commands so that
`vtk --help` answers at once.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
from rich.console import Console

from vtk_vision import __version__
from vtk_vision.core.errors import VtkError

# Piped output gets wide tables rather than rich's 80-column default, so nothing is cut.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class VtkGroup(click.Group):
    """Turns `VtkError` into click's one-line error unless --debug is on."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VtkError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(str(e)) from None


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
        return f"{record.levelname.lower()}: {record.getMessage()}"


def main() -> None:
    """Console-script entry point: library warnings go to stderr as one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    log = logging.getLogger("vtk")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    cli(obj={})


def data_dir_option(fn):
    """--data-dir, shared by every command that reads a dataset."""
    return click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Data root (default: $VTK_DATA_DIR, else the per-user cache).")(fn)


def data_options(fn):
    """--data-dir and --download, for the commands that load a dataset by name."""
    fn = click.option("--download", is_flag=True,
                      help="Fetch a missing dataset with torchvision (needs a network).")(fn)
    return data_dir_option(fn)


def _emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


# ---------------------------------------------------------------- models
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(as_json: bool) -> None:
    """List the model zoo: input shape, parameters, default dataset."""
    from vtk_vision.models import create_model, list_models, model_spec
    from vtk_vision.present.tables import fmt_int, table

    rows = []
    for name in list_models():
        spec, model = model_spec(name), create_model(name)
        rows.append({"name": name, "input_shape": list(model.vtk_info.input_shape),
                     "params": sum(p.numel() for p in model.parameters()),
                     "default_dataset": spec.default_dataset, "description": spec.description})
    if as_json:
        return _emit_json(rows)
    console.print(table(None, ["model", "input", "params", "dataset", "description"],
                    [[r["name"], "x".join(map(str, r["input_shape"])), fmt_int(r["params"]),
                      r["default_dataset"], r["description"]] for r in rows], right={"params"}))


# ---------------------------------------------------------------- summary
@cli.command()
@click.argument("model")
@click.option("--input-size", "input_sizes", type=int, multiple=True,
              help="Square input side; repeat to compare sizes (default: the model's own).")
@click.option("--depth", type=click.IntRange(1, 10), default=3, show_default=True,
              help="How deep torchinfo descends into nested modules.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def summary(model: str, input_sizes: tuple[int, ...], depth: int, as_json: bool) -> None:
    """torchinfo table of MODEL for each input size, then one comparison line per size."""
    from vtk_vision.present.tables import fmt_int, table
    from vtk_vision.inspection.summary import summarize

    # Check every size before printing anything, so an error is the only output.
    results = [summarize(model, s, depth=depth) for s in (input_sizes or (None,))]
    if as_json:
        return _emit_json([r.to_dict() for r in results])
    for r in results:
        console.print(f"[bold]{r.model} at {'x'.join(map(str, r.input_shape))}[/bold]")
        console.print(r.table, markup=False)
    console.print(table("comparison", ["input", "params", "mult-adds", "est. size (MB)"],
                    [["x".join(map(str, r.input_shape)), fmt_int(r.params), fmt_int(r.mult_adds),
                      f"{r.estimated_mb:.2f}"] for r in results], right={"params", "mult-adds", "est. size (MB)"}))



# ---------------------------------------------------------------- datasets
@cli.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets(data_dir: Path | None, as_json: bool) -> None:
    """Each dataset: whether and where it was found, split sizes, classes."""
    from vtk_vision.data.catalog import survey
    from vtk_vision.present.tables import table

    rows = survey(data_dir)
    if as_json:
        return _emit_json(rows)
    found = [r for r in rows if r["source"]]
    console.print(table(None, ["dataset", "train", "test", "shape", "classes", "found at"],
                    [[r["name"], f"{r['train']:,}", f"{r['test']:,}", "x".join(map(str, r["shape"])),
                      f"{len(r['classes'])}: {', '.join(r['classes'][:2])}, ...", r["source"]] for r in found],
                    right={"train", "test"}))
    for r in rows:
        if not r["source"]:
            console.print(f"{r['name']}: not found: {r['error']}")


@cli.command()
@click.argument("dataset")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option("--n", type=click.IntRange(1, 400), default=25, show_default=True, help="How many samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which samples (random, reproducible).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("grid.png"),
              show_default=True, help="PNG file to write.")
@data_options
def show(dataset: str, split: str, n: int, seed: int, out: Path, data_dir: Path | None, download: bool) -> None:
    """Write a PNG grid of DATASET samples with their class names."""
    import torch

    from vtk_vision.data import load_dataset
    from vtk_vision.present.plots import image_grid

    ds = load_dataset(dataset, data_dir, download)
    part = getattr(ds, split)
    idx = torch.randperm(len(part), generator=torch.Generator().manual_seed(seed))[:n]
    image_grid(part.images[idx], [ds.classes[i] for i in part.labels[idx].tolist()], out,
               suptitle=f"{ds.name} ({split}, {len(idx)} of {len(part):,})")
    console.print(f"wrote {out}")



# ---------------------------------------------------------------- train
def with_train_options(sweep: bool):
    """Attach every TRAIN_OPTIONS entry: typed for `train`, as comma lists for `sweep`."""
    from vtk_vision.cli.train_options import TRAIN_OPTIONS

    def wrap(fn):
        for opt in reversed(TRAIN_OPTIONS):
            if sweep:
                name = opt.flag.split("/")[0]
                fn = click.option(name, opt.field, default=None, metavar="V1,V2,...",
                                  help=opt.help + (" (true,false)" if opt.is_bool else ""))(fn)
            else:
                fn = click.option(opt.flag, opt.field, type=None if opt.is_bool else opt.type,
                                  default=None, help=opt.help)(fn)
        return fn
    return wrap


class _Progress:
    """A tqdm bar within each epoch on a terminal; one plain line per epoch always."""

    def __init__(self, epochs: int | None = None):
        self.bar, self.epochs, self.tty = None, epochs, sys.stderr.isatty()

    def on_start(self, info: dict) -> None:
        cfg = info["config"]
        self.epochs = cfg.epochs
        stderr.print(f"run {info['run_dir']}: {cfg.model} on {cfg.dataset}, {info['device']}"
                  f"{'' if info['amp'] == 'None' else ' ' + info['amp']}, train {info['train']:,} / "
                  f"val {info['val']:,} / test {info['test']:,}, {cfg.epochs} epochs from {info['start_epoch']}")

    def on_batch(self, i: int, n: int) -> None:
        if not self.tty:
            return
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=n, leave=False, unit="batch", file=sys.stderr)
        self.bar.update(1)

    def on_epoch(self, r: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        console.print(f"epoch {r['epoch']:>3}/{self.epochs}  train loss {r['train_loss']:.4f}  "
                  f"val loss {r['val_loss']:.4f}  val acc {100 * r['val_acc']:.2f}%  lr {r['lr']:.2e}  "
                  f"{r['seconds']:.1f}s  {r['images_per_s']:,.0f} img/s")


def _fit(config, resume=None) -> dict:
    from vtk_vision.training.trainer import Hooks, TrainingInterrupted, fit

    progress = _Progress()
    try:
        result = fit(config, Hooks(progress.on_start, progress.on_batch, progress.on_epoch), resume=resume)
    except TrainingInterrupted as e:
        if progress.bar is not None:
            progress.bar.close()
        stderr.print(str(e))
        sys.exit(130)
    m = result.meta
    acc = m["accuracy"]
    console.print(f"test accuracy {100 * acc['test']:.2f}% (val {100 * acc['val']:.2f}%, train {100 * acc['train']:.2f}%), "
              f"best epoch {m['best_epoch']} of {m['epochs_run']}, {m['wall_s']:.1f}s -> {result.run_dir}")
    return m


@cli.command()
@click.argument("model", required=False)
@click.option("--resume", type=click.Path(path_type=Path), help="Continue an interrupted run folder.")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), help="Where run folders go "
              "(default: $VTK_RUNS_DIR, else ./runs).")
@with_train_options(sweep=False)
@data_options
def train(model: str | None, resume: Path | None, runs_dir: Path | None, data_dir: Path | None,
          download: bool, **options) -> None:
    """Train MODEL and write its run folder (weights, run.json, metrics, curves, TensorBoard).

    Defaults come from the model: `vtk train lenet5` trains the 32x32 LeNet-5 on
    Fashion-MNIST. Ctrl-C saves a checkpoint that `vtk train --resume RUN` continues.
    """
    import json as _json

    from vtk_vision.training.config import TrainConfig
    from vtk_vision.runs.folder import META, resolve_run
    from vtk_vision.cli.train_options import to_config_kwargs

    if resume is not None:
        given = [k for k, v in options.items() if v is not None]
        if model or given:
            raise click.UsageError("--resume continues a run with its own options; give no MODEL or options")
        path = resolve_run(resume, runs_dir)
        config = TrainConfig.from_dict(_json.loads((path / META).read_text())["config"])
        _fit(config, resume=path)
        return
    if model is None:
        raise click.UsageError("name a MODEL to train (see `vtk models`), or --resume RUN")
    config = TrainConfig(model=model, data_dir=str(data_dir) if data_dir else None, download=download,
                         runs_dir=str(runs_dir) if runs_dir else None, **to_config_kwargs(options))
    _fit(config)


# ---------------------------------------------------------------- sweep
@cli.command()
@click.argument("model")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), help="Where run folders go.")
@with_train_options(sweep=True)
@data_options
def sweep(model: str, runs_dir: Path | None, data_dir: Path | None, download: bool, **lists) -> None:
    """Train MODEL once per combination of comma-separated option values; best by validation accuracy.

    \b
      vtk sweep lenet5 --lr 1e-3,5e-4 --weight-decay 5e-3,1e-3 --epochs 5
    """
    import itertools

    from vtk_vision.training.config import TrainConfig
    from vtk_vision.present.tables import table
    from vtk_vision.runs.folder import set_latest
    from vtk_vision.cli.train_options import TRAIN_OPTIONS, to_config_kwargs

    by_field = {o.field: o for o in TRAIN_OPTIONS}
    grid: dict[str, list] = {}
    for name, text in lists.items():
        if text is not None:
            try:
                grid[name] = [by_field[name].convert(v.strip()) for v in text.split(",") if v.strip()]
            except click.BadParameter as e:
                raise click.BadParameter(e.message, param_hint=by_field[name].flag.split("/")[0]) from None
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    stderr.print(f"sweep: {len(combos)} run(s) over {', '.join(grid) or 'no options'}")
    results = []
    for i, combo in enumerate(combos, 1):
        stderr.print(f"[{i}/{len(combos)}] {combo}")
        config = TrainConfig(model=model, data_dir=str(data_dir) if data_dir else None, download=download,
                             runs_dir=str(runs_dir) if runs_dir else None, **to_config_kwargs(combo))
        meta = _fit(config)
        results.append((combo, meta))
    results.sort(key=lambda r: -r[1]["accuracy"]["val"])
    best_dir = Path(results[0][1]["run_dir"])
    set_latest(best_dir)
    console.print(table("sweep results (sorted by validation accuracy)",
                    ["", *grid, "val acc", "test acc", "best epoch", "run"],
                    [["*" if i == 0 else "", *[c[k] for k in grid], f"{100 * m['accuracy']['val']:.2f}%",
                      f"{100 * m['accuracy']['test']:.2f}%", m["best_epoch"], Path(m["run_dir"]).name]
                     for i, (c, m) in enumerate(results)]))
    console.print(f"best: {best_dir} (runs/latest now points to it)")



# ---------------------------------------------------------------- eval / predict
def run_options(fn):
    return click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Runs folder (default: $VTK_RUNS_DIR, else ./runs).")(fn)


@cli.command("eval")
@click.argument("run", required=False)
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the PNGs go (default: the run folder).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@run_options
@data_dir_option
def eval_(run: str | None, out_dir: Path | None, as_json: bool, runs_dir: Path | None,
          data_dir: Path | None) -> None:
    """Test accuracy of RUN (default: the latest), per class; confusion matrix and wrong answers as PNGs."""
    from vtk_vision.inspection.evaluate import eval_run
    from vtk_vision.present.tables import table
    from vtk_vision.runs.folder import load_run

    r = load_run(run, runs_dir)
    res = eval_run(r, out_dir or r.path, str(data_dir) if data_dir else None)
    if as_json:
        return _emit_json(res)
    console.print(table(f"{r.path.name}: test accuracy {100 * res['accuracy']:.2f}% on {res['test_images']:,} images",
                    ["class", "accuracy"], [[c, f"{100 * a:.2f}%"] for c, a in res["per_class"].items()],
                    right={"accuracy"}))
    for f in res["files"]:
        console.print(f"wrote {f}")


@cli.command()
@click.argument("args", nargs=-1, metavar="[RUN] [IMAGE]...")
@click.option("--n", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Random test images to predict when no IMAGE is given.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="PNG (default: RUN/predictions.png).")
@run_options
@data_dir_option
def predict(args: tuple[str, ...], n: int, seed: int, out: Path | None, runs_dir: Path | None,
            data_dir: Path | None) -> None:
    """Predict IMAGE files (or n test images) with RUN (default: the latest); draw them to a PNG."""
    from vtk_vision.core.errors import RunError
    from vtk_vision.inspection.predict import predict as predict_
    from vtk_vision.runs.folder import load_run, resolve_run

    def is_run(a: str) -> bool:
        try:
            return bool(resolve_run(a, runs_dir))
        except RunError:
            return False

    run = args[0] if args and is_run(args[0]) else None
    images = [Path(a) for a in args[1 if run else 0:]]
    for p in images:
        if not p.is_file():
            raise VtkError(f"{p} is neither a run folder nor an image file")
    r = load_run(run, runs_dir)
    target = out or r.path / "predictions.png"
    rows = predict_(r, target, images or None, n, seed, str(data_dir) if data_dir else None)
    for row in rows:
        truth = "" if row["true"] is None else f"  (true: {row['true']})"
        console.print(f"{row['image']}: {row['predicted']} {100 * row['confidence']:.1f}%{truth}")
    console.print(f"wrote {target}")



# ---------------------------------------------------------------- export
@cli.command()
@click.argument("run", required=False)
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript", "pt2", "all"]), default="onnx",
              show_default=True, help="Artifact format.")
@click.option("--opset", type=click.IntRange(1), help="ONNX opset (default: the exporter's own).")
@click.option("--dynamic-batch/--static-batch", default=True, show_default=True,
              help="A dynamic batch dimension named `batch`, or a fixed one.")
@click.option("--batch-size", type=click.IntRange(1), default=1, show_default=True,
              help="The fixed batch of a --static-batch export.")
@click.option("--bake-preprocess", is_flag=True,
              help="Input raw uint8 pixels; scaling, padding and normalisation inside the graph.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: RUN/exports).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@run_options
@data_dir_option
def export(run: str | None, fmt: str, opset: int | None, dynamic_batch: bool, batch_size: int,
           bake_preprocess: bool, out_dir: Path | None, as_json: bool, runs_dir: Path | None,
           data_dir: Path | None) -> None:
    """Export RUN (default: the latest) and check each artifact against eager PyTorch on the test split."""
    from vtk_vision.exporters import FORMATS, ExportOptions, export_run
    from vtk_vision.present.tables import fmt_bytes, table
    from vtk_vision.runs.folder import load_run

    if opset is not None and fmt not in ("onnx", "all"):
        raise click.UsageError("--opset applies to --format onnx only")
    if batch_size != 1 and dynamic_batch:
        raise click.UsageError("--batch-size sets the fixed batch of a --static-batch export")
    r = load_run(run, runs_dir)
    formats = list(FORMATS) if fmt == "all" else [fmt]
    opts = ExportOptions(dynamic_batch=dynamic_batch, batch_size=batch_size, opset=opset,
                         bake_preprocess=bake_preprocess)
    folder, results = export_run(r, formats, out_dir, opts, str(data_dir) if data_dir else None)
    if as_json:
        _emit_json([x.to_dict() for x in results])
    else:
        console.print(table(f"{r.path.name} exports (checked against eager PyTorch on "
                            f"{results[0].checks[0]['images'] if results[0].checks else 0:,} test images)",
                            ["format", "file", "size", "max abs diff", "top-1 agree", "accuracy", "status"],
                            [[x.format, Path(x.path).name, fmt_bytes(x.size_bytes) if x.passed else "-",
                              f"{x.max_abs_diff:.1e}" if x.passed else "-",
                              f"{100 * x.agreement:.2f}%" if x.passed else "-",
                              f"{100 * x.accuracy:.2f}%" if x.accuracy is not None else "-",
                              "ok" if x.passed else f"FAILED: {x.error}"] for x in results],
                            right={"size", "max abs diff", "top-1 agree", "accuracy"}))
        console.print(f"wrote {folder / 'export.json'}")
    failed = [x for x in results if not x.passed]
    if failed:
        raise VtkError(f"{len(failed)} of {len(results)} export(s) failed: "
                       + "; ".join(f"{x.format}: {x.error}" for x in failed))



# ---------------------------------------------------------------- bench
def _int_list(ctx, param, value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("batch sizes must be positive integers, e.g. 1,8,64,256")
    return sizes


def _runtime_list(ctx, param, value: str) -> tuple[str, ...]:
    from vtk_vision.bench.runtimes import RUNTIMES

    names = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [n for n in names if n not in RUNTIMES]
    if bad or not names:
        raise click.BadParameter(f"unknown runtime {', '.join(bad) or '(none)'}; choose from {', '.join(RUNTIMES)}")
    return names


@cli.command()
@click.argument("run", required=False)
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt", "all"]),
              help="Execution provider (default: cpu, plus cuda when a GPU is present).")
@click.option("--runtime", "runtimes", default="eager,torchscript,onnx,pt2", show_default=True,
              callback=_runtime_list, help="Runtimes to time.")
@click.option("--batch-sizes", default="1,8,64,256", show_default=True, callback=_int_list)
@click.option("--warmup-s", type=click.FloatRange(0), default=0.3, show_default=True, help="Warm-up per row.")
@click.option("--min-iters", type=click.IntRange(1), default=50, show_default=True, help="Fewest timed calls.")
@click.option("--min-s", type=click.FloatRange(0), default=1.0, show_default=True, help="Shortest timed span.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for every runtime "
              "(default: all cores).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as JSON (default: RUN/bench.json).")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write CSV.")
@click.option("--md", "md_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write Markdown.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a PNG of latency and throughput against batch size.")
@click.option("--compare", "compare_to", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An earlier bench JSON: print the changes.")
@run_options
@data_dir_option
def bench(run, provider, runtimes, batch_sizes, warmup_s, min_iters, min_s, threads, json_out, csv_out,
          md_out, plot_out, compare_to, runs_dir, data_dir) -> None:
    """Accuracy and latency of RUN (default: the latest) per runtime, provider and batch size."""
    import os

    from vtk_vision.bench.report import COLUMNS, compare, plot, table_rows, to_csv, to_markdown
    from vtk_vision.bench.run import BenchOptions, bench_run, resolve_providers
    from vtk_vision.core.atomic import write_json
    from vtk_vision.present.tables import table
    from vtk_vision.runs.folder import load_run

    providers = resolve_providers(provider)  # before any other work: --provider cuda without a GPU stops here
    r = load_run(run, runs_dir)
    opts = BenchOptions(providers, runtimes, batch_sizes, warmup_s, min_iters, min_s, threads or os.cpu_count())
    report = bench_run(r, opts, str(data_dir) if data_dir else None, progress=lambda m: stderr.print(m, style="dim"))
    env = report["environment"]
    console.print(table(f"{r.path.name}: {report['dataset']} test split ({report['test_images']:,} images), "
                        f"{env['cpu']}, {env['threads']} threads, GPU: {(env['gpu'] or {}).get('name', 'none')}",
                        COLUMNS, table_rows(report), right={"batch", "size", "accuracy", "Δ eager", "p50 ms",
                                                            "p99 ms", "images/s"}))
    console.print(f"times: {report['time_includes']}; images/s = batch / mean latency")
    target = json_out or r.path / "vtk_vision.bench.json"
    write_json(target, report)
    console.print(f"wrote {target}")
    for path, writer in ((csv_out, to_csv), (md_out, to_markdown), (plot_out, plot)):
        if path:
            writer(report, path)
            console.print(f"wrote {path}")
    if compare_to:
        console.print(table(f"changes against {compare_to}", ["row", "old p50", "new p50", "Δ p50", "old img/s",
                                                              "new img/s", "Δ img/s"], compare(report, compare_to)))
    if any(row["status"] == "failed" for row in report["rows"]) and provider not in ("all", None):
        raise VtkError("some rows failed; their reasons are in the table")

