"""ONNX through `torch.onnx.export` with the dynamo exporter, one self-contained file.

Chosen explicitly (`dynamo=True`) rather than by default, with
`external_data=False` so small models are one file, and the batch dimension
named `batch`. The exporter falls back silently when asked for an opset it
cannot convert to (asked for 13, it writes 18), so the opset in the written
file is checked against the one asked for.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import torch

from vtk_vision.exporters.base import ExportOptions
from vtk_vision.core.errors import ExportError

__all__ = ["write", "load", "embed", "read_metadata"]


def write(module: torch.nn.Module, example: torch.Tensor, path: Path, opts: ExportOptions,
          metadata: dict[str, str]) -> None:
    dynamic = {"images": {0: torch.export.Dim("batch", min=1, max=1 << 20)}} if opts.dynamic_batch else None
    quiet = [logging.getLogger(n) for n in ("onnxscript", "torch.onnx", "torch.export")]
    levels = [q.level for q in quiet]
    for q in quiet:  # the exporter narrates every step at INFO/WARNING; its errors still raise
        q.setLevel(logging.ERROR)
    try:
        program = torch.onnx.export(module, (example,), None, dynamo=True, external_data=False,
                                    opset_version=opts.opset, input_names=["images"],
                                    output_names=["logits"], dynamic_shapes=dynamic, verbose=False)
    except Exception as e:  # the exporter raises many types; all are an export failure to the user
        raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)
    proto = program.model_proto
    got = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opts.opset is not None and got != opts.opset:
        raise ExportError(f"the installed exporter (torch {torch.__version__}) cannot produce ONNX opset "
                          f"{opts.opset}: it wrote opset {got}. Choose --opset between 17 and "
                          f"{onnx.defs.onnx_opset_version()}, or leave it out")
    onnx.save_model(proto, str(path))
    embed(path, metadata)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"onnx.checker rejected the exported graph: {str(e).splitlines()[0]}") from None


def load(path: Path):
    """A CPU ONNX Runtime session as a function: numpy-compatible input -> logits tensor."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: torch.from_numpy(sess.run(None, {name: np.ascontiguousarray(x.numpy())})[0])


def embed(path: Path, metadata: dict[str, str]) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in metadata.items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name, model.doc_string = "vtk", metadata.get("description", "")
    onnx.save_model(model, str(path))


def read_metadata(path: Path) -> dict:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
