"""`torchvision:NAME`: any classification model torchvision lists, with random weights.

Nothing is downloaded (`weights=None`): vtk trains on the user's data. The
class count comes from the dataset; the first convolution is rebuilt for the
dataset's channels (a grey MNIST image into resnet18), the way timm adapts
`in_chans`, because torchvision models all assume three.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from vtk_vision.core.errors import UnknownNameError
from vtk_vision.core.install import require_torchvision

__all__ = ["names", "factory", "DEFAULT_SHAPE", "DEFAULT_CLASSES"]

DEFAULT_SHAPE, DEFAULT_CLASSES = (3, 224, 224), 1000  # ImageNet's, which torchvision's own figures are for


def names() -> list[str]:
    """The classification models, as `torchvision.models.list_models(module=torchvision.models)` lists them."""
    require_torchvision("a torchvision:NAME model")
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def _size_config(name: str, input_size: int) -> dict:
    """The few models whose architecture depends on the input side take it as an argument."""
    if name.startswith("vit_"):
        return {"image_size": input_size}
    if name == "maxvit_t":
        return {"input_size": (input_size, input_size)}
    if name in ("googlenet", "inception_v3"):  # their auxiliary heads return tuples while training
        return {"aux_logits": False, "init_weights": True}
    return {}


def _adapt_first_conv(model: nn.Module, in_channels: int) -> None:
    name, conv = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), (None, None))
    if conv is None or conv.in_channels == in_channels:
        return
    model.set_submodule(name, nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                        conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                                        conv.padding_mode))


def factory(name: str) -> Callable[..., nn.Module]:
    """A builder taking (num_classes, in_channels, input_size), like a user's model class."""
    if name not in names():
        raise UnknownNameError("torchvision model", name, names())

    def build(num_classes: int = DEFAULT_CLASSES, in_channels: int = DEFAULT_SHAPE[0],
              input_size: int = DEFAULT_SHAPE[1]) -> nn.Module:
        import torchvision

        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes,
                                             **_size_config(name, input_size))
        _adapt_first_conv(model, in_channels)
        return model

    build.__qualname__ = build.__name__ = f"torchvision:{name}"
    return build
