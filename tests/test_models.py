"""The model zoo, parametrised over the registry."""

import pytest
import torch

from vtk_vision.models import create_model, list_models, min_input_size
from vtk_vision.core.errors import InputSizeError, UnknownNameError, VtkError


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name)
    c, h, w = model.vtk_info.input_shape
    x = torch.randn(4, c, h, w)
    logits = model(x)
    assert logits.shape == (4, model.vtk_info.num_classes)
    assert torch.isfinite(logits).all()
    logits.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", list_models())
def test_min_input_size_is_tight(name):
    """The smallest accepted size runs; one below it is refused before any forward pass."""
    s = min_input_size(name)
    model = create_model(name, input_size=s).eval()
    c = model.vtk_info.input_shape[0]
    assert model(torch.zeros(2, c, s, s)).shape == (2, 10)
    if s > 1:
        with pytest.raises(InputSizeError, match=f"smallest size it accepts is {s}x{s}"):
            create_model(name, input_size=s - 1)


@pytest.mark.parametrize("name,size,expected", [
    ("mlp", 28, 106_975),
    ("linear", 28, 7_850),
    ("lenet5", 32, 61_990),
    ("lenet5", 28, 29_638),
    ("dnn", 28, 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10),
])
def test_pinned_parameter_counts(name, size, expected):
    assert n_params(create_model(name, input_size=size)) == expected


def test_lenet5_textbook_count_without_bn():
    assert n_params(create_model("lenet5", bn=False)) == 61_706


def test_lenet5_variants_follow_input_size():
    big, small = create_model("lenet5"), create_model("lenet5", input_size=28)
    assert big.features[0].kernel_size == (5, 5) and small.features[0].kernel_size == (3, 3)
    assert big.vtk_info.input_shape == (1, 32, 32)


def test_lenet5_too_small_names_the_smallest_size():
    with pytest.raises(InputSizeError, match="smallest size it accepts is 22x22"):
        create_model("lenet5", input_size=16)


@pytest.mark.parametrize("depth,widths", [(1, [784, 10]), (3, [784, 512, 256, 10]),
                                          (5, [784, 512, 256, 128, 64, 10])])
def test_deep_mlp_depth(depth, widths):
    model = create_model("deep_mlp", depth=depth)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [linears[0].in_features] + [m.out_features for m in linears] == widths
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == depth - 1


def test_dnn_bn_adds_batchnorm():
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in create_model("dnn", bn=True).modules()) == 2
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in create_model("dnn").modules())


@pytest.mark.parametrize("activation,cls", [("tanh", torch.nn.Tanh), ("leaky_relu", torch.nn.LeakyReLU)])
def test_lenet5_activation(activation, cls):
    assert any(isinstance(m, cls) for m in create_model("lenet5", activation=activation).modules())


def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownNameError, match="valid models: deep_mlp, dnn, lenet5"):
        create_model("resnet50")


def test_unknown_option_is_refused():
    with pytest.raises(VtkError, match="mlp has no option depth"):
        create_model("mlp", depth=3)


def test_vgg3_pools_with_ceil_mode():
    model = create_model("vgg3").eval()
    upto_flatten = next(i for i, m in enumerate(model) if isinstance(m, torch.nn.Flatten)) + 1
    assert model[:upto_flatten](torch.zeros(2, 3, 28, 28)).shape == (2, 128 * 4 * 4)  # 28 -> 14 -> 7 -> 4
