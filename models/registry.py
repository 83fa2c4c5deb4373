"""The model registry: the registry key is the builder's name and the CLI name.

Every builder takes `input_size` (the square side of its input) plus its own
keyword arguments, and returns an `nn.Module` carrying a `ModelInfo` in
`model.vtk_info`, so downstream code (trainer, exporters, bench) reads the
input shape and class count from the model instead of asking the user twice.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from vtk_vision.core.errors import InputSizeError, UnknownNameError, VtkError
from vtk_vision.models.external import KeptCode, Source, check_spec, describe_object, dry_run, instantiate, is_external, load_callable
from vtk_vision.models.torchvision_zoo import DEFAULT_CLASSES, DEFAULT_SHAPE

log = logging.getLogger("vtk")

MAX_INPUT_SIZE = 1024  # the same bound as TrainConfig's input_size (runs/config.py)

__all__ = ["ModelInfo", "register_model", "create_model", "adopt_model", "list_models", "model_spec",
           "min_input_size", "ModelSpec"]


@dataclass(frozen=True)
class ModelInfo:
    """What a built model is: enough to rebuild it and to feed it."""

    name: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    default_dataset: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    # external models (models/external.py): where the code came from, as `Source.to_dict()`; None for the zoo
    source: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"input_shape": list(self.input_shape)}


@dataclass(frozen=True)
class ModelSpec:
    """Registry entry: builder plus the facts `vtk models` shows without building."""

    name: str
    builder: Callable[..., nn.Module]
    channels: int
    input_size: int
    default_dataset: str
    description: str
    # Spatial feasibility: returns None when `size` works, else why not. Shape
    # arithmetic only, so a bad size is refused before any forward pass.
    check_size: Callable[[int], str | None]
    # Training defaults that make `vtk train NAME` with no options a good run.
    recipe: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(*, channels: int, input_size: int, default_dataset: str,
                   check_size: Callable[[int], str | None] = lambda s: None,
                   recipe: dict[str, Any] | None = None):
    """Register a builder under its function name; duplicates are a bug."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        doc = (inspect.getdoc(fn) or "").splitlines()
        _REGISTRY[name] = ModelSpec(name, fn, channels, input_size, default_dataset,
                                    doc[0] if doc else "", check_size,
                                    recipe or {})
        return fn

    return wrap


def list_models() -> list[str]:
    """Registered model names, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def model_spec(name: str, checked: bool = True) -> ModelSpec:
    """The registry entry for `name`; an unknown name lists the valid ones. An external spec
    (`file.py:Net`, `torchvision:resnet18`) gets an entry built on the spot, without running its code."""
    if is_external(name):
        return _external_spec(name, checked)
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        if name.endswith(".py"):
            raise VtkError(f"{name} is a file: give {name}:NAME, NAME the nn.Module class or the function that "
                           f"builds the model") from None
        raise UnknownNameError("model", name, list_models()) from None


def min_input_size(name: str, limit: int = 512) -> int:
    """Smallest square side the model accepts, found by shape arithmetic."""
    spec = model_spec(name)
    return next(s for s in range(1, limit + 1) if spec.check_size(s) is None)


def _external_defaults(name: str) -> tuple[int, int, int, str]:
    """(channels, side, classes, dataset) an external model gets when neither data nor options say:
    ImageNet's for torchvision (the shape its own figures are for), Fashion-MNIST's for the user's own."""
    if name.startswith("torchvision:"):
        return DEFAULT_SHAPE[0], DEFAULT_SHAPE[1], DEFAULT_CLASSES, "cifar10"
    return 1, 28, 10, "fashion-mnist"


def _external_spec(name: str, checked: bool = True) -> ModelSpec:
    if checked:  # not when rebuilding from a run's copy: the original may be long gone
        check_spec(name)
    channels, size, _, dataset = _external_defaults(name)
    return ModelSpec(name, lambda **kw: create_model(name, **kw), channels, size, dataset,
                     f"{name} (not in the zoo)", lambda s: None)


def _create_external(name: str, input_size: int | None, source: Source | None, kept: KeptCode | None,
                     **kwargs: Any) -> nn.Module:
    """A user's or torchvision's model, built with what it takes and tried on one batch at its input shape."""
    spec = _external_spec(name, checked=kept is None)
    size = spec.input_size if input_size is None else int(input_size)
    if not 1 <= size <= MAX_INPUT_SIZE:
        raise InputSizeError(f"sizes run from 1 to {MAX_INPUT_SIZE}, not {size}")
    channels, _, default_classes, _ = _external_defaults(name)
    channels, classes = int(kwargs.pop("in_channels", channels)), int(kwargs.pop("num_classes", default_classes))
    fn, found = load_callable(name, kept, source)
    model = instantiate(fn, name, classes, channels, size, kwargs)
    dry_run(model, name, (channels, size, size), classes)
    model.vtk_info = ModelInfo(name, (channels, size, size), classes, spec.default_dataset,
                               {"input_size": size, "in_channels": channels, "num_classes": classes, **kwargs},
                               found.to_dict())
    return model


def adopt_model(model: nn.Module, shape: tuple[int, int, int], num_classes: int,
                default_dataset: str = "fashion-mnist") -> nn.Module:
    """Give an `nn.Module` object built in Python (vtk_vision.train) its ModelInfo, after one batch at `shape`.

    `model.vtk_source_text` holds the class source to keep with the run when that is what rebuilds it."""
    dry_run(model, f"object:{type(model).__qualname__}", shape, num_classes)  # also sizes lazy layers
    source, text = describe_object(model, shape, num_classes)
    model.vtk_info = ModelInfo(source.spec, shape, num_classes, default_dataset,
                               {"input_size": shape[1], "in_channels": shape[0], "num_classes": num_classes},
                               source.to_dict())
    model.vtk_source_text = text
    if source.kind == "object":
        log.warning("%s cannot be rebuilt from source (it needs constructor arguments vtk does not know, or Python "
                    "cannot find its code); export, bench, eval and predict of this run from a path need the model "
                    "object passed again: vtk_vision.export(run_path, model=...)", source.spec)
    return model


def create_model(name: str, input_size: int | None = None, *, source: Source | None = None,
                 kept: KeptCode | None = None, **kwargs: Any) -> nn.Module:
    """Build `name` for `input_size` (default: the model's own) and attach its ModelInfo.

    `name` may be an external spec (models/external.py); it takes `in_channels` and `num_classes` too, and
    `kept` with `source`: a run folder's checked copy of its code and what run.json recorded of it, to build
    from instead of the original (runs/sources.py)."""
    if is_external(name):
        return _create_external(name, input_size, source, kept, **kwargs)
    spec = model_spec(name)
    size = spec.input_size if input_size is None else int(input_size)
    why = spec.check_size(size) if 1 <= size <= MAX_INPUT_SIZE else f"sizes run from 1 to {MAX_INPUT_SIZE}"
    if why is not None:
        smallest = min_input_size(name)
        raise InputSizeError(f"{name} cannot take {size}x{size} input ({why}); the smallest size it accepts is "
                             f"{smallest}x{smallest}")
    accepted = inspect.signature(spec.builder).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        options = sorted(set(accepted) - {"input_size", "num_classes"})
        raise VtkError(
            f"{name} has no option {', '.join(unknown)}; its options are: {', '.join(options) or 'none'}")
    model = spec.builder(input_size=size, **kwargs)
    num_classes = kwargs.get("num_classes", 10)
    model.vtk_info = ModelInfo(name, (spec.channels, size, size), num_classes,
                               spec.default_dataset, {"input_size": size, **kwargs})
    return model


_NOT_MODELS = {"registry", "shapes", "external", "torchvision_zoo"}  # helpers, not model files


def _load_builtin() -> None:
    """Import every model file in this folder: importing one registers its models.

    Lazy, so that importing the registry alone stays cheap and free of import
    cycles; a folder scan, so that adding a model is one new file.
    """
    import importlib
    import pkgutil

    import vtk_vision.models as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_MODELS:
            importlib.import_module(f"{package.__name__}.{info.name}")
