"""`vtk eval`: test accuracy, per-class accuracy, the confusion matrix and a gallery of wrong answers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vtk_vision.core.preprocess import Preprocess
from vtk_vision.data import Split
from vtk_vision.core.inference import logits_of
from vtk_vision.present.plots import confusion, image_grid, short_label
from vtk_vision.runs.folder import Run

__all__ = ["EvalResult", "evaluate", "eval_run"]


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    per_class: list[float]
    confusion: torch.Tensor  # (K, K): rows true, columns predicted
    predictions: torch.Tensor
    confidence: torch.Tensor

    def to_dict(self, classes: list[str]) -> dict:
        return {"accuracy": self.accuracy, "per_class": dict(zip(classes, self.per_class)),
                "confusion": self.confusion.tolist()}


def evaluate(model: nn.Module, prep: Preprocess, split: Split, num_classes: int) -> EvalResult:
    """Accuracy, per-class accuracy and confusion matrix of `model` on `split`."""
    probs = logits_of(model, prep, split.images).softmax(1).cpu()
    conf, pred = probs.max(1)
    y = split.labels.cpu()
    cm = torch.bincount(y * num_classes + pred, minlength=num_classes ** 2).view(num_classes, num_classes)
    per_class = (cm.diag().double() / cm.sum(1).clamp(min=1)).tolist()
    return EvalResult((pred == y).double().mean().item(), per_class, cm, pred, conf)


def eval_run(run: Run, out_dir: Path | None = None, data_dir: str | None = None, gallery: int = 36) -> dict:
    """Test accuracy, per-class accuracy; confusion.png and misclassified.png in `out_dir` (default: the run's)."""
    out = (lambda name: Path(out_dir) / name) if out_dir else run.folder.output
    ds = run.dataset(data_dir)
    result = evaluate(run.model, run.preprocess, ds.test, len(ds.classes))
    confusion(result.confusion, [short_label(c) for c in ds.classes], out("confusion.png"))
    wrong = torch.nonzero(result.predictions != ds.test.labels).flatten()[:gallery]
    if len(wrong):
        image_grid(ds.test.images[wrong],
                   [f"true {short_label(ds.classes[ds.test.labels[i]])}\npred {short_label(ds.classes[result.predictions[i]])}"
                    f" ({100 * result.confidence[i]:.0f}%)" for i in wrong.tolist()],
                   out("misclassified.png"), colors=["crimson"] * len(wrong),
                   suptitle=f"{len(wrong)} of {int((result.predictions != ds.test.labels).sum())} misclassified")
    return {"run": str(run.path), "dataset": ds.name, "test_images": len(ds.test),
            **result.to_dict(list(ds.classes)),
            "files": [str(out("confusion.png"))] + ([str(out("misclassified.png"))] if len(wrong) else [])}
