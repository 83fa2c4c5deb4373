"""`vtk predict`: a trained model's answers for image files or random test images, drawn to a PNG."""

from __future__ import annotations

from pathlib import Path

import torch
from vtk_vision.core.errors import DataError, VtkError
from vtk_vision.core.inference import logits_of
from vtk_vision.core.text import printable
from vtk_vision.data.images import decode
from vtk_vision.present.plots import image_grid, short_label
from vtk_vision.runs.folder import Run, RunFolder

__all__ = ["BRIGHTNESS_GAP", "MAX_IMAGES", "answer", "default_output", "load_images", "predict",
           "split_run_and_images", "training_brightness"]

MAX_IMAGES = 100  # one picture holds them all
# Mean brightness (0-1) this far from the training data's is worth a hint: a white-background photo
# (~0.8) given to a Fashion-MNIST model (0.29, dark backgrounds) is answered confidently and wrongly.
BRIGHTNESS_GAP = 0.25


def training_brightness(run: Run) -> float:
    """Mean brightness (0-1) of the training images, from the mean the run's preprocessing recorded."""
    mean = run.record.data.preprocess.mean
    return sum(mean) / len(mean)


def split_run_and_images(args: tuple[str, ...] | list[str], runs_dir: str | Path | None = None
                         ) -> tuple[str | None, list[Path]]:
    """`vtk predict [RUN] [IMAGE]...`: the first argument is the run when it names one, the rest images."""
    run = args[0] if args and RunFolder.is_run(args[0], runs_dir) else None
    images = [Path(a) for a in args[1 if run else 0:]]
    if len(images) > MAX_IMAGES:
        raise VtkError(f"{len(images)} images given; predict takes at most {MAX_IMAGES} at a time (they are drawn "
                       f"in one picture)")
    for p in images:
        if not p.is_file():
            raise VtkError(f"{printable(p)} is neither a run folder nor an image file")
    return run, images


def _load_image(path: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """An image file as the model's data looks: grey or RGB, resized to the dataset's size, uint8."""
    c, h, w = shape
    try:
        a = torch.from_numpy(decode(path, (w, h), grey=c == 1))
    except DataError as e:  # decode's words are for a dataset tree; here the file was handed on the command line
        raise VtkError(f"{str(e).removesuffix('; remove it from the tree or replace it')}; vtk predict takes a run "
                       f"folder or an exported artifact (.onnx, .pt2, .torchscript), then image files") from None
    return a[None] if c == 1 else a.permute(2, 0, 1)


def load_images(images: list[Path], shape: tuple[int, int, int]) -> torch.Tensor:
    """Image files as one uint8 batch (N, C, H, W) of the data's `shape`."""
    return torch.stack([_load_image(p, shape) for p in images])


def default_output(folder: Path, images: list[Path] | None, seed: int) -> Path:
    """predictions-<first image>.png (or -test-seed<N> for test images) in `folder`, numbered -2, -3, ...
    where that name is taken: a later predict never draws over an earlier one."""
    stem = f"predictions-{images[0].stem}" + (f"-and-{len(images) - 1}-more" if len(images) > 1 else "") \
        if images else f"predictions-test-seed{seed}"
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:80]
    path, n = folder / f"{stem}.png", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.png"
    return path


def answer(x: torch.Tensor, probs: torch.Tensor, names: list[str], truth: list, classes, trained: float,
           out: Path, title: str) -> list[dict]:
    """Rows of predicted class and confidence per image (brightness against the training data's), drawn to
    `out`."""
    conf, pred = probs.max(1)
    brightness = x.double().div(255).mean((1, 2, 3)).tolist()
    rows = [{"image": name, "predicted": classes[p], "confidence": c, "true": None if t is None else classes[t],
             "brightness": b, "unlike_training": abs(b - trained) > BRIGHTNESS_GAP, "training_brightness": trained}
            for name, p, c, t, b in zip(names, pred.tolist(), conf.tolist(), truth, brightness)]
    image_grid(x, [f"{short_label(r['predicted'])} ({100 * r['confidence']:.0f}%)"
                   + ("" if r["true"] is None else f"\ntrue {short_label(r['true'])}") for r in rows], out,
               colors=["black" if r["true"] in (None, r["predicted"]) else "crimson" for r in rows],
               suptitle=title)
    return rows


def predict(run: Run, out: Path, images: list[Path] | None = None, n: int = 5, seed: int = 0,
            data_dir: str | None = None) -> list[dict]:
    """Predicted class and confidence for image files, or for n random test images; drawn to `out`."""
    shape = run.record.data.image_shape
    if images:
        x = load_images(images, shape)
        truth = [None] * len(x)
        names = [p.name for p in images]
    else:
        ds = run.dataset(data_dir)
        idx = torch.randperm(len(ds.test), generator=torch.Generator().manual_seed(seed))[:n]
        x, truth = ds.test.images[idx], ds.test.labels[idx].tolist()
        names = [f"test #{i}" for i in idx.tolist()]
    probs = logits_of(run.model, run.preprocess, x).softmax(1)
    return answer(x, probs, names, truth, run.classes, training_brightness(run), out,
                  f"{run.record.model.name} predictions")
