"""`vtk train` and `vtk sweep`: every training option declared once (train_options.py), typed for
`train` and as comma lists for `sweep`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from vtk_vision.cli.app import cli, console, stderr, warn
from vtk_vision.cli.options import data_dir_option, download_option, runs_dir_option, trust_code_option
from vtk_vision.cli.train_options import TRAIN_OPTIONS, to_config_kwargs


def with_train_options(sweep: bool):
    """Attach every TRAIN_OPTIONS entry: typed for `train`, as comma lists for `sweep`."""
    def wrap(fn):
        for opt in reversed(TRAIN_OPTIONS):
            if sweep and opt.sweepable:
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
        self.bar, self.epochs, self.tty, self.header_shown = None, None, sys.stderr.isatty(), False

    def on_start(self, info: dict) -> None:
        cfg = info["config"]
        self.epochs = cfg.epochs
        stderr.print(f"run {info['run_dir']}: {cfg.model} on {cfg.dataset}, {info['device']}, train "
                     f"{info['train']:,} / val {info['val']:,} / test {info['test']:,}, {cfg.epochs} "
                     f"epoch{'s' * (cfg.epochs != 1)} from {info['start_epoch']}")
        stderr.print(info["setting"])  # precision, threads, kernels and what measured them

    def on_note(self, line: str) -> None:
        self.close()
        stderr.print(line)

    def on_batch(self, i: int, n: int) -> None:
        if not self.tty:
            return
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=n, leave=False, unit="batch", file=sys.stderr)
        self.bar.update(1)

    # One header, then one aligned line per epoch: 68 characters for up to 999 epochs and 9,999,999 images/s,
    # where the labelled line of old (96) wrapped in an 80-column terminal.
    HEADER = f"{'epoch':>7}  {'train loss':>10}  {'val loss':>8}  {'val acc':>7}  {'lr':>8}  {'time':>7}  {'img/s':>9}"

    def on_epoch(self, r) -> None:
        self.close()
        if not self.header_shown:
            console.print(self.HEADER)
            self.header_shown = True
        console.print(f"{f'{r.epoch}/{self.epochs}':>7}  {r.train_loss:>10.4f}  {r.val_loss:>8.4f}  "
                      f"{f'{100 * r.val_acc:.2f}%':>7}  {r.lr:>8.2e}  {f'{r.seconds:.1f}s':>7}  "
                      f"{r.images_per_s:>9,.0f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fit(config, resume=None, trust_code=False, retune=False):
    from vtk_vision.training.trainer import Hooks, TrainingInterrupted, fit

    progress = _Progress()
    try:
        result = fit(config, Hooks(progress.on_start, progress.on_batch, progress.on_epoch, progress.on_note),
                     resume=resume, trust_code=trust_code, retune=retune)
    except TrainingInterrupted as e:
        progress.close()
        if os.environ.get("RANK", "0") == "0":  # one line for the run, not one per data-parallel worker
            stderr.print(str(e))
        sys.exit(e.exit_code)
    except BaseException:
        progress.close()
        raise
    if os.environ.get("RANK", "0") != "0":  # a data-parallel worker: rank 0 reports for the run
        return result
    r = result.record
    console.print(f"test accuracy {100 * r.accuracy['test']:.2f}% (val {100 * r.accuracy['val']:.2f}%, "
                  f"train {100 * r.accuracy['train']:.2f}%), best epoch {r.best_epoch} of {r.epochs_run}, "
                  f"{r.wall_s:.1f}s -> {result.run_dir}")
    warn(r.warnings)
    return result


def _base_config(model: str, data_dir: Path | None, download: bool, runs_dir: Path | None, values: dict):
    from vtk_vision.runs.config import TrainConfig

    return TrainConfig(model=model, data_dir=str(data_dir) if data_dir else None, download=download,
                       runs_dir=str(runs_dir) if runs_dir else None, **to_config_kwargs(values))


_LAUNCH_OPTIONS = ("--nproc", "--nnodes", "--rdzv-endpoint", "--max-restarts")


def _launcher_value(parser: str):
    """A click callback checking --nnodes / --rdzv-endpoint with training/distributed.py's parser: a usage
    error (exit 2) here, not torchrun's traceback later."""
    def check(ctx, param, value: str | None) -> str | None:
        if value is None:
            return None
        from vtk_vision.training import distributed

        try:
            return getattr(distributed, parser)(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return check


def _worker_args(argv: list[str]) -> list[str]:
    """This command's arguments without the launcher's own, for each worker torchrun starts."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a.split("=", 1)[0] in _LAUNCH_OPTIONS:
            skip = "=" not in a
        else:
            out.append(a)
    return out


@cli.command()
@click.argument("model", required=False)
@click.option("--resume", type=click.Path(path_type=Path), help="Continue an interrupted run, or one whose "
              "training process died, from its last epoch checkpoint.")
@click.option("--nproc", type=click.IntRange(1, 1024), default=None,
              help="Data-parallel training in N local processes through torch.distributed.run (gloo on CPU, "
              "nccl on CUDA); --batch-size stays the global batch.")
@click.option("--nnodes", default=None, metavar="N|MIN:MAX", callback=_launcher_value("parse_nnodes"),
              help="With --nproc: machines taking part (each runs the same command); needs --rdzv-endpoint.")
@click.option("--rdzv-endpoint", default=None, metavar="HOST:PORT", callback=_launcher_value("parse_endpoint"),
              help="With --nnodes: where the machines meet (torchrun's c10d rendezvous).")
@click.option("--max-restarts", type=click.IntRange(0, 100), default=0, show_default=True,
              help="With --nproc: torchrun restarts the workers this often after one fails; each restart "
              "resumes the run from its last checkpoint.")
@click.option("--retune", is_flag=True, help="Measure precision, kernels and threads again instead of using the "
              "answer cached for this machine, model and batch.")
@trust_code_option
@runs_dir_option
@with_train_options(sweep=False)
@data_dir_option
@download_option
def train(model: str | None, resume: Path | None, nproc: int | None, nnodes: str | None, rdzv_endpoint: str | None,
          max_restarts: int, retune: bool, trust_code: bool, runs_dir: Path | None, data_dir: Path | None,
          download: bool, **options) -> None:
    """Train MODEL and write its run folder (weights, run.json, metrics, curves, TensorBoard).

    MODEL is a zoo name (`vtk models`), FILE.py:NAME or package.module:NAME (an nn.Module
    class or a function returning one), or torchvision:NAME. Defaults come from the model:
    `vtk train lenet5` trains the 32x32 LeNet-5 on Fashion-MNIST. A checkpoint is written at every epoch end: after Ctrl-C, SIGTERM,
    kill -9 or a power cut, `vtk train --resume RUN` continues from the last one.
    """
    from vtk_vision.runs.folder import RunFolder

    if nproc is None and (nnodes or rdzv_endpoint or max_restarts):
        raise click.UsageError("--nnodes, --rdzv-endpoint and --max-restarts go with --nproc")
    if nproc is not None:
        if (nnodes is None) != (rdzv_endpoint is None):
            raise click.UsageError("--nnodes and --rdzv-endpoint go together (one machine needs neither)")
        if "train" not in sys.argv:
            raise click.UsageError("--nproc starts `vtk train` again in each worker: run it from the vtk command")
        from vtk_vision.training.distributed import launch

        from vtk_vision.core.signals import exit_code_of

        args = _worker_args(sys.argv[sys.argv.index("train") + 1:])
        try:
            sys.exit(launch(args, nproc, nnodes or "1", rdzv_endpoint, max_restarts))
        except KeyboardInterrupt as e:  # the workers said what they saved; the launcher adds nothing
            sys.exit(exit_code_of(e))
    if resume is not None:
        if model or retune or any(v is not None for v in options.values()):
            raise click.UsageError("--resume continues a run with its own options; give no MODEL or options")
        folder = RunFolder.find(resume, runs_dir)
        _fit(folder.read().config, resume=folder, trust_code=trust_code)
        return
    if model is None:
        raise click.UsageError("name a MODEL to train (see `vtk models`), or --resume RUN")
    _fit(_base_config(model, data_dir, download, runs_dir, options), retune=retune)


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
    fixed = {k: lists.pop(k) for k in list(lists) if not by_field[k].sweepable}  # one value for every run
    grid: dict[str, list] = {}
    for name, text in lists.items():
        if text is not None:
            try:
                grid[name] = [by_field[name].convert(v.strip()) for v in text.split(",") if v.strip()]
            except click.BadParameter as e:
                raise click.BadParameter(e.message, param_hint=by_field[name].flag.split("/")[0]) from None
    stderr.print(f"sweep: {len(combinations(grid))} run(s) over {', '.join(grid) or 'no options'}")
    result = run_sweep(_base_config(model, data_dir, download, runs_dir, fixed), grid,
                       {o.field for o in TRAIN_OPTIONS if o.model_arg}, fit_one=_fit,
                       on_combination=lambda i, n, values: stderr.print(f"[{i}/{n}] {values}"))
    console.print(table("sweep results (sorted by validation accuracy)",
                        ["", *result.options, "val acc", "test acc", "best epoch", "run"],
                        [["*" if row is result.best else "", *[row.values[k] for k in result.options],
                          f"{100 * row.record.accuracy['val']:.2f}%", f"{100 * row.record.accuracy['test']:.2f}%",
                          row.record.best_epoch, row.folder.path.name] if row.finished else
                         ["", *[row.values[k] for k in result.options], "-", "-", "-", f"failed: {row.error}"]
                         for row in result.rows]))
    best = result.best.folder.path.resolve()  # the real folder, whatever --runs-dir said
    failed = sum(not row.finished for row in result.rows)
    console.print(f"best: {best} ({best.parent / 'latest'} now points to it)"
                  + (f"; {failed} of {len(result.rows)} combinations failed, their reasons are in the table"
                     if failed else ""))
