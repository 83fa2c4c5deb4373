"""Reduced precision: what an int8 or fp16 artifact is calibrated on, and the gate it must pass.

An int8 export that silently lost its accuracy is the commonest complaint
about deployment tools, so a reduced-precision artifact is never trusted on
its parity with eager PyTorch (it cannot have it) but on what it loses: its
accuracy on the whole test split against fp32 eager, how many predictions
flipped, and the class that lost most. It lands only when the drop is within
`--max-accuracy-drop` points. The format table's `reduce` does the
conversion (ONNX Runtime's quantizer and fp16 converter for ONNX).
"""

from __future__ import annotations

import torch

__all__ = ["CALIBRATION_SEED", "calibration_sample", "accuracy_report"]

CALIBRATION_SEED = 0


def calibration_sample(images: torch.Tensor, labels: torch.Tensor, size: int, seed: int = CALIBRATION_SEED
                       ) -> torch.Tensor:
    """`size` training images, as even across classes as the split allows, drawn with a fixed seed: the same
    run calibrates the same way every time, and no class is missing from the activation ranges."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    shuffled = labels[order]
    classes, cls = shuffled.unique(return_inverse=True)
    rank = torch.empty_like(order)  # each image's place among its class's images, in shuffled order
    for c in range(len(classes)):
        members = (cls == c).nonzero().squeeze(1)
        rank[members] = torch.arange(len(members))
    # round robin: every class's first image, then every class's second, ...
    picked = order[torch.argsort(rank * len(classes) + cls, stable=True)[:size]]
    return images[picked]


def accuracy_report(got: torch.Tensor, ref: torch.Tensor, labels: torch.Tensor) -> dict:
    """What a reduced-precision artifact lost against fp32 eager, from the logits of both on the same images."""
    pred, ref_pred = got.argmax(1), ref.argmax(1)
    acc, ref_acc = (pred == labels).double().mean().item(), (ref_pred == labels).double().mean().item()
    worst = None
    for c in labels.unique().tolist():
        mask = labels == c
        delta = (pred[mask] == c).double().mean().item() - (ref_pred[mask] == c).double().mean().item()
        if worst is None or delta < worst["delta"]:
            worst = {"class": int(c), "delta": delta, "images": int(mask.sum())}
    return {"accuracy": acc, "eager_accuracy": ref_acc, "accuracy_delta": acc - ref_acc,
            "flipped": int((pred != ref_pred).sum()), "worst_class": worst}
