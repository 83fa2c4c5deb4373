"""LiteRT (.tflite, formerly TensorFlow Lite): the runtime Android apps and many boards ship.

    vtk export --format tflite --precision int8

Converted by litert-torch, which requires torch<2.15 and so runs in an
environment of its own (exporters/converter_env.py, built on first use):
vtk hands it a `torch.export` program of the model, never a pickle, and gets
a file back. The runtime, ai-edge-litert (XNNPACK on the CPU), is a normal
dependency and runs in vtk's process.

The batch is fixed: litert-torch cannot lower PyTorch's flatten with a
symbolic batch (JAX wants concrete shapes), so the plain artifact is a
batch-1 program, the size a phone app feeds, and `--static-batch
--batch-size N` makes another. The runner checks whole splits a batch at a
time; the bench times only the batch the program has.

int8 is litert-torch's PT2E quantizer (symmetric, per-channel weights, static
int8 activations), calibrated on the seeded, class-balanced training sample
every int8 path uses and gated by --max-accuracy-drop. Such a file takes and
returns int8 tensors: the runner quantizes the float input and dequantizes
the logits with the tensors' scale and zero point (inside the timed call: a
device app has to do the same), and the metadata says how.

A .tflite is a flatbuffer of LiteRT operators; loading one runs no Python.
LiteRT's loader does not verify the flatbuffer (`BuildFromFile`), so before
a handed file reaches it, vtk reads the whole flatbuffer with the schema's
pure-Python reader, where an offset out of bounds is an exception, not a
read past the end. LiteRT has no way to stop a call, so a call past
--call-timeout ends vtk in one line (core/stoppable.py). The metadata is the
sidecar `<file>.tflite.json`, as for ExecuTorch.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from vtk_vision.core.artifact_metadata import read_bounded, read_sidecar
from vtk_vision.core.errors import ArtifactError, ExportError, ProviderError
from vtk_vision.core.logs import quiet, stderr_kept
from vtk_vision.core.text import printable
from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.converter_env import LITERT, run_converter
from vtk_vision.exporters.formats import Format
from vtk_vision.exporters.precision import CALIBRATION_SEED
from vtk_vision.exporters.runner import Runner

__all__ = ["FORMAT"]

log = logging.getLogger("vtk")
_IDENTIFIER = b"TFL3"           # the flatbuffer file identifier of LiteRT models, bytes 4-8
_MAX_FILE = (1 << 31) - 1       # a flatbuffer cannot address more; bigger models put weights outside, refused
CONVERT_TIMEOUT_S = 1800


def _convert(module: torch.nn.Module, example: torch.Tensor, path: Path, precision: str,
             calibration: torch.Tensor | None) -> dict:
    """Hand the model to the converter environment as a torch.export program; the converter's report."""
    with tempfile.TemporaryDirectory(prefix="vtk-tflite-") as d:
        folder = Path(d)
        try:
            with quiet("torch.export"):
                torch.export.save(torch.export.export(module, (example,)), folder / "program.pt2")
        except Exception as e:  # noqa: BLE001  (export raises many types)
            raise ExportError.step_failed("torch.export", e) from None
        np.save(folder / "example.npy", example.numpy())
        if calibration is not None:
            np.save(folder / "calibration.npy", calibration.numpy())
        request = {"program": str(folder / "program.pt2"), "example": str(folder / "example.npy"),
                   "calibration": str(folder / "calibration.npy") if calibration is not None else None,
                   "precision": precision, "out": str(path)}
        return run_converter(LITERT, request, CONVERT_TIMEOUT_S, progress=log.info)


def write(module: torch.nn.Module, example: torch.Tensor, path: Path, opts: ExportOptions,
          metadata: dict[str, str]) -> dict | None:
    if opts.precision != "fp32":
        return None  # converted by `reduce`, from the quantized graph
    return _convert(module, example, path, "fp32", None)


def reduce(path: Path, precision: str, opts: ExportOptions, calibration: torch.Tensor | None,
           module: torch.nn.Module | None = None, example: torch.Tensor | None = None) -> dict:
    """int8 through litert-torch's PT2E quantizer, calibrated in the converter environment."""
    lowering = _convert(module, example, path, precision, calibration)
    how = {"input_quantization": _quantization(lowering["input"], "input"),
           "output_quantization": _quantization(lowering["output"], "output")}
    return {"quantizer": "litert-torch PT2EQuantizer", "per_channel": True, "symmetric": True,
            "activations": "static int8", "weights": "int8", "calibration_images": len(calibration),
            "calibration_seed": CALIBRATION_SEED, "metadata": how, "lowering": lowering}


def _quantization(tensor: dict, which: str) -> str:
    """How a device app feeds or reads this tensor, as a formula with the file's own scale and zero point."""
    if tensor["dtype"] != "int8":
        return f"{tensor['dtype']}, as is"
    if which == "input":
        return f"q = clip(round(x / {tensor['scale']!r}) + {tensor['zero_point']}, -128, 127) as int8"
    return f"x = (q - {tensor['zero_point']}) * {tensor['scale']!r}"


def embed(path: Path, metadata: dict[str, str]) -> None:
    """Nothing goes inside: the sidecar <file>.json holds the metadata."""


def _checked(path: Path) -> bytes:
    """A handed file's bytes, once they are a LiteRT flatbuffer that its schema's bounds-checked Python reader
    reads whole. The runner loads these same bytes, so the file cannot change between the check and the load."""
    from ai_edge_litert import schema_py_generated as schema

    data = read_bounded(path, _MAX_FILE, ", more than one LiteRT flatbuffer can hold; refused")
    if len(data) < 8 or data[4:8] != _IDENTIFIER:
        raise ArtifactError(f"{printable(path)} is not a LiteRT model (no {_IDENTIFIER.decode()} flatbuffer "
                            f"identifier); export it again with `vtk export --format tflite`")
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as e:  # noqa: BLE001  (a damaged flatbuffer fails as struct, index or value errors)
        raise ArtifactError(f"{printable(path)} is a damaged LiteRT flatbuffer ({type(e).__name__}); refused") \
            from None
    for buffer in model.buffers or []:
        if buffer.offset > 1 and buffer.offset + buffer.size > len(data):
            raise ArtifactError(f"{printable(path)} names weights past its end; refused")
    return data


def vet(path: Path) -> None:
    _checked(path)


def _fixed(tensor: dict) -> tuple:
    """(dtype, scale, zero point) of an int8 tensor; (dtype, None, None) of any other."""
    scale, zero = tensor["quantization"]
    return (tensor["dtype"], scale, zero) if tensor["dtype"] == np.int8 and scale else (tensor["dtype"], None, None)


def load(path: Path, provider: str = "cpu", threads: int = 1) -> Runner:
    from ai_edge_litert.interpreter import Interpreter

    data = _checked(path)
    logs: list[str] = []
    try:
        with stderr_kept(logs):  # "Created TensorFlow Lite XNNPACK delegate for CPU." on every load
            interpreter = Interpreter(model_content=data, num_threads=threads)
            interpreter.allocate_tensors()
    except Exception as e:  # noqa: BLE001  (LiteRT raises ValueError / RuntimeError with its reason)
        said = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ArtifactError(f"{printable(path)} is not a loadable LiteRT model: {printable(said)[:300]}") from None
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    planned = int(inp["shape"][0])
    in_dtype, in_scale, in_zero = _fixed(inp)
    _, out_scale, out_zero = _fixed(out)
    set_input, invoke, get_output = interpreter.set_tensor, interpreter.invoke, interpreter.get_tensor

    def call(x: np.ndarray) -> np.ndarray:
        if in_scale is not None:
            x = np.clip(np.rint(x / in_scale) + in_zero, -128, 127).astype(np.int8)
        set_input(inp["index"], x)
        invoke()
        y = get_output(out["index"])
        return (y.astype(np.float32) - out_zero) * out_scale if out_scale is not None else y

    def fed(x: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(x.numpy().astype(in_dtype if in_scale is None else np.float32, copy=False))

    def bind(x: torch.Tensor):
        if len(x) != planned:
            raise ProviderError(f"this LiteRT program takes batches of {planned} image(s), not {len(x)} (LiteRT "
                                f"programs converted from PyTorch have a fixed batch; export another with "
                                f"--static-batch --batch-size {len(x)})")
        xn = fed(x)
        return lambda: call(xn)

    def logits(x: torch.Tensor) -> torch.Tensor:
        """Any number of images, `planned` at a time (the last batch padded with zeros)."""
        xn, outs = fed(x), []
        for i in range(0, len(xn), planned):
            chunk = xn[i:i + planned]
            if len(chunk) < planned:
                chunk = np.concatenate([chunk, np.zeros((planned - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            outs.append(np.array(call(chunk), dtype=np.float32)[:len(xn) - i])
        return torch.from_numpy(np.concatenate(outs))

    return Runner("tflite", provider, bind, logits, lambda: None, False,
                  [f"litert:xnnpack, {threads} threads", f"batch {planned}"
                   + (", int8 input and output" if in_scale is not None else "")])


FORMAT = Format("tflite", order=7, description="LiteRT (.tflite), XNNPACK (CPU)", providers=("cpu",),
                load=load, suffix=".tflite", write=write, embed=embed, read_metadata=read_sidecar, vet=vet,
                metadata_sidecar=True, reduce=reduce, reduced=("int8",), reduce_from_module=True, in_all=False,
                fixed_batch=1)
