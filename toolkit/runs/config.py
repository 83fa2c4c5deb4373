"""Every option of a training run, as one frozen dataclass recorded in run.json.

`None` means "the model's recipe decides": `resolved` fills those from the
model's registry entry, so `vtk train lenet5` with no options is a good run and
every option the user gives wins over the recipe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

__all__ = ["TrainConfig", "OPTIMIZERS", "SCHEDULES", "LOSSES", "AMP_MODES"]


OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("onecycle", "step", "plateau", "none")
LOSSES = ("ce", "mse")
AMP_MODES = ("auto", "bf16", "fp16", "off")


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
    amp: str = "auto"
    compile: bool = False
    data_dir: str | None = None
    download: bool = False
    runs_dir: str | None = None

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
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        return cls(**d | {"class_weights": {int(k): v for k, v in d.get("class_weights", {}).items()}})
