"""Faster CPU kernels for small conv nets, swapped in only while vtk's own loops run.

Why: on the 2-core AVX2 machines this project trains on, two ATen/oneDNN
kernels dominate a LeNet-5 step, and both have an equivalent that is faster
there for the shapes named below (`scripts/bench_train.py` prints the
effect on a whole step: about 1.5x for LeNet-5):

- max pooling 2x2 on even-sized maps: `max_pool2d` takes ~3.5 ms forward
  for a (256, 6, 28, 28) batch, longer than the convolution before it.
  Three elementwise maxima over strided views take ~0.4 ms; the argmax
  indices they imply feed PyTorch's own `max_pool2d_with_indices_backward`,
  so the gradient is bit for bit the native one (for finite inputs, tied
  inputs included: the first in scan order wins, as in ATen). Odd sizes and
  maps over 8M values measured slower this way, so they keep `max_pool2d`.
- a convolution's weight gradient where the input has one channel or the
  output is at most 10x10: oneDNN takes ~5.5 ms for LeNet-5's 1-channel
  5x5 input layer. The same sum is a forward convolution of the input with
  the output gradient, batch as channels, ~2.3 ms. Equal up to float
  summation order; the input gradient and bias stay PyTorch's. Larger maps
  with several channels (VGG's 28x28 and 32x32 layers) measured 0.4-0.7x, so
  they keep oneDNN's.

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

__all__ = ["fast_kernels", "max_pool_2x2", "conv2d_fast_wgrad"]


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


MAX_POOL_VALUES = 1 << 23   # above this the strided maxima measured slower than ATen's kernel
WGRAD_MAX_SIDE = 10         # output maps up to this side take the convolution-shaped weight gradient


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


def _pool_forward(self: nn.MaxPool2d, x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 4 and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0 and x.numel() <= MAX_POOL_VALUES:
        return max_pool_2x2(x)
    return type(self).forward(self, x)


def _conv_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    k, p = self.kernel_size, self.padding
    side = min(x.shape[-2] + 2 * p[0] - k[0], x.shape[-1] + 2 * p[1] - k[1]) + 1
    if x.dim() == 4 and (x.shape[1] == 1 or side <= WGRAD_MAX_SIDE):
        return conv2d_fast_wgrad(x, self.weight, self.bias, p)
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
