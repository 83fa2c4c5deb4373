"""The fast CPU kernels give PyTorch's own values and gradients, and leave the model as it was."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vtk_vision.models import create_model
from vtk_vision.core.fastpath import conv2d_fast_wgrad, fast_kernels, max_pool_2x2


@pytest.mark.parametrize("shape", [(4, 3, 28, 28), (2, 5, 13, 13), (3, 2, 10, 7)])
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_matches_aten_bit_for_bit(shape, ties):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    if ties:  # ReLU zeros and coarse values: many windows hold several equal maxima
        x = (x * 2).round().relu()
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    up = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2, generator=g)
    out_a, out_b = F.max_pool2d(a, 2), max_pool_2x2(b)
    assert torch.equal(out_a, out_b)
    out_a.backward(up)
    out_b.backward(up)
    assert torch.equal(a.grad, b.grad)
    with torch.no_grad():
        assert torch.equal(max_pool_2x2(x), F.max_pool2d(x, 2))


@pytest.mark.parametrize("c_in,c_out,size,k,pad", [(1, 6, 32, 5, 0), (6, 16, 14, 5, 0), (3, 8, 12, 3, 1)])
def test_conv_weight_gradient_matches_aten(c_in, c_out, size, k, pad):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, c_in, size, size, generator=g)
    conv = nn.Conv2d(c_in, c_out, k, padding=pad)
    ref, fast = copy.deepcopy(conv), copy.deepcopy(conv)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a = ref(xa)
    out_b = conv2d_fast_wgrad(xb, fast.weight, fast.bias, fast.padding)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
    up = torch.randn(out_a.shape, generator=g)
    out_a.backward(up)
    out_b.backward(up)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["lenet5", "vgg3"])
def test_patched_model_trains_like_the_plain_one_and_is_restored(name):
    torch.manual_seed(0)
    plain = create_model(name)
    fast = copy.deepcopy(plain)
    c, h, w = plain.vtk_info.input_shape
    x, y = torch.randn(16, c, h, w), torch.randint(0, 10, (16,))
    torch.manual_seed(1)  # the same dropout masks in both
    F.cross_entropy(plain(x), y).backward()
    with fast_kernels(fast) as m:
        patched = [k for k, mod in m.named_modules() if "forward" in mod.__dict__]
        assert patched, "no module took the fast kernels"
        torch.manual_seed(1)
        F.cross_entropy(m(x), y).backward()
        with fast_kernels(m):  # nesting keeps the outer patch
            pass
        assert all("forward" in dict(m.named_modules())[k].__dict__ for k in patched)
    for (k, p), q in zip(plain.named_parameters(), fast.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5, msg=k)
    assert not any("forward" in mod.__dict__ for mod in fast.modules())
    assert torch.equal(fast.eval()(x), plain.eval()(x))


def test_modules_outside_its_cases_keep_pytorch():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.MaxPool2d(3), nn.MaxPool2d(2, ceil_mode=True),
                          nn.Conv2d(2, 2, 3, padding="same"))
    with fast_kernels(model):
        assert not any("forward" in mod.__dict__ for mod in model.modules())


@pytest.mark.parametrize("layer,shape,expected", [
    (nn.Conv2d(1, 6, 5), (1, 32, 32), True),                          # LeNet-5 @32 conv1 (measured)
    (nn.Conv2d(6, 16, 3), (6, 13, 13), True),                         # LeNet-5 @28 conv2 (measured)
    (nn.Conv2d(1, 6, 5), (1, 64, 64), False),                         # a 1-channel map never measured
    (nn.Conv2d(128, 128, 3, padding=1), (128, 7, 7), False),          # VGG: no gain, keeps oneDNN's
    (nn.Conv2d(3, 32, 3, padding=1), (3, 28, 28), False),             # VGG's first layer: measured slower
    (nn.MaxPool2d(2), (6, 28, 28), True),
    (nn.MaxPool2d(2), (6, 27, 27), False),                            # odd maps keep max_pool2d
])
def test_kernels_only_take_the_measured_shapes(layer, shape, expected):
    from vtk_vision.core.fastpath import wants_fast_kernel

    assert wants_fast_kernel(layer, torch.zeros(2, *shape)) is expected
