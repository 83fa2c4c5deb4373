"""`vtk predict FILE.onnx IMAGE...`: an exported artifact's answers, prepared as its own metadata says.

    rows = predict_artifact(Path("model.onnx"), [Path("shoe.png")], Path("p.png"))

The file is read the way `vtk bench FILE` reads one (bench/artifact_input.py):
its declared input and vtk's metadata (classes, mean, std, image and model
shapes) without loading the program; TorchScript runs only with trust
(core/trust.py), pt2 loads with pickling refused, ONNX is data. The runtime's
load and each call run where a time limit can stop them (core/stoppable.py),
so a graph crafted never to end is one line, not a hang.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from vtk_vision.bench.rows import Timing
from vtk_vision.core.artifact_metadata import Unusable, normalisation
from vtk_vision.core.errors import ArtifactError, DataError
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.core.stoppable import Watch, run_stoppable
from vtk_vision.core.text import printable
from vtk_vision.core.trust import require_trusted
from vtk_vision.exporters.formats import format_of_file, get_format, runtimes
from vtk_vision.inspection.predict import answer, load_images

__all__ = ["ArtifactModel", "read_artifact", "predict_artifact"]



@dataclass(frozen=True)
class ArtifactModel:
    """What predicting with a file needs, all from its metadata."""

    path: Path
    runtime: str
    model: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]   # (C, H, W) images are resized to
    mean: tuple[float, ...]             # of the training pixels in [0, 1]: the brightness hint's reference
    preprocess: Preprocess | None       # None: preprocessing is baked into the graph (raw uint8 input)
    grey_rank3: bool                    # a baked grey model takes (N, H, W)


def _shape(value, name: str) -> tuple[int, int, int]:
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) and 1 <= v <= 4096
                                                                for v in value)):
        raise Unusable(f"its metadata's {name} is not three sizes (C, H, W)")
    return tuple(value)


def _classes(meta: dict) -> tuple[str, ...]:
    value = meta.get("classes")
    try:
        value = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        value = None
    if not (isinstance(value, list) and value and all(isinstance(c, str) for c in value)):
        raise Unusable("its metadata's classes is not a list of names")
    return tuple(printable(c) for c in value)


def read_artifact(path: Path, trust_code: bool = False) -> ArtifactModel:
    """The file's format, classes and preprocessing; refused in one line when vtk must not load it or its
    metadata cannot say how to prepare an image."""
    from vtk_vision.bench.artifact_input import declared_input

    fmt = format_of_file(path)
    runtime = next(r for r in runtimes() if get_format(r).artifact_format == fmt.name)
    if fmt.executes_code:
        require_trusted(path, trust_code, otherwise="or predict with an ONNX or pt2 export of the model instead")
    if fmt.vet is not None:
        fmt.vet(path)
    decl = declared_input(path, fmt)
    meta = decl.metadata
    try:
        if not meta:
            raise Unusable(decl.metadata_note or "it holds no vtk metadata (classes, mean, std)")
        prep = meta.get("preprocess")
        if not isinstance(prep, dict):
            raise Unusable("its metadata says nothing of how images were prepared")
        image_shape, model_shape = _shape(prep.get("image_shape"), "image_shape"), \
            _shape(prep.get("model_shape"), "model_shape")
        baked = meta.get("preprocess_baked") == "true"
        mean, std = normalisation(meta, model_shape[0])
        preprocess = None if baked else Preprocess(mean, std, image_shape, model_shape)
        classes = _classes(meta)
    except (Unusable, DataError) as e:
        raise ArtifactError(f"{printable(path)}: {e}; vtk predict needs the classes and preprocessing vtk embeds "
                            f"when it exports (vtk export), or use the file with its own runtime") from None
    name = meta.get("model") if isinstance(meta.get("model"), str) else path.name
    return ArtifactModel(path, runtime, printable(name)[:100], classes, image_shape, mean, preprocess,
                         baked and image_shape[0] == 1 and decl.dims is not None and len(decl.dims) == 3)


def _probabilities(art: ArtifactModel, x: torch.Tensor) -> torch.Tensor:
    """Softmax of the file's outputs for uint8 images `x`, in its runtime on the CPU, within the time limit."""
    with torch.no_grad():
        fed = art.preprocess(x) if art.preprocess is not None else (x[:, 0] if art.grey_rank3 else x)
    watch = Watch(Timing.call_timeout_s, art.runtime)  # the bench's default --call-timeout

    def run() -> torch.Tensor:
        runner = watch.guard(get_format(art.runtime).load)(art.path, "cpu", torch.get_num_threads())
        watch.cancel = runner.cancel
        return watch.guard(runner.logits)(fed.contiguous())

    logits = torch.as_tensor(run_stoppable(run, watch)).float()
    if logits.dim() != 2 or logits.shape[1] != len(art.classes):
        raise ArtifactError(f"{printable(art.path)} gives outputs of shape {list(logits.shape)}, not one score per "
                            f"class of the {len(art.classes)} its metadata names")
    return logits.softmax(1)


def predict_artifact(path: Path, images: list[Path], out: Path, trust_code: bool = False) -> list[dict]:
    """Predicted class and confidence of the file `path` for each image file; drawn to `out`."""
    art = read_artifact(path, trust_code)
    x = load_images(images, art.image_shape)
    return answer(x, _probabilities(art, x), [p.name for p in images], [None] * len(x), art.classes,
                  sum(art.mean) / len(art.mean), out, f"{art.model} predictions ({path.name})")
