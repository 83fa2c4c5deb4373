"""OpenVINO IR (.xml graph + .bin weights): what an edge box running OpenVINO loads without a converter.

Written by `ov.convert_model` from the same `torch.export` program the pt2
format saves, then `ov.save_model(..., compress_to_fp16=False)`: OpenVINO's
default stores fp16 weights (max abs diff 5.8e-3 on LeNet-5), which the fp32
parity gate would reject or a user would ship unknowingly, so fp16 weights
come only with `--precision fp16`, gated like fp16 ONNX. Compute stays fp32
either way (the runner asks for f32 inference precision): fp16 here means
half the weight bytes, decompressed on load.

vtk's metadata lives in the IR's own `rt_info` (under <rt_info><vtk>),
readable by `Model.get_rt_info(["vtk", key])`; vtk reads it back from the XML
as data, bounded, with DTDs refused. An IR holds no code: it is a graph of
OpenVINO operations, and vtk loads no extensions. The .bin travels with the
.xml (the format table's `companions`) and counts in the artifact's size.
The bench row runs in the `openvino` runtime (openvino_format.load), on the
.xml named in the row.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import torch

from vtk_vision.core.artifact_metadata import read_bounded
from vtk_vision.core.errors import ArtifactError, ExportError
from vtk_vision.core.logs import quiet
from vtk_vision.core.text import printable
from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.formats import Format, openvino_format
from vtk_vision.exporters.runner import Runner

__all__ = ["FORMAT"]

SECTION = "vtk"                 # <rt_info><vtk><key value="..."/></vtk></rt_info>
_MAX_XML = 64 << 20             # LeNet-5's IR graph is ~20 KB, resnet18's ~0.3 MB: the weights are in the .bin


def _save(model, path: Path, metadata: dict[str, str], compress: bool) -> None:
    import openvino as ov

    for k, v in metadata.items():
        model.set_rt_info(v, [SECTION, k])
    ov.save_model(model, str(path), compress_to_fp16=compress)


def write(module: torch.nn.Module, example: torch.Tensor, path: Path, opts: ExportOptions,
          metadata: dict[str, str]) -> None:
    import openvino as ov

    batch = -1 if opts.dynamic_batch else opts.batch_size
    dynamic = {"images": {0: torch.export.Dim("batch", min=1, max=1 << 20)}} if opts.dynamic_batch else None
    dtype = ov.Type.u8 if example.dtype == torch.uint8 else ov.Type.f32
    try:
        with quiet("torch.export", "openvino"):
            program = torch.export.export(module, (example,), dynamic_shapes=dynamic)
            model = ov.convert_model(program, input=[(ov.PartialShape([batch, *example.shape[1:]]), dtype)])
    except Exception as e:  # export and the converter raise many types; all are an export failure
        raise ExportError.step_failed("OpenVINO conversion", e) from None
    model.inputs[0].get_tensor().set_names({"images"})
    model.outputs[0].get_tensor().set_names({"logits"})
    _save(model, path, metadata, compress=False)


def reduce(path: Path, precision: str, opts: ExportOptions, calibration: torch.Tensor | None) -> dict:
    """fp16: the IR saved again with its weights compressed to fp16 (OpenVINO's own default)."""
    _resave(path, {}, compress=True)
    return {"converter": "openvino.save_model", "compress_to_fp16": True, "inference_precision": "f32"}


def _resave(path: Path, metadata: dict[str, str], compress: bool) -> None:
    """Read the IR and save it again under a new name, then over the old: OpenVINO maps the .bin it read, and
    writing into a mapped file under it would corrupt the weights it is still reading."""
    import openvino as ov

    fresh = path.with_name(path.name + "-resaved.xml")
    try:
        model = ov.Core().read_model(str(path))
        _save(model, fresh, metadata, compress)
        del model
        os.replace(fresh.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(fresh, path)
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ExportError.step_failed("rewriting the OpenVINO IR", e) from None
    finally:
        fresh.unlink(missing_ok=True)
        fresh.with_suffix(".bin").unlink(missing_ok=True)


def embed(path: Path, metadata: dict[str, str]) -> None:
    _resave(path, metadata, compress=False)  # False keeps what is there: fp16 weights stay fp16


def _xml_root(path: Path) -> ET.Element:
    """The IR's XML, parsed as data: bounded in size, and with no DTD (so no entity can expand)."""
    data = read_bounded(path, _MAX_XML, f" of XML, more than the {_MAX_XML:,} an IR graph needs (its weights belong "
                                        f"in the .bin); refused")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ArtifactError(f"{printable(path)} declares a DTD or entities, which no OpenVINO IR does; refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise ArtifactError(f"{printable(path)} is not an OpenVINO IR (XML: {e})") from None
    if root.tag != "net":
        raise ArtifactError(f"{printable(path)} is not an OpenVINO IR (its root element is "
                            f"<{printable(root.tag)[:40]}>, not <net>)")
    return root


def read_metadata(path: Path) -> dict:
    section = _xml_root(path).find(f"rt_info/{SECTION}")
    return {} if section is None else {e.tag: e.get("value", "") for e in section}


def vet(path: Path) -> None:
    """A handed IR must be an IR with its weights beside it; OpenVINO's own errors for either are opaque."""
    _xml_root(path)
    if not path.with_suffix(".bin").is_file():
        raise ArtifactError(f"{printable(path)} has no {printable(path.with_suffix('.bin').name)} beside it; "
                            f"an OpenVINO IR's weights travel with its .xml")


def load(path: Path, provider: str = "cpu", threads: int = 1) -> Runner:
    vet(path)
    runner = openvino_format.load(path, provider, threads)
    return replace(runner, runtime="openvino-ir", active=[*runner.active, f"IR {path.name}"])


FORMAT = Format("openvino-ir", order=5, description="OpenVINO IR (.xml + .bin), run by OpenVINO on the CPU",
                providers=("cpu",), load=load, suffix=".xml", write=write, embed=embed, read_metadata=read_metadata,
                vet=vet, reduce=reduce, reduced=("fp16",), companions=(".bin",), in_all=False)
