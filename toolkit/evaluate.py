"""Batched inference over a whole split, and the numbers `vtk eval` reports."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from toolkit.data import Split
from toolkit.fastpath import fast_kernels
from toolkit.preprocess import Preprocess

__all__ = ["logits_of", "EvalResult", "evaluate"]


@torch.no_grad()
def logits_of(model: nn.Module, prep: Preprocess, images: torch.Tensor, batch_size: int = 1000,
              memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """fp32 logits for uint8 images, in eval mode, batch by batch on the images' device."""
    was_training = model.training
    model.eval()
    try:
        with fast_kernels(model, enabled=images.device.type == "cpu"):
            return torch.cat([model(prep(images[i:i + batch_size]).contiguous(memory_format=memory_format)).float()
                              for i in range(0, len(images), batch_size)])
    finally:
        model.train(was_training)


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
