"""Faster CPU kernels for small conv nets, swapped in only while vtk's own loops run.

Why: on the 2-core AVX2 machines this project trains on, two ATen/oneDNN
kernels dominate a LeNet-5 step, and both have an equivalent that is faster
there for the shapes named below. Each applies only inside the bounds of
the shapes measured (`wants_fast_kernel`); `scripts/bench_fastpath.py`
prints every conv and pool shape of the zoo, PyTorch's kernel against
vtk's, and `scripts/bench_train.py` the effect on a whole LeNet-5 step.

- max pooling 2x2 on even-sized maps: `max_pool2d` takes ~3.5 ms forward
  for a (256, 6, 28, 28) batch, longer than the convolution before it.
  Three elementwise maxima over strided views take ~0.4 ms; the argmax
  indices they imply feed PyTorch's own `max_pool2d_with_indices_backward`,
  so the gradient is bit for bit the native one (for finite inputs, tied
  inputs included: the first in scan order wins, as in ATen). Forward and
  backward together: 1.30-1.43x on LeNet-5's maps (same run as below). Odd
  sizes and maps over 8M values measured slower this way, so they keep
  `max_pool2d`; VGG's ceil-mode pools are never touched.
- a convolution's weight gradient for LeNet-5's shapes: a 1-channel input
  with output maps up to 28x28, or at most 16 input channels with output
  maps up to 11x11. The same sum is a forward convolution of the input with
  the output gradient, batch as channels. Equal up to float summation
  order; the input gradient and bias stay PyTorch's. Measured 2026-11-25 on
  the 2-core AMD EPYC (forward + backward, batch 256, median of 7): LeNet-5's
  convs 1.00-1.46x, with run-to-run spreads as wide as 0.95-2.17x; VGG's
  layers (28x28 maps, or 64-256 channels at 7x7 and 8x8) 0.97-1.09x, no
  gain beyond noise, so they keep oneDNN's.

`fast_kernels(model)` patches the forward of those modules on one model
instance for the length of a `with` block and restores them after. The
model's class is untouched, so exports, TorchScript and the bench's eager
runtime see plain PyTorch, and the weights are the same tensors throughout.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["fast_kernels", "max_pool_2x2", "conv2d_fast_wgrad", "wants_fast_kernel", "kernels_apply"]


def _pairs(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _corners(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The four positions of every 2x2 window, in ATen's scan order, as strided views (odd edges dropped)."""
    h2, w2 = x.shape[-2] // 2, x.shape[-1] // 2
    v = x[..., :2 * h2, :2 * w2]
    return v[..., 0::2, 0::2], v[..., 0::2, 1::2], v[..., 1::2, 0::2], v[..., 1::2, 1::2]


class _MaxPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        a, b, c, d = _corners(x)
        ab, cd = torch.maximum(a, b), torch.maximum(c, d)
        out = torch.maximum(ab, cd)
        if ctx.needs_input_grad[0]:
            h2, w2 = out.shape[-2:]
            w = x.shape[-1]  # indices are flat positions in the whole (uncropped) H x W plane, as ATen's
            base = (torch.arange(h2, device=x.device) * 2 * w)[:, None] + torch.arange(w2, device=x.device) * 2
            ctx.save_for_backward(x, base + torch.where(cd > ab, (d > c) + w, (b > a).long()))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, indices = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(
            grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False, indices)


# The bounds of the measured shapes (scripts/bench_fastpath.py prints each shape of the zoo):
MAX_POOL_VALUES = 1 << 23        # above this the strided maxima measured slower than ATen's kernel
WGRAD_ONE_CHANNEL_MAX_SIDE = 28  # 1-channel inputs: output maps up to this side (LeNet-5's 26 and 28)
WGRAD_MAX_SIDE = 11              # several input channels: output maps up to this side ...
WGRAD_MAX_CHANNELS = 16          # ... and at most this many input channels (LeNet-5's 6 and 16; VGG's
                                 # 64-256 channels at 7x7 and 8x8 measured 0.83-1.24x: no gain, so excluded)


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """`F.max_pool2d(x, 2)` for (N, C, H, W) input, same values and same gradient."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        a, b, c, d = _corners(x)
        return torch.maximum(torch.maximum(a, b), torch.maximum(c, d))
    return _MaxPool2x2.apply(x)


class _Conv2dFastWGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        gx = gw = gb = None
        if need_x:
            gx = torch.ops.aten.convolution_backward(grad, x, weight, None, [1, 1], list(ctx.padding), [1, 1],
                                                     False, [0, 0], 1, [True, False, False])[0]
        if need_w:  # sum over batch and positions of x (*) grad: a convolution with the batch as channels
            gw = F.conv2d(x.transpose(0, 1), grad.transpose(0, 1), padding=ctx.padding).transpose(0, 1).contiguous()
        if need_b:
            gb = grad.sum((0, 2, 3))
        return gx, gw, gb, None


def conv2d_fast_wgrad(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      padding: tuple[int, int]) -> torch.Tensor:
    """`F.conv2d` (stride 1, no dilation, one group) with the convolution-shaped weight gradient."""
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return F.conv2d(x, weight, bias, padding=padding)
    return _Conv2dFastWGrad.apply(x, weight, bias, padding)


def wants_fast_kernel(m: nn.Module, x: torch.Tensor) -> bool:
    """Whether `m` takes the faster kernel for input `x`: only shapes measured faster qualify."""
    if x.dim() != 4 or _replacement(m) is None:  # stride, dilation, groups, padding: the ones it covers
        return False
    if isinstance(m, nn.MaxPool2d):
        return x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0 and x.numel() <= MAX_POOL_VALUES
    k, p = m.kernel_size, m.padding
    side = min(x.shape[-2] + 2 * p[0] - k[0], x.shape[-1] + 2 * p[1] - k[1]) + 1
    return (x.shape[1] == 1 and side <= WGRAD_ONE_CHANNEL_MAX_SIDE) or \
        (x.shape[1] <= WGRAD_MAX_CHANNELS and side <= WGRAD_MAX_SIDE)


def _pool_forward(self: nn.MaxPool2d, x: torch.Tensor) -> torch.Tensor:
    return max_pool_2x2(x) if wants_fast_kernel(self, x) else type(self).forward(self, x)


def _conv_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    if wants_fast_kernel(self, x):
        return conv2d_fast_wgrad(x, self.weight, self.bias, self.padding)
    return type(self).forward(self, x)


def _replacement(m: nn.Module):
    """The faster forward for `m`, or None where the shapes or options are not the ones it covers."""
    if type(m) is nn.MaxPool2d and _pairs(m.kernel_size) == (2, 2) and _pairs(m.stride or m.kernel_size) == (2, 2) \
            and _pairs(m.padding) == (0, 0) and _pairs(m.dilation) == (1, 1) and not m.ceil_mode \
            and not m.return_indices:
        return _pool_forward
    if type(m) is nn.Conv2d and m.stride == (1, 1) and m.dilation == (1, 1) and m.groups == 1 \
            and m.padding_mode == "zeros" and isinstance(m.padding, tuple):
        return _conv_forward
    return None


def kernels_apply(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether any layer of `model` takes one of vtk's kernels for the batch `x`: one forward pass without
    gradients, so call it on a model whose BatchNorm statistics may move (training/probe.py uses a copy)."""
    hits: list[bool] = []
    hooks = [m.register_forward_pre_hook(lambda m, args: hits.append(wants_fast_kernel(m, args[0])))
             for m in model.modules() if _replacement(m) is not None]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return any(hits)


@contextmanager
def fast_kernels(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Use the faster kernels in `model` (fp32 on CPU) inside the block; nesting is harmless."""
    patched = []
    if enabled:
        for m in model.modules():
            forward = _replacement(m)
            if forward is not None and "forward" not in m.__dict__:
                m.forward = types.MethodType(forward, m)
                patched.append(m)
    try:
        yield model
    finally:
        for m in patched:
            del m.forward
