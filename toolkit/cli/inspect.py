"""`vtk eval` and `vtk predict`: look at what a trained run does."""

from __future__ import annotations

from pathlib import Path

import click
from vtk_vision.cli.app import cli, console, emit_json
from vtk_vision.cli.options import (
    data_dir_option,
    json_flag,
    run_argument,
    runs_dir_option,
    trust_code_option,
)


@cli.command("eval")
@run_argument
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the PNGs go (default: the run folder).")
@json_flag
@trust_code_option
@runs_dir_option
@data_dir_option
def eval_(run: str | None, out_dir: Path | None, as_json: bool, trust_code: bool, runs_dir: Path | None,
          data_dir: Path | None) -> None:
    """Test accuracy of RUN (default: the latest), per class; confusion matrix and wrong answers as PNGs."""
    from vtk_vision.inspection.evaluate import eval_run
    from vtk_vision.present.tables import table
    from vtk_vision.runs.folder import load_run

    r = load_run(run, runs_dir, trust_code)
    res = eval_run(r, out_dir, str(data_dir) if data_dir else None)
    if as_json:
        return emit_json(res)
    console.print(table(f"{r.path.name}: test accuracy {100 * res['accuracy']:.2f}% on {res['test_images']:,} images",
                        ["class", "accuracy"], [[c, f"{100 * a:.2f}%"] for c, a in res["per_class"].items()],
                        right={"accuracy"}))
    for f in res["files"]:
        console.print(f"wrote {f}")


@cli.command()
@click.argument("args", nargs=-1, metavar="[RUN | FILE] [IMAGE]...")
@click.option("--n", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Random test images to predict when no IMAGE is given (a RUN only).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="PNG (default: "
              "predictions-<first image>.png in RUN, or here for a FILE; numbered where the name is taken).")
@trust_code_option
@runs_dir_option
@data_dir_option
def predict(args: tuple[str, ...], n: int, seed: int, out: Path | None, trust_code: bool, runs_dir: Path | None,
            data_dir: Path | None) -> None:
    """Predict IMAGE files (or n test images) with RUN (default: the latest), or with an exported FILE
    (.onnx, .pt2, .tflite, .pte, .xml...) prepared as its metadata says; draw them to a PNG.

    \b
      vtk predict runs/lenet5-fashion-mnist-1/exports/model.onnx shoe.png bag.png
    """
    from vtk_vision.bench.foreign import is_artifact_file
    from vtk_vision.inspection.predict import MAX_IMAGES, default_output, split_run_and_images

    if len(args) > MAX_IMAGES + 1:
        raise click.UsageError(f"{len(args)} arguments; predict takes a RUN or FILE and at most {MAX_IMAGES} images")
    if args and is_artifact_file(Path(args[0])) and not Path(args[0]).is_dir():
        _, images = split_run_and_images(args[1:], runs_dir)
        if not images:
            raise click.UsageError(f"give image files after {args[0]}: an artifact holds no test images to draw from")
        from vtk_vision.inspection.predict_artifact import predict_artifact

        target = out or default_output(Path.cwd(), images, seed)
        return _show(predict_artifact(Path(args[0]), images, target, trust_code), target)
    from vtk_vision.inspection.predict import predict as predict_
    from vtk_vision.runs.folder import load_run

    run, images = split_run_and_images(args, runs_dir)
    r = load_run(run, runs_dir, trust_code)
    target = out or default_output(r.folder.path, images, seed)
    _show(predict_(r, target, images or None, n, seed, str(data_dir) if data_dir else None), target)


def _show(rows: list[dict], target: Path) -> None:
    for row in rows:
        truth = "" if row["true"] is None else f"  (true: {row['true']})"
        console.print(f"{row['image']}: {row['predicted']} {100 * row['confidence']:.1f}%{truth}")
    unlike = [row for row in rows if row["unlike_training"]]
    if unlike:  # one line, however many images: the training data is the same for all
        trained = unlike[0]["training_brightness"]
        names = ", ".join(row["image"] for row in unlike[:3]) + (" ..." if len(unlike) > 3 else "")
        console.print(f"hint: {names}: mean brightness {unlike[0]['brightness']:.2f}, but the training images' is "
                      f"{trained:.2f} ({'dark' if trained < 0.5 else 'light'} backgrounds); expect unreliable answers")
    console.print(f"wrote {target}")
