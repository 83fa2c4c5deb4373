"""Looking at a trained model: `vtk eval` (accuracy, confusion, wrong answers) and `vtk predict`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from toolkit.data import load_dataset
from toolkit.errors import DataError
from toolkit.evaluate import evaluate, logits_of
from toolkit.plots import confusion, image_grid
from toolkit.rundir import Run

__all__ = ["eval_run", "predict"]


def _short(name: str) -> str:
    return name.split(" - ")[0] if " - " in name else name  # MNIST's "7 - seven" -> "7"


def eval_run(run: Run, out_dir: Path, data_dir: str | None = None, gallery: int = 36) -> dict:
    """Test accuracy, per-class accuracy; confusion.png and misclassified.png in `out_dir`."""
    ds = load_dataset(run.meta["data"]["name"], data_dir)
    result = evaluate(run.model, run.preprocess, ds.test, len(ds.classes))
    confusion(result.confusion, [_short(c) for c in ds.classes], out_dir / "confusion.png")
    wrong = torch.nonzero(result.predictions != ds.test.labels).flatten()[:gallery]
    if len(wrong):
        image_grid(ds.test.images[wrong],
                   [f"true {_short(ds.classes[ds.test.labels[i]])}\npred {_short(ds.classes[result.predictions[i]])}"
                    f" ({100 * result.confidence[i]:.0f}%)" for i in wrong.tolist()],
                   out_dir / "misclassified.png", colors=["crimson"] * len(wrong),
                   suptitle=f"{len(wrong)} of {int((result.predictions != ds.test.labels).sum())} misclassified")
    return {"run": str(run.path), "dataset": ds.name, "test_images": len(ds.test),
            **result.to_dict(list(ds.classes)),
            "files": [str(out_dir / "confusion.png")] + ([str(out_dir / "misclassified.png")] if len(wrong) else [])}


def _load_image(path: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """An image file as the model's data looks: grey or RGB, resized to the dataset's size, uint8."""
    c, h, w = shape
    try:
        img = Image.open(path)
        img = img.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"{path} is not a readable image ({e}); give PNG or JPEG files") from None
    a = torch.from_numpy(np.asarray(img).copy())
    return a[None] if c == 1 else a.permute(2, 0, 1)


def predict(run: Run, out: Path, images: list[Path] | None = None, n: int = 5, seed: int = 0,
            data_dir: str | None = None) -> list[dict]:
    """Predicted class and confidence for image files, or for n random test images; drawn to `out`."""
    classes = run.classes
    shape = tuple(run.meta["data"]["image_shape"])
    if images:
        x = torch.stack([_load_image(p, shape) for p in images])
        truth = [None] * len(x)
        names = [p.name for p in images]
    else:
        ds = load_dataset(run.meta["data"]["name"], data_dir)
        idx = torch.randperm(len(ds.test), generator=torch.Generator().manual_seed(seed))[:n]
        x, truth = ds.test.images[idx], ds.test.labels[idx].tolist()
        names = [f"test #{i}" for i in idx.tolist()]
    probs = logits_of(run.model, run.preprocess, x).softmax(1)
    conf, pred = probs.max(1)
    rows = [{"image": name, "predicted": classes[p], "confidence": c, "true": None if t is None else classes[t]}
            for name, p, c, t in zip(names, pred.tolist(), conf.tolist(), truth)]
    image_grid(x, [f"{_short(r['predicted'])} ({100 * r['confidence']:.0f}%)"
                   + ("" if r["true"] is None else f"\ntrue {_short(r['true'])}") for r in rows], out,
               colors=["black" if r["true"] in (None, r["predicted"]) else "crimson" for r in rows],
               suptitle=f"{run.meta['model']['name']} predictions")
    return rows
