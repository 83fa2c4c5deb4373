"""Parity of an artifact with eager PyTorch, measured in the artifact's own runtime.

Tolerance follows `torch.allclose`: every logit within atol + rtol * |eager|.
Top-1 must agree on every image. With a dynamic batch the artifact is also
run at batch 1 and at an odd batch of 7, where shape bugs hide.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vtk_vision.exporters.base import ExportOptions
from vtk_vision.runs.schema import ExportResult

__all__ = ["compare", "validate"]

LogitsFn = Callable[[torch.Tensor], torch.Tensor]  # a Runner's `logits`, or eager PyTorch


def _batched(fn: LogitsFn, x: torch.Tensor, batch: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([torch.as_tensor(fn(x[i:i + batch])).float() for i in range(0, len(x), batch)])


def compare(got: torch.Tensor, ref: torch.Tensor, opts: ExportOptions) -> dict:
    """Max abs / rel difference, allclose verdict and top-1 agreement of two logit tensors."""
    diff = (got - ref).abs()
    big = ref.abs() > opts.atol  # relative error is meaningless for logits near zero
    return {"max_abs_diff": diff.max().item(),
            "max_rel_diff": (diff[big] / ref.abs()[big]).max().item() if big.any() else 0.0,
            "within_tol": bool((diff <= opts.atol + opts.rtol * ref.abs()).all()) and bool(torch.isfinite(got).all()),
            "agreement": (got.argmax(1) == ref.argmax(1)).double().mean().item()}


def validate(result: ExportResult, runner: LogitsFn, eager: LogitsFn, inputs: torch.Tensor,
             labels: torch.Tensor | None, opts: ExportOptions) -> ExportResult:
    """Fill `result` with the comparison over all `inputs`, plus batch 1 and 7 when dynamic."""
    batch = 256 if opts.dynamic_batch else opts.batch_size
    usable = len(inputs) if opts.dynamic_batch else len(inputs) // batch * batch  # a static batch cannot take a remainder
    x = inputs[:usable]
    ref, got = _batched(eager, x, batch), _batched(runner, x, batch)
    whole = compare(got, ref, opts)
    result.max_abs_diff, result.max_rel_diff, result.agreement = (
        whole["max_abs_diff"], whole["max_rel_diff"], whole["agreement"])
    result.checks = [{"batch": batch, "images": usable} | whole]
    if opts.dynamic_batch:
        for n, part in ((1, x[:1]), (7, x[-7:])):
            result.checks.append({"batch": n, "images": n} | compare(_batched(runner, part, n), eager(part).float(), opts))
    if labels is not None:
        y = labels[:usable]
        result.accuracy = (got.argmax(1) == y).double().mean().item()
        result.eager_accuracy = (ref.argmax(1) == y).double().mean().item()
    result.passed = all(c["within_tol"] and c["agreement"] == 1.0 for c in result.checks)
    return result
