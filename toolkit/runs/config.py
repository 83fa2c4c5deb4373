"""Every option of a training run, as one frozen dataclass recorded in run.json.

`None` means "the model's recipe decides": `resolved` fills those from the
model's registry entry, so `vtk train lenet5` with no options is a good run and
every option the user gives wins over the recipe.
"""

from __future__ import annotations

import types
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Union, get_args, get_origin, get_type_hints

from vtk_vision.core.limits import Limit  # one definition for every door (core/limits.py)

__all__ = ["TrainConfig", "Limit", "LIMITS", "CHOICES", "OPTIMIZERS", "SCHEDULES", "LOSSES", "AMP_MODES", "KERNEL_MODES",
           "MAX_INPUT_SIZE"]


OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("onecycle", "step", "plateau", "none")
LOSSES = ("ce", "mse")
AMP_MODES = ("auto", "bf16", "fp16", "off")
KERNEL_MODES = ("auto", "vtk", "torch")  # vtk: toolkit/core/fastpath.py; auto: measured (training/tuning.py)
# set by vtk from the data and options, or by create_model itself: never a model argument of the user's
RESERVED_MODEL_ARGS = frozenset({"num_classes", "in_channels", "input_size", "source", "kept"})
MAX_INPUT_SIZE = 1024  # a square side beyond this is no small vision model, and its layers would not fit in memory


LIMITS: dict[str, Limit] = {
    "input_size": Limit(1, MAX_INPUT_SIZE, integer=True),
    "epochs": Limit(1, 100_000, integer=True),
    "batch_size": Limit(1, 1 << 20, integer=True),
    "lr": Limit(0, 10, low_open=True),
    "momentum": Limit(0, 1),
    "weight_decay": Limit(0, 1),
    "step_size": Limit(1, 100_000, integer=True),
    "gamma": Limit(0, 1, low_open=True),
    "plateau_patience": Limit(0, 100_000, integer=True),
    "label_smoothing": Limit(0, 1, high_open=True),
    "val_fraction": Limit(0, 0.5, low_open=True),
    "subset": Limit(0, 1, low_open=True),
    "patience": Limit(1, 100_000, integer=True),
    "min_delta": Limit(0, 1),
    "jitter": Limit(0, 1),
    "seed": Limit(0, 2**63 - 1, integer=True),
    "threads": Limit(1, 4096, integer=True),
}
CLASS_WEIGHT = Limit(0, 1e6)
CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "loss": LOSSES, "amp": AMP_MODES,
    "monitor": ("val_acc", "val_loss"), "device": ("auto", "cpu", "cuda"),
    "kernels": KERNEL_MODES,
}


def _accepts(hint) -> tuple[type, ...]:
    """The runtime types an annotation admits: `int | None` -> (int, NoneType), `dict[str, Any]` -> (dict,)."""
    if get_origin(hint) in (Union, types.UnionType):
        return tuple(t for a in get_args(hint) for t in _accepts(a))
    if get_origin(hint) is not None:
        return (get_origin(hint),)
    return (hint,) if isinstance(hint, type) else (object,)


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run. `None` means "the model's recipe decides" (see `resolved`)."""

    model: str = "lenet5"
    dataset: str | None = None
    input_size: int | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    schedule: str | None = None
    step_size: int = 5
    gamma: float = 0.5
    plateau_patience: int = 2
    loss: str = "ce"
    label_smoothing: float | None = None
    class_weights: dict[int, float] = field(default_factory=dict)
    val_fraction: float = 1 / 6
    subset: float = 1.0
    patience: int | None = None
    min_delta: float = 0.0
    monitor: str = "val_acc"
    augment: bool | None = None
    jitter: float = 0.0
    flip: bool | None = None            # None: whatever the dataset's entry says
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"                   # auto: measured before training (training/tuning.py)
    threads: int | None = None          # None: measured, from 1 to torch's thread count
    kernels: str = "auto"               # vtk or torch kernels on CPU; auto: measured
    compile: bool = False
    data_dir: str | None = None
    download: bool = False
    runs_dir: str | None = None

    def __post_init__(self):
        """Every value in range and finite, whoever built the config: the command line, run.json, a notebook."""
        hints = get_type_hints(TrainConfig)
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and type(None) in get_args(hints[f.name]):
                continue
            if f.name in LIMITS:
                LIMITS[f.name].check(f.name, value)
            elif f.name in CHOICES and value not in CHOICES[f.name]:
                raise ValueError(f"{f.name} must be one of {', '.join(CHOICES[f.name])}, not {value!r}")
            elif not isinstance(value, _accepts(hints[f.name])) or (isinstance(value, bool) and bool not in
                                                                      _accepts(hints[f.name])):
                raise ValueError(f"{f.name} should not be {type(value).__name__} ({value!r:.40})")
        if not isinstance(self.model_args, dict):
            raise ValueError(f"model_args should be an object, not {type(self.model_args).__name__}")
        if reserved := sorted(RESERVED_MODEL_ARGS & set(self.model_args)):
            raise ValueError(f"model argument {reserved[0]} is vtk's to set (num_classes and in_channels come from "
                             f"the dataset, input_size from --input-size)")
        for c, w in self.class_weights.items():
            if isinstance(c, bool) or not isinstance(c, int) or c < 0:
                raise ValueError(f"class_weights names class {c!r}; classes are numbers from 0")
            CLASS_WEIGHT.check(f"the weight of class {c}", w)

    def resolved(self, recipe: dict[str, Any], default_dataset: str) -> "TrainConfig":
        """Fill every `None` from the model's recipe (then from the generic defaults); model arguments
        given here override the recipe's."""
        generic = {"epochs": 10, "batch_size": 128, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
                   "schedule": "onecycle", "augment": True, "label_smoothing": 0.0, "dataset": default_dataset}
        fill = {k: recipe.get(k, generic[k]) for k in generic if getattr(self, k) is None}
        return replace(self, **fill, model_args=recipe.get("model_args", {}) | self.model_args)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"class_weights": {str(k): v for k, v in self.class_weights.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """From run.json's `config`; unknown keys (from another vtk version) are ignored. Raises ValueError."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        weights = d.get("class_weights", {})
        if not isinstance(weights, dict):
            raise ValueError(f"class_weights should be an object, not {type(weights).__name__}")
        try:
            weights = {int(k): v for k, v in weights.items()}
        except ValueError:
            raise ValueError(f"class_weights keys should be class numbers, got {sorted(weights)}") from None
        return cls(**d | {"class_weights": weights})
