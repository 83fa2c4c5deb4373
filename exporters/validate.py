"""An artifact measured against eager PyTorch in its own runtime, and the verdict on it.

fp32 artifacts must match: every logit within atol + rtol * |eager| (as
`torch.allclose`) and the same top-1 on every image. Reduced-precision
artifacts cannot match, so they are judged on what they lose instead
(exporters/precision.py): test accuracy against fp32 eager within
`max_accuracy_drop` points, every logit finite. With a dynamic batch the
artifact is also run at batch 1 and at an odd batch of 7, where shape bugs
hide: an fp32 artifact against eager, a reduced one against its own output
at the full batch (the same arithmetic, only the batch differs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.precision import accuracy_report
from vtk_vision.inspection.sanity import prediction_warnings
from vtk_vision.runs.schema import ExportResult

__all__ = ["compare", "validate", "verdict"]

LogitsFn = Callable[[torch.Tensor], torch.Tensor]  # a Runner's `logits`, or eager PyTorch


def _batched(fn: LogitsFn, x: torch.Tensor, batch: int, static: bool = False) -> torch.Tensor:
    """fn over `x` in batches; a static-batch artifact's short last batch is filled up with the first images
    and only its own rows kept, so that every image is checked."""
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            part = x[i:i + batch]
            if static and len(part) < batch:
                outs.append(torch.as_tensor(fn(torch.cat([part, x[:batch - len(part)]]))).float()[:len(part)])
            else:
                outs.append(torch.as_tensor(fn(part)).float())
    return torch.cat(outs)


def compare(got: torch.Tensor, ref: torch.Tensor, opts: ExportOptions) -> dict:
    """Max abs / rel difference, allclose verdict and top-1 agreement of two logit tensors."""
    diff, finite = (got - ref).abs(), bool(torch.isfinite(got).all())
    big = ref.abs() > opts.atol  # relative error is meaningless for logits near zero
    return {"max_abs_diff": diff.max().item(),
            "max_rel_diff": (diff[big] / ref.abs()[big]).max().item() if big.any() else 0.0,
            "within_tol": bool((diff <= opts.atol + opts.rtol * ref.abs()).all()) and finite,
            "finite": finite,
            "agreement": (got.argmax(1) == ref.argmax(1)).double().mean().item()}


def validate(result: ExportResult, runner: LogitsFn, eager: LogitsFn, inputs: torch.Tensor,
             labels: torch.Tensor | None, opts: ExportOptions, classes: tuple[str, ...] = ()) -> ExportResult:
    """Fill `result` with the comparison over all `inputs`, plus batch 1 and 7 when dynamic, and its verdict."""
    exact = opts.precision == "fp32"
    batch = 256 if opts.dynamic_batch else opts.batch_size
    x, usable = inputs, len(inputs)
    # the eager reference runs 256 at a time whatever the artifact's batch: at a static batch of 1 it took
    # 10,000 eager calls, most of a LeNet-5 export's time
    ref, got = _batched(eager, x, 256), _batched(runner, x, batch, static=not opts.dynamic_batch)
    whole = compare(got, ref, opts)
    result.max_abs_diff, result.max_rel_diff, result.agreement = (
        whole["max_abs_diff"], whole["max_rel_diff"], whole["agreement"])
    result.checks = [{"batch": batch, "images": usable} | whole]
    if opts.dynamic_batch:
        for n, rows in ((1, slice(0, 1)), (7, slice(usable - 7, usable))):
            target = eager(x[rows]).float() if exact else got[rows]
            result.checks.append({"batch": n, "images": n, "against": "eager" if exact else f"itself at batch {batch}"}
                                 | compare(_batched(runner, x[rows], n), target, opts))
    if labels is not None:
        y = labels[:usable]
        result.accuracy = (got.argmax(1) == y).double().mean().item()
        result.eager_accuracy = (ref.argmax(1) == y).double().mean().item()
        result.warnings = prediction_warnings(got.argmax(1), y, got.shape[1], classes)
        if not exact:
            lost = accuracy_report(got, ref, y)
            result.accuracy_delta, result.flipped, result.worst_class = (
                lost["accuracy_delta"], lost["flipped"], lost["worst_class"])
            if result.worst_class["class"] < len(classes):
                result.worst_class["name"] = classes[result.worst_class["class"]]
    result.passed = verdict(result, opts) is None
    return result


def verdict(result: ExportResult, opts: ExportOptions) -> str | None:
    """None when the artifact may land; otherwise why not, in one line, with the numbers."""
    if opts.precision == "fp32":
        if all(c["within_tol"] and c["agreement"] == 1.0 for c in result.checks):
            return None
        worst = max(result.checks, key=lambda c: c["max_abs_diff"])
        return (f"does not match eager PyTorch: max abs diff {result.max_abs_diff:.3g}, max rel diff "
                f"{result.max_rel_diff:.3g}, top-1 agreement {100 * result.agreement:.2f}% (worst at batch "
                f"{worst['batch']}; tolerance atol {opts.atol:g}, rtol {opts.rtol:g})")
    if result.accuracy_delta is None:
        return "needs labelled test images: a reduced-precision artifact is judged on the accuracy it loses"
    images = result.checks[0]["images"]
    lost = (f"accuracy {100 * result.accuracy:.2f}% against {100 * result.eager_accuracy:.2f}% for fp32 eager "
            f"({100 * result.accuracy_delta:+.2f} pt), {result.flipped:,} of {images:,} predictions flipped, "
            f"worst class {result.worst_class.get('name', result.worst_class['class'])!r} "
            f"{100 * result.worst_class['delta']:+.2f} pt, max abs logit diff {result.max_abs_diff:.3g}")
    if not all(c["finite"] for c in result.checks):
        return f"gives non-finite logits (overflow at {opts.precision}?); {lost}"
    # in images, not float points: a drop of exactly the limit passes
    if round(-result.accuracy_delta * images) > opts.max_accuracy_drop / 100 * images + 1e-6:
        return f"loses more than --max-accuracy-drop {opts.max_accuracy_drop:g} pt: {lost}"
    bad = [c["batch"] for c in result.checks[1:] if c["agreement"] != 1.0]
    if bad:
        return f"predicts differently at batch {bad[0]} than at batch {result.checks[0]['batch']}; {lost}"
    return None
