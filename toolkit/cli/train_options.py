"""The training options, declared once: `vtk train` takes each as a value, `vtk sweep` as a list.

Each entry names the TrainConfig field (or model argument) it sets, so the CLI
needs no per-option code and a new option is one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from vtk_vision.runs.config import AMP_MODES, LOSSES, OPTIMIZERS, SCHEDULES

__all__ = ["TrainOption", "TRAIN_OPTIONS", "parse_class_weights", "to_config_kwargs"]


def parse_class_weights(text: str) -> dict[int, float]:
    """'2=1.5,5=1.5' -> {2: 1.5, 5: 1.5}."""
    out = {}
    for part in filter(None, text.split(",")):
        try:
            k, v = part.split("=")
            out[int(k)] = float(v)
        except ValueError:
            raise click.BadParameter(f"{part!r} is not CLASS=WEIGHT (e.g. 2=1.5)") from None
    return out


class _ClassWeights(click.ParamType):
    name = "CLASS=W,..."

    def convert(self, value, param, ctx):
        return value if isinstance(value, dict) else parse_class_weights(value)


@dataclass(frozen=True)
class TrainOption:
    flag: str                 # "--weight-decay"; "--bn/--no-bn" for booleans
    field: str                # TrainConfig field, or model argument when `model_arg`
    type: Any
    help: str
    model_arg: bool = False
    sweepable: bool = True

    @property
    def is_bool(self) -> bool:
        return "/" in self.flag

    def convert(self, text: str) -> Any:
        """One value of a sweep list, checked with the same type as `vtk train`."""
        if self.is_bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise click.BadParameter(f"{text!r} is not true or false", param_hint=self.flag.split("/")[0])
            return text.lower() in ("true", "1", "yes", "on")
        kind = click.types.convert_type(self.type)
        return kind.convert(text, None, None)


_R = click.FloatRange
TRAIN_OPTIONS: list[TrainOption] = [
    TrainOption("--dataset", "dataset", str, "Dataset (default: the model's own; see `vtk datasets`)."),
    TrainOption("--input-size", "input_size", click.IntRange(1), "Model input side (default: the model's own)."),
    TrainOption("--epochs", "epochs", click.IntRange(1), "Epochs (default: the model's recipe)."),
    TrainOption("--batch-size", "batch_size", click.IntRange(1), "Batch size."),
    TrainOption("--lr", "lr", _R(0, min_open=True), "Learning rate (peak rate for one-cycle)."),
    TrainOption("--optimizer", "optimizer", click.Choice(OPTIMIZERS), "Optimizer."),
    TrainOption("--momentum", "momentum", _R(0, 1), "SGD momentum (Nesterov when > 0)."),
    TrainOption("--weight-decay", "weight_decay", _R(0), "Weight decay."),
    TrainOption("--schedule", "schedule", click.Choice(SCHEDULES), "Learning-rate schedule."),
    TrainOption("--step-size", "step_size", click.IntRange(1), "StepLR: epochs between decays."),
    TrainOption("--gamma", "gamma", _R(0, 1, min_open=True), "StepLR / plateau: decay factor."),
    TrainOption("--plateau-patience", "plateau_patience", click.IntRange(0), "Plateau: epochs without "
                "improvement before decaying."),
    TrainOption("--loss", "loss", click.Choice(LOSSES), "ce, or mse on one-hot targets."),
    TrainOption("--label-smoothing", "label_smoothing", _R(0, 1, max_open=True), "Label smoothing."),
    TrainOption("--class-weights", "class_weights", _ClassWeights(), "Loss weight per class, e.g. 2=1.5,5=1.5."),
    TrainOption("--val-fraction", "val_fraction", _R(0, 1, min_open=True, max_open=True),
                "Stratified validation share of the training split."),
    TrainOption("--subset", "subset", _R(0, 1, min_open=True), "Keep this share of each class (e.g. 0.5)."),
    TrainOption("--patience", "patience", click.IntRange(1), "Early stopping: epochs without improvement."),
    TrainOption("--min-delta", "min_delta", _R(0), "Early stopping: smallest change that counts."),
    TrainOption("--monitor", "monitor", click.Choice(["val_acc", "val_loss"]), "What picks the best epoch."),
    TrainOption("--augment/--no-augment", "augment", bool, "Batch augmentation on the device."),
    TrainOption("--jitter", "jitter", _R(0, 1), "Colour jitter strength for RGB data."),
    TrainOption("--flip/--no-flip", "flip", bool, "Random left-right flips when augmenting (default: the "
                "dataset's own fact: yes for photos, no for digits and clothes and for imagefolder trees)."),
    TrainOption("--seed", "seed", int, "Seed: a CPU run repeats bit for bit."),
    TrainOption("--device", "device", click.Choice(["auto", "cpu", "cuda"]), "Where to train."),
    TrainOption("--amp", "amp", click.Choice(AMP_MODES), "Mixed precision (auto: bf16 on GPU)."),
    TrainOption("--compile/--no-compile", "compile", bool, "torch.compile the model."),
    TrainOption("--activation", "activation", click.Choice(["relu", "leaky_relu", "tanh"]),
                "Activation (lenet5).", model_arg=True),
    TrainOption("--dropout", "dropout", _R(0, 1, max_open=True), "Dropout (lenet5, deep_mlp, vgg*).",
                model_arg=True),
    TrainOption("--depth", "depth", click.IntRange(1, 5), "Layers (deep_mlp).", model_arg=True),
    TrainOption("--bn/--no-bn", "bn", bool, "BatchNorm (dnn, lenet5).", model_arg=True),
]


def to_config_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """Option values (by field, None when not given) -> TrainConfig keyword arguments."""
    by_field = {o.field: o for o in TRAIN_OPTIONS}
    kwargs: dict[str, Any] = {"model_args": {}}
    for name, value in values.items():
        if value is None:
            continue
        if by_field[name].model_arg:
            kwargs["model_args"][name] = value
        else:
            kwargs[name] = value
    return kwargs
