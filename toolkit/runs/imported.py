"""Weights trained elsewhere, made into a run folder that export, bench and eval read like any run.

    vtk export --model mynet.py:MyNet --weights mynet.safetensors --dataset fashion-mnist

A state dict is data, so it loads only as data: safetensors, or a `.pt` /
`.pth` through PyTorch's weights-only unpickler. A file that needs the
unrestricted unpickler (a whole pickled model, custom classes) is refused,
because unpickling it would run code. With a dataset the folder records its
classes and preprocessing and the test accuracy of the weights; without one
there is nothing to score against: artifacts are checked on seeded random
inputs against eager PyTorch and every accuracy stays "not measured".
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from vtk_vision.core.errors import VtkError
from vtk_vision.core.inference import logits_of
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.core.text import printable
from vtk_vision.core.versions import library_versions
from vtk_vision.core.weights_only import load_weights_only, refusal_reason, refused_global
from vtk_vision.models import create_model
from vtk_vision.models.external import is_external
from vtk_vision.runs.config import TrainConfig
from vtk_vision.runs.folder import Run, RunFolder
from vtk_vision.runs.schema import DataRecord, RunRecord
from vtk_vision.runs.sources import keep_model_source

__all__ = ["import_weights", "read_state_dict", "NO_DATA"]

NO_DATA = "none: weights imported without --dataset, so the input preparation they were trained with is unknown"
_WRAPPERS = ("state_dict", "model_state_dict", "model")  # common checkpoint layouts around a state dict


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors by name from safetensors or a weights-only `.pt`/`.pth`; anything that would run code is refused."""
    path = Path(path)
    if not path.is_file():
        raise VtkError(f"--weights {printable(path)} is not a file")
    state = _load_safetensors(path) if path.suffix == ".safetensors" else _load_pickled(path)
    for name, tensor in state.items():  # NaN weights would reach the exporter as "max abs diff nan"
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
            raise VtkError(f"--weights {printable(path)}: tensor {printable(name)[:80]!r} holds NaN or infinity; "
                           f"these weights are broken (a diverged training run?)")
    return state


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise VtkError(f"--weights {printable(path)} is not a readable safetensors file ({e})") from None


def _load_pickled(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = load_weights_only(path)
    except Exception as e:  # a truncated or foreign file fails in many ways inside torch.load
        if (name := refused_global(e)) is not None:
            raise VtkError(f"--weights {printable(path)} needs an unrestricted unpickler (it holds "
                           f"{printable(name[:80])}), and unpickling can run code; save model.state_dict() "
                           f"or use safetensors") from None
        raise VtkError(f"--weights {printable(path)} is not a PyTorch state dict ({printable(refusal_reason(e))}); "
                       f"save model.state_dict() or use safetensors") from None
    for key in _WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VtkError(f"--weights {printable(path)} holds a {type(state).__name__}, not a state dict of tensors; "
                       f"save model.state_dict()")
    if state and all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def fit_weights(model: nn.Module, state: dict[str, torch.Tensor], label: str, path: Path) -> None:
    """Load `state` into `model`, naming the first tensor that does not fit."""
    own = model.state_dict()
    for name, tensor in own.items():
        if name in state and tuple(state[name].shape) != tuple(tensor.shape):
            raise VtkError(f"--weights {printable(path)}: tensor {name!r} is {list(state[name].shape)} in the file "
                           f"but {list(tensor.shape)} in {printable(label)}; these weights are for another shape "
                           f"(check --dataset / --num-classes / --input-size)")
    missing, extra = [k for k in own if k not in state], [k for k in state if k not in own]
    for names, where, other in ((missing, printable(label), "the file"), (extra, "the file", printable(label))):
        if names:
            more = f" and {len(names) - 1} more" if len(names) > 1 else ""
            raise VtkError(f"--weights {printable(path)}: {where} has tensor {names[0]!r}{more} that {other} lacks; "
                           f"are these weights for this model?")
    model.load_state_dict(state)


def _test_accuracy(model: nn.Module, prep: Preprocess, ds) -> float:
    with torch.no_grad():
        predicted = logits_of(model, prep, ds.test.images).argmax(1)
    return (predicted == ds.test.labels).double().mean().item()


def import_weights(spec: str, weights: Path, dataset: str | None = None, data_dir: str | None = None,
                   input_size: int | None = None, channels: int | None = None, num_classes: int | None = None,
                   runs_dir: str | None = None, model_args: dict | None = None) -> Run:
    """Build `spec`, load `weights` into it, and write an "imported" run folder; the Run, ready to export."""
    from vtk_vision.data import load_dataset

    state = read_state_dict(weights)  # before anything else: a refused file leaves no folder behind
    ds = load_dataset(dataset, data_dir) if dataset else None
    args = dict(model_args or {})
    if ds is not None:
        channels, num_classes = ds.shape[0], len(ds.classes)
        input_size = input_size or (max(ds.shape[1:]) if is_external(spec) else None)
    if num_classes is not None:
        args["num_classes"] = num_classes
    if channels is not None and is_external(spec):
        args["in_channels"] = channels
    model = create_model(spec, input_size=input_size, **args).eval()
    shape = model.vtk_info.input_shape
    if ds is not None:
        prep = Preprocess(ds.mean, ds.std, ds.shape, shape)
        data = DataRecord(ds.name, ds.source, tuple(ds.classes), tuple(ds.shape), prep.spec)
    else:
        prep = Preprocess((0.0,) * shape[0], (1.0,) * shape[0], shape, shape)
        data = DataRecord("", NO_DATA, tuple(str(i) for i in range(model.vtk_info.num_classes)), shape, prep.spec)
    fit_weights(model, state, spec, Path(weights))
    accuracy = {"test": _test_accuracy(model, prep, ds)} if ds is not None else None
    folder = RunFolder.create(spec, ds.name if ds is not None else "weights", runs_dir)
    try:
        model.vtk_info = keep_model_source(folder, model.vtk_info)
        folder.save_weights(model)
        config = TrainConfig(model=spec, dataset=ds.name if ds is not None else None, input_size=shape[1],
                             model_args={k: v for k, v in args.items() if k not in ("num_classes", "in_channels")})
        record = RunRecord("imported", time.strftime("%Y-%m-%dT%H:%M:%S%z"), model.vtk_info, data, config, "cpu",
                           "None", library_versions(), accuracy=accuracy)
        folder.write(record)
    except BaseException:
        folder.discard()
        raise
    return Run(folder, record, model, prep.eval())
