"""PNG figures: sample grids, prediction galleries, training curves, confusion matrices.

matplotlib with the Agg backend (no display needed); every figure is written
atomically, so a crash never leaves a half-drawn PNG in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator
from vtk_vision.core.atomic import save_with
from vtk_vision.core.text import printable

__all__ = ["confusion", "curves", "image_grid", "plt", "save_figure", "short_label"]


def _label(text: str) -> str:
    """Figure text from outside: control characters escaped, and `$` kept literal (matplotlib would parse
    `$...$` as mathtext and fail on a class named `$\\foo$`)."""
    return printable(text, keep_newlines=True).replace("$", r"\$")


def short_label(name: str) -> str:
    """A class name short enough for a figure: MNIST's \"7 - seven\" -> \"7\"."""
    return name.split(" - ")[0] if " - " in name else name


def save_figure(fig, path: str | Path) -> Path:
    """Write `fig` as PNG atomically and close it."""
    save_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return Path(path)


def image_grid(images: torch.Tensor, titles: Sequence[str], path: str | Path, *,
               colors: Sequence[str] | None = None, suptitle: str | None = None) -> Path:
    """Draw uint8 images (N, C, H, W) in a near-square grid, grey shown as grey."""
    n = len(images)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].cpu()
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(img.permute(1, 2, 0).numpy())
        ax.set_title(_label(titles[i]), fontsize=8, color=colors[i] if colors else "black")
    if suptitle:
        fig.suptitle(_label(suptitle))
    return save_figure(fig, path)


def curves(history: list[dict], path: str | Path, best_epoch: int | None = None) -> Path:
    """Train/val loss and accuracy per epoch, the restored (best) epoch marked."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    marker = "o" if len(epochs) < 30 else None  # one epoch is one point: a line alone would not show it
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train", marker=marker)
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="val", marker=marker)
    ax_acc.plot(epochs, [h["train_acc"] for h in history], label="train", marker=marker)
    ax_acc.plot(epochs, [h["val_acc"] for h in history], label="val", marker=marker)
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        if len(epochs) <= 15:  # epochs are whole: one tick each, never 0.96 ... 1.04 around a single epoch
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def confusion(matrix: torch.Tensor, classes: Sequence[str], path: str | Path) -> Path:
    """Confusion matrix (rows: true class, columns: predicted), counts written in the cells."""
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1 + 0.6 * k, 1 + 0.55 * k))
    ax.imshow(matrix.numpy(), cmap="Blues")
    classes = [_label(c) for c in classes]
    ax.set_xticks(range(k), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = matrix.max().item() or 1
    for i in range(k):
        for j in range(k):
            v = matrix[i, j].item()
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > peak / 2 else "black")
    return save_figure(fig, path)
