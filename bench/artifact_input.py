"""What one input a file vtk never wrote declares, and the concrete shape the bench feeds it.

`vtk bench model.onnx` times someone else's artifact on synthetic inputs, so
the shape has to come from the file: ONNX graphs declare theirs (free
dimensions by name), torch.export programs carry example shapes, and
TorchScript keeps none unless vtk wrote it (its metadata). What the file
leaves free comes from `--input-size` (the side of a square image) or
`--input-shape C,H,W`; a file that still leaves a dimension open, or whose
rank does not fit what was given, is refused in one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vtk_vision.core.artifact_metadata import (Unusable, check_elements, checked_dims, json_object, read_member,
                                               text_field, vtk_section)
from vtk_vision.core.errors import ArtifactError
from vtk_vision.core.text import printable
from vtk_vision.exporters.formats import Format

__all__ = ["DeclaredInput", "declared_input", "concrete_shape"]

Dim = int | str | None  # a size, a named free dimension, or an unnamed free one


@dataclass(frozen=True)
class DeclaredInput:
    """The one input of an artifact: its dimensions (batch first) as declared, its dtype, and vtk's metadata
    (checked as data: core/artifact_metadata.py), with why that metadata is unusable where it is."""

    name: str
    dims: tuple[Dim, ...] | None   # None: the file declares no shape (TorchScript not written by vtk)
    dtype: str
    metadata: dict = field(default_factory=dict)
    metadata_note: str | None = None  # why the file's metadata cannot be used (then `metadata` is {})

    @property
    def fixed_batch(self) -> int | None:
        return self.dims[0] if self.dims and isinstance(self.dims[0], int) else None

    def describe(self) -> str:
        return "[" + ", ".join(str(d) if d is not None else "?" for d in self.dims) + "]" if self.dims else "?"


def _one_input(path: Path, names: list[str]) -> None:
    if len(names) != 1:
        raise ArtifactError(f"{printable(path)} takes {len(names)} inputs ({printable(', '.join(names))}); vtk benches "
                            f"image classifiers with one input")


def _onnx(path: Path) -> DeclaredInput:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends: not an ONNX file
        raise ArtifactError(f"{printable(path)} is not a readable ONNX model ({type(e).__name__}: "
                            f"{printable(str(e).splitlines()[0][:120] if str(e) else 'no message')})") from None
    if not model.graph.node and not model.graph.input:  # protobuf reads an empty file as an empty model
        raise ArtifactError(f"{printable(path)} is not a readable ONNX model (it holds no graph)")
    weights = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    _one_input(path, [i.name for i in inputs])
    tensor = inputs[0].type.tensor_type
    if not tensor.HasField("shape"):
        dims = None
    else:
        dims = checked_dims([d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                             for d in tensor.shape.dim], printable(path.name))
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "float32"
    except (KeyError, ValueError):  # an element type number ONNX does not define
        raise ArtifactError(f"{printable(path)} declares input element type {tensor.elem_type}, which ONNX does "
                            f"not define") from None
    meta, note = vtk_section({p.key: p.value for p in model.metadata_props}, printable(path.name))
    return DeclaredInput(inputs[0].name, dims, dtype, meta, note)


def _pt2(path: Path) -> DeclaredInput:
    from vtk_vision.exporters.formats.pt2_format import EXTRA, safe_load

    program = safe_load(path)  # pickling refused: a crafted archive stops here
    names = list(program.graph_signature.user_inputs)
    _one_input(path, names)
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == names[0])
    val = node.meta.get("val")
    dims = checked_dims([int(d) if str(d).lstrip("-").isdigit() else str(d) for d in val.shape],
                        printable(path.name)) if val is not None else None
    meta, note = _archive_vtk(path, EXTRA)
    return DeclaredInput(names[0], dims, str(val.dtype).replace("torch.", "") if val is not None else "float32",
                         meta, note)


def _archive_vtk(path: Path, extra: str) -> tuple[dict, str | None]:
    """vtk's metadata in a TorchScript or pt2 archive (bounded, never loading the program), and why it is
    unusable. None there is no metadata; a member inflating past the limit refuses the file."""
    data = read_member(path, f"/extra/{extra}")
    if data is None:
        return {}, None
    try:
        flat = json_object(data, f"{printable(path.name)}'s extra/{extra}")
    except ValueError as e:
        return {}, str(e)
    meta, note = vtk_section(flat, printable(path.name))
    return (meta if "vtk" in flat else flat), note  # vtk's flat form alone: what early versions wrote


def _torchscript(path: Path) -> DeclaredInput:
    """Read without loading (loading runs the program): only vtk's metadata can say the shape."""
    from vtk_vision.exporters.formats.torchscript_format import EXTRA

    return _by_metadata(path, *_archive_vtk(path, EXTRA))


def _by_metadata(path: Path, meta: dict, note: str | None) -> DeclaredInput:
    """The input vtk's metadata declares, for files read without loading them."""
    shape, dims = meta.get("input_shape"), None
    if shape is not None:
        try:
            dims = checked_dims(json.loads(shape) if isinstance(shape, str) else shape, printable(path.name))
        except (ValueError, RecursionError, ArtifactError) as e:  # unusable: as if the file declared none
            note = f"its metadata's input_shape is not a list of sizes: {printable(e)[:120]}"
    try:
        dtype = text_field(meta, "input_dtype", "float32")
    except Unusable as e:
        raise ArtifactError(f"{printable(path)}: {e}") from None
    return DeclaredInput("input", dims, dtype, meta if dims is not None or shape is None else {}, note)


def declared_input(path: Path, fmt: Format) -> DeclaredInput:
    """The input `path` (a file of format `fmt`) declares; unreadable or multi-input files are refused."""
    readers = {"onnx": _onnx, "pt2": _pt2, "torchscript": _torchscript}
    if fmt.name not in readers and (fmt.metadata_sidecar or fmt.companions):  # ExecuTorch's sidecar, an IR's rt_info
        return _by_metadata(path, *vtk_section(fmt.read_metadata(path), printable(path.name)))
    if fmt.name not in readers:
        raise ArtifactError(f"vtk cannot bench a {fmt.name} file on its own")
    return readers[fmt.name](path)


def concrete_shape(decl: DeclaredInput, path: Path, input_size: int | None,
                   input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """The per-image shape (no batch) to feed: the file's own, its free dimensions filled from
    `--input-size` (square images, rank 4) or replaced by `--input-shape`."""
    where = printable(path.name)
    shape = _per_image(decl, where, input_size, input_shape)
    check_elements(shape, where, decl.fixed_batch or 1)  # before anything of that size is allocated
    return shape


def _per_image(decl: DeclaredInput, where: str, input_size: int | None,
               input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    if decl.dims is None:
        if input_shape is None:
            why = decl.metadata_note or "TorchScript keeps none unless vtk wrote it"
            raise ArtifactError(f"{where} declares no input shape ({why}); give --input-shape C,H,W")
        return tuple(input_shape)
    per_image = decl.dims[1:]
    if input_shape is not None:
        if len(input_shape) != len(per_image):
            raise ArtifactError(f"{where} takes rank-{len(decl.dims)} input {decl.describe()}; --input-shape gives "
                                f"{len(input_shape)} dimensions for its {len(per_image)} after the batch")
        clash = [(d, s) for d, s in zip(per_image, input_shape) if isinstance(d, int) and d != s]
        if clash:
            raise ArtifactError(f"{where} takes input {decl.describe()}; --input-shape "
                                f"{','.join(map(str, input_shape))} does not fit its fixed size {clash[0][0]}")
        return tuple(input_shape)
    if input_size is not None:
        if len(decl.dims) != 4:
            raise ArtifactError(f"{where} takes rank-{len(decl.dims)} input {decl.describe()}; --input-size is the "
                                f"side of a square image (rank 4: batch, channels, height, width); give --input-shape")
        fixed = [d for d in per_image[1:] if isinstance(d, int)]
        if any(d != input_size for d in fixed):
            raise ArtifactError(f"{where} takes input {decl.describe()}; --input-size {input_size} does not fit it")
        per_image = (per_image[0], input_size, input_size)
    free = [str(d) if d is not None else "?" for d in per_image if not isinstance(d, int)]
    if free:
        raise ArtifactError(f"{where} takes input {decl.describe()} with free dimensions ({', '.join(free)}); give "
                            f"--input-size N (square images) or --input-shape C,H,W")
    return tuple(per_image)
