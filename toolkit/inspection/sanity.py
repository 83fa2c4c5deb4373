"""Warnings for a model that trained, exported and benched "fine" but learnt nothing.

`torchvision:mobilenet_v3_small` on CIFAR-10 at 32x32 predicted one class for
all 10,000 test images (10.00%) and went through export and bench as if all
were well. These checks catch that, from the test predictions alone:

- **collapse**: the two most predicted classes take at least 90% of the test
  predictions (`COLLAPSE_SHARE`), while the two most common true classes make
  up at most 70% of the test labels (`LABEL_SHARE`), so that a test set that is
  itself lopsided does not set it off. Needs 5 classes or more (`MIN_CLASSES`):
  with fewer, two classes are a large part of any answer.
- **chance**: test accuracy no better than the best constant guess, p (1 / the
  number of classes, or the share of the most common true class where that is
  larger), plus three binomial standard errors of that guess on n test images:
  accuracy <= p + 3 * sqrt(p * (1 - p) / n). With 10,000 images and 10 classes
  that is 10.9%; with 500 images, 14.0%.
- **input size**: a torchvision model fed a side below a quarter of the 224
  pixels it was designed for (`SMALL_INPUT`): its stride-32 stages leave a
  feature map of a pixel or two, and it often learns nothing.

Each warning is one line that says what was seen and what to try; the run,
export and bench records keep them, and `vtk report` shows them.
"""

from __future__ import annotations

import math

import torch

__all__ = ["COLLAPSE_SHARE", "LABEL_SHARE", "MIN_CLASSES", "SMALL_INPUT", "input_size_warning",
           "prediction_warnings", "warnings_for"]

COLLAPSE_SHARE, LABEL_SHARE, MIN_CLASSES = 0.90, 0.70, 5
SMALL_INPUT = 0.25  # of the side a torchvision model was designed for
_DESIGNED_SIDE = 224  # models/torchvision_zoo.py DEFAULT_SHAPE: ImageNet's, what torchvision's models are for


def _top2_share(values: torch.Tensor, num_classes: int) -> tuple[float, list[int]]:
    counts = torch.bincount(values.flatten().long(), minlength=num_classes)
    top = counts.topk(min(2, num_classes))
    return top.values.sum().item() / max(1, len(values)), top.indices.tolist()


def prediction_warnings(predictions: torch.Tensor, labels: torch.Tensor | None, num_classes: int,
                        classes: tuple[str, ...] = ()) -> list[str]:
    """Collapse and chance warnings for `predictions` (class indices) on a test split with `labels`."""
    if labels is None or len(labels) == 0 or num_classes < 2:
        return []
    out, n = [], len(labels)
    name = lambda i: repr(classes[i]) if i < len(classes) else str(i)  # noqa: E731
    share, top = _top2_share(predictions, num_classes)
    label_share, _ = _top2_share(labels, num_classes)
    if num_classes >= MIN_CLASSES and share >= COLLAPSE_SHARE and label_share <= LABEL_SHARE:
        counts = torch.bincount(predictions.flatten().long(), minlength=num_classes)
        which = " and ".join(name(i) for i in top if counts[i] > 0)
        out.append(f"predictions collapsed: {100 * share:.1f}% of the {n:,} test images are predicted as "
                   f"{which} ({num_classes} classes); the model has not learnt to tell the classes apart")
    p = max(1 / num_classes, torch.bincount(labels.long(), minlength=num_classes).max().item() / n)
    accuracy = (predictions.long() == labels.long()).double().mean().item()
    limit = p + 3 * math.sqrt(p * (1 - p) / n)
    if accuracy <= limit:
        out.append(f"accuracy at chance: {100 * accuracy:.2f}% on {n:,} test images is no better than "
                   f"guessing one class ({100 * p:.2f}%, within 3 standard errors: {100 * limit:.2f}%)")
    return out


def input_size_warning(model_name: str, input_shape: tuple[int, ...]) -> str | None:
    """A line when a torchvision model gets an input far below the side it was designed for; None otherwise
    (vtk's own and users' models say nothing about a designed size)."""
    side = min(input_shape[1:])
    if not model_name.startswith("torchvision:") or side >= SMALL_INPUT * _DESIGNED_SIDE:
        return None
    return (f"input {side}x{side} is far below the {_DESIGNED_SIDE}x{_DESIGNED_SIDE} {model_name} was designed "
            f"for: its downsampling leaves a feature map of about {max(1, math.ceil(side / 32))}x"
            f"{max(1, math.ceil(side / 32))}; train at a larger --input-size or pick a model made for small images")


def warnings_for(predictions: torch.Tensor | None, labels: torch.Tensor | None, model, classes=()) -> list[str]:
    """Every warning for a model (`ModelInfo`) and its test predictions, input size first."""
    out = [w] if (w := input_size_warning(model.name, model.input_shape)) else []
    if predictions is not None:
        out += prediction_warnings(predictions, labels, model.num_classes, tuple(classes))
    return out
