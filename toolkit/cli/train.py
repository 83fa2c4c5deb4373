"""`vtk train` and `vtk sweep`: every training option declared once (train_options.py), typed for
`train` and as comma lists for `sweep`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vtk_vision.cli.app import cli, console, stderr
from vtk_vision.cli.options import data_dir_option, download_option, runs_dir_option
from vtk_vision.cli.train_options import TRAIN_OPTIONS, to_config_kwargs


def with_train_options(sweep: bool):
    """Attach every TRAIN_OPTIONS entry: typed for `train`, as comma lists for `sweep`."""
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

    def __init__(self):
        self.bar, self.epochs, self.tty = None, None, sys.stderr.isatty()

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

    def on_epoch(self, r) -> None:
        self.close()
        console.print(f"epoch {r.epoch:>3}/{self.epochs}  train loss {r.train_loss:.4f}  val loss {r.val_loss:.4f}  "
                      f"val acc {100 * r.val_acc:.2f}%  lr {r.lr:.2e}  {r.seconds:.1f}s  {r.images_per_s:,.0f} img/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fit(config, resume=None):
    from vtk_vision.training.trainer import Hooks, TrainingInterrupted, fit

    progress = _Progress()
    try:
        result = fit(config, Hooks(progress.on_start, progress.on_batch, progress.on_epoch), resume=resume)
    except TrainingInterrupted as e:
        progress.close()
        stderr.print(str(e))
        sys.exit(130)
    r = result.record
    console.print(f"test accuracy {100 * r.accuracy['test']:.2f}% (val {100 * r.accuracy['val']:.2f}%, "
                  f"train {100 * r.accuracy['train']:.2f}%), best epoch {r.best_epoch} of {r.epochs_run}, "
                  f"{r.wall_s:.1f}s -> {result.run_dir}")
    return result


def _base_config(model: str, data_dir: Path | None, download: bool, runs_dir: Path | None, values: dict):
    from vtk_vision.runs.config import TrainConfig

    return TrainConfig(model=model, data_dir=str(data_dir) if data_dir else None, download=download,
                       runs_dir=str(runs_dir) if runs_dir else None, **to_config_kwargs(values))


@cli.command()
@click.argument("model", required=False)
@click.option("--resume", type=click.Path(path_type=Path), help="Continue an interrupted run folder.")
@runs_dir_option
@with_train_options(sweep=False)
@data_dir_option
@download_option
def train(model: str | None, resume: Path | None, runs_dir: Path | None, data_dir: Path | None,
          download: bool, **options) -> None:
    """Train MODEL and write its run folder (weights, run.json, metrics, curves, TensorBoard).

    Defaults come from the model: `vtk train lenet5` trains the 32x32 LeNet-5 on
    Fashion-MNIST. Ctrl-C saves a checkpoint that `vtk train --resume RUN` continues.
    """
    from vtk_vision.runs.folder import RunFolder

    if resume is not None:
        if model or any(v is not None for v in options.values()):
            raise click.UsageError("--resume continues a run with its own options; give no MODEL or options")
        folder = RunFolder.find(resume, runs_dir)
        _fit(folder.read().config, resume=folder)
        return
    if model is None:
        raise click.UsageError("name a MODEL to train (see `vtk models`), or --resume RUN")
    _fit(_base_config(model, data_dir, download, runs_dir, options))


@cli.command()
@click.argument("model")
@runs_dir_option
@with_train_options(sweep=True)
@data_dir_option
@download_option
def sweep(model: str, runs_dir: Path | None, data_dir: Path | None, download: bool, **lists) -> None:
    """Train MODEL once per combination of comma-separated option values; best by validation accuracy.

    \b
      vtk sweep lenet5 --lr 1e-3,5e-4 --weight-decay 5e-3,1e-3 --epochs 5
    """
    from vtk_vision.present.tables import table
    from vtk_vision.training.sweep import combinations, sweep as run_sweep

    by_field = {o.field: o for o in TRAIN_OPTIONS}
    grid: dict[str, list] = {}
    for name, text in lists.items():
        if text is not None:
            try:
                grid[name] = [by_field[name].convert(v.strip()) for v in text.split(",") if v.strip()]
            except click.BadParameter as e:
                raise click.BadParameter(e.message, param_hint=by_field[name].flag.split("/")[0]) from None
    stderr.print(f"sweep: {len(combinations(grid))} run(s) over {', '.join(grid) or 'no options'}")
    result = run_sweep(_base_config(model, data_dir, download, runs_dir, {}), grid,
                       {o.field for o in TRAIN_OPTIONS if o.model_arg}, fit_one=_fit,
                       on_combination=lambda i, n, values: stderr.print(f"[{i}/{n}] {values}"))
    console.print(table("sweep results (sorted by validation accuracy)",
                        ["", *result.options, "val acc", "test acc", "best epoch", "run"],
                        [["*" if row is result.best else "", *[row.values[k] for k in result.options],
                          f"{100 * row.record.accuracy['val']:.2f}%", f"{100 * row.record.accuracy['test']:.2f}%",
                          row.record.best_epoch, row.folder.path.name] for row in result.rows]))
    best = result.best.folder.path
    console.print(f"best: {best} ({best.parent / 'latest'} now points to it)")
