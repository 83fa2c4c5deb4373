"""The training options, declared once: `vtk train` takes each as a value, `vtk sweep` as a list.

Each entry names the TrainConfig field (or model argument) it sets, so the CLI
needs no per-option code and a new option is one line here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from vtk_vision.cli.options import Bounded
from vtk_vision.runs.config import CHOICES, CLASS_WEIGHT, LIMITS, RESERVED_MODEL_ARGS, Limit

__all__ = ["TrainOption", "TRAIN_OPTIONS", "parse_class_weights", "to_config_kwargs"]


def _limited(field: str) -> Bounded:
    return Bounded(LIMITS[field])


def parse_class_weights(text: str) -> dict[int, float]:
    """'2=1.5,5=1.5' -> {2: 1.5, 5: 1.5}; each weight finite and not negative."""
    out = {}
    for part in filter(None, text.split(",")):
        try:
            k, v = part.split("=")
            out[int(k)] = float(v)
            CLASS_WEIGHT.check("weight", out[int(k)])
        except ValueError:
            raise click.BadParameter(f"{part!r} is not CLASS=WEIGHT with a weight {CLASS_WEIGHT.describe()} "
                                     f"(e.g. 2=1.5)") from None
    return out


class _ClassWeights(click.ParamType):
    name = "CLASS=W,..."

    def convert(self, value, param, ctx):
        return value if isinstance(value, dict) else parse_class_weights(value)


def parse_model_args(text: str) -> dict[str, Any]:
    """'width=16,act="gelu"' -> {"width": 16, "act": "gelu"}: each value read as JSON, else kept as text."""
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip().isidentifier():
            raise click.BadParameter(f"{part!r} is not NAME=VALUE (e.g. width=16)")
        if key.strip() in RESERVED_MODEL_ARGS:
            raise click.BadParameter(f"{key.strip()} is vtk's to set: num_classes and in_channels come from the "
                                     f"dataset, input_size from --input-size")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


class _ModelArgs(click.ParamType):
    name = "NAME=VALUE,..."

    def convert(self, value, param, ctx):
        return value if isinstance(value, dict) else parse_model_args(value)


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


TRAIN_OPTIONS: list[TrainOption] = [
    TrainOption("--dataset", "dataset", str, "Dataset (default: the model's own; see `vtk datasets`)."),
    TrainOption("--input-size", "input_size", _limited("input_size"), "Model input side (default: the model's own)."),
    TrainOption("--epochs", "epochs", _limited("epochs"), "Epochs (default: the model's recipe)."),
    TrainOption("--batch-size", "batch_size", _limited("batch_size"), "Batch size."),
    TrainOption("--lr", "lr", _limited("lr"), "Learning rate (peak rate for one-cycle)."),
    TrainOption("--optimizer", "optimizer", click.Choice(CHOICES["optimizer"]), "Optimizer."),
    TrainOption("--momentum", "momentum", _limited("momentum"), "SGD momentum (Nesterov when > 0)."),
    TrainOption("--weight-decay", "weight_decay", _limited("weight_decay"), "Weight decay."),
    TrainOption("--schedule", "schedule", click.Choice(CHOICES["schedule"]), "Learning-rate schedule."),
    TrainOption("--step-size", "step_size", _limited("step_size"), "StepLR: epochs between decays."),
    TrainOption("--gamma", "gamma", _limited("gamma"), "StepLR / plateau: decay factor."),
    TrainOption("--plateau-patience", "plateau_patience", _limited("plateau_patience"), "Plateau: epochs without "
                "improvement before decaying."),
    TrainOption("--loss", "loss", click.Choice(CHOICES["loss"]), "ce, or mse on one-hot targets."),
    TrainOption("--label-smoothing", "label_smoothing", _limited("label_smoothing"), "Label smoothing."),
    TrainOption("--class-weights", "class_weights", _ClassWeights(), "Loss weight per class, e.g. 2=1.5,5=1.5."),
    TrainOption("--val-fraction", "val_fraction", _limited("val_fraction"),
                "Stratified validation share of the training split."),
    TrainOption("--subset", "subset", _limited("subset"), "Keep this share of each class (e.g. 0.5)."),
    TrainOption("--patience", "patience", _limited("patience"), "Early stopping: epochs without improvement."),
    TrainOption("--min-delta", "min_delta", _limited("min_delta"), "Early stopping: smallest change that counts."),
    TrainOption("--monitor", "monitor", click.Choice(CHOICES["monitor"]), "What picks the best epoch."),
    TrainOption("--augment/--no-augment", "augment", bool, "Batch augmentation on the device."),
    TrainOption("--jitter", "jitter", _limited("jitter"), "Colour jitter strength for RGB data."),
    TrainOption("--flip/--no-flip", "flip", bool, "Random left-right flips when augmenting (default: the "
                "dataset's own fact: yes for photos, no for digits and clothes and for imagefolder trees)."),
    TrainOption("--seed", "seed", _limited("seed"), "Seed: a CPU run repeats bit for bit."),
    TrainOption("--device", "device", click.Choice(CHOICES["device"]), "Where to train."),
    TrainOption("--amp", "amp", click.Choice(CHOICES["amp"]), "Mixed precision (auto: the fastest measured on this "
                "machine with finite loss and gradients)."),
    TrainOption("--threads", "threads", _limited("threads"), "CPU threads (default: the fastest measured, from 1 to "
                "all)."),
    TrainOption("--kernels", "kernels", click.Choice(CHOICES["kernels"]), "vtk's fp32 CPU kernels or PyTorch's "
                "(auto: the faster measured)."),
    TrainOption("--compile/--no-compile", "compile", bool, "torch.compile the model."),
    TrainOption("--activation", "activation", click.Choice(["relu", "leaky_relu", "tanh"]),
                "Activation (lenet5).", model_arg=True),
    TrainOption("--dropout", "dropout", Bounded(Limit(0, 1, high_open=True)), "Dropout (lenet5, deep_mlp, vgg*).",
                model_arg=True),
    TrainOption("--depth", "depth", click.IntRange(1, 5), "Layers (deep_mlp).", model_arg=True),
    TrainOption("--bn/--no-bn", "bn", bool, "BatchNorm (dnn, lenet5).", model_arg=True),
    TrainOption("--model-arg", "model_arg", _ModelArgs(), "Keyword arguments for a FILE.py:NAME or torchvision "
                "model, e.g. width=16,dropout=0.1 (values read as JSON; one set for a whole sweep).",
                model_arg=True, sweepable=False),
]


def to_config_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """Option values (by field, None when not given) -> TrainConfig keyword arguments."""
    by_field = {o.field: o for o in TRAIN_OPTIONS}
    kwargs: dict[str, Any] = {"model_args": {}}
    for name, value in values.items():
        if value is None:
            continue
        if name == "model_arg":  # a dict of the model's own keyword arguments
            kwargs["model_args"].update(value)
        elif by_field[name].model_arg:
            kwargs["model_args"][name] = value
        else:
            kwargs[name] = value
    return kwargs
