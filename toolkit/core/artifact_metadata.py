"""What an artifact file says about itself is data from whoever made the file: checked here, in one place.

vtk's metadata (an ONNX graph's `metadata_props`, the `extra/vtk.json` of a
TorchScript or pt2 archive) and the input shape a file declares decide what
the bench allocates and how it prepares images. A handed file can say
anything there: a `[1, 3, 100000, 100000]` input (30 TB of float32), a
negative size, a list where an object belongs, a string for a mean, NaN, or
a metadata member that inflates to gigabytes. Every format's metadata reader
and the bench's reading of a file (bench/artifact_input.py, bench/foreign.py)
go through these checks:

- reads are bounded: a zip member whose header declares more than
  `MAX_METADATA_BYTES` is refused unread, and none is read past that limit;
- JSON must be an object where one is expected, without NaN or infinities,
  and not nested so deep that the parser gives up;
- sizes are whole numbers >= 1, and one input tensor vtk builds holds at most
  `MAX_ELEMENTS` (2**28: 1 GiB of float32);
- mean and std are finite numbers, one per channel, std > 0.

A broken shape is an ArtifactError (one line, exit 1): nothing can be fed.
Broken accuracy metadata raises `Unusable`: the bench goes on, and says why
accuracy was not measured.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

from vtk_vision.core.errors import ArtifactError
from vtk_vision.core.text import printable

__all__ = ["read_bounded", "read_sidecar", "MAX_METADATA_BYTES", "MAX_ELEMENTS", "Unusable", "read_member", "archive_metadata", "json_object",
           "vtk_section", "checked_dims", "elements", "check_elements", "normalisation", "text_field"]

MAX_METADATA_BYTES = 1 << 20  # vtk writes about 2 KB of metadata; a megabyte is no model's metadata
MAX_ELEMENTS = 1 << 28        # one input tensor (a batch) the bench builds: 1 GiB of float32


_JSON_TYPES = {list: "list", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class Unusable(ValueError):
    """Metadata that cannot be used to measure accuracy; the message says why, for the bench's note."""


def _mb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.1f} MB"


def read_member(path: Path, endswith: str, limit: int = MAX_METADATA_BYTES) -> bytes | None:
    """The bytes of the first member of zip archive `path` whose name ends with `endswith` (None when there is
    none), read without ever inflating more than `limit` + 1 bytes. Refused when larger: its header's size is
    checked first, and a header that understates it is caught by the bounded read."""
    try:
        with zipfile.ZipFile(path) as z:
            info = next((i for i in z.infolist() if i.filename.endswith(endswith)), None)
            if info is None:
                return None
            if info.file_size > limit:
                raise ArtifactError(f"{printable(path)}: its {printable(info.filename)} inflates to "
                                    f"{_mb(info.file_size)}, more than the {_mb(limit)} vtk reads as metadata; "
                                    f"refused")
            with z.open(info) as f:
                data = f.read(limit + 1)
    except (OSError, zipfile.BadZipFile, EOFError, NotImplementedError, ValueError, RuntimeError) as e:
        # RuntimeError: an encrypted member; NotImplementedError: a compression zipfile cannot read
        raise ArtifactError(f"{printable(path)} is not a readable archive ({type(e).__name__}: "
                            f"{printable(str(e))[:120]})") from None
    if len(data) > limit:
        raise ArtifactError(f"{printable(path)}: its {printable(info.filename)} inflates past the {_mb(limit)} vtk "
                            f"reads as metadata; refused")
    return data


def archive_metadata(path: Path, member: str) -> dict:
    """The JSON object in the zip member of `path` named `member` (after the archive's own top folder: a
    TorchScript or pt2 archive's extra file), read without loading the program, bounded and checked;
    ArtifactError when it is missing, too large or not an object."""
    data = read_member(path, "/" + member)
    try:
        if data is None:
            raise ValueError(f"it has no {member}")
        return json_object(data, f"its {member}")
    except ValueError as e:
        raise ArtifactError(f"{printable(path)} holds no readable vtk metadata ({e})") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: JSON that Python reads as infinity, which no report may hold
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


def json_object(data: str | bytes, what: str) -> dict:
    """`data` parsed as a JSON object; ValueError (saying what `what` holds instead) for anything else."""
    if len(data) > MAX_METADATA_BYTES:
        raise ValueError(f"{what} is larger than {_mb(MAX_METADATA_BYTES)}")
    try:
        value = json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"{what} is nested too deep") from None
    except ValueError as e:  # JSONDecodeError, a bad constant, undecodable bytes
        raise ValueError(f"{what} is not JSON ({printable(str(e))[:80]})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is a JSON {_JSON_TYPES[type(value)]}, not an object")
    return value


def vtk_section(flat: dict, where: str) -> tuple[dict, str | None]:
    """vtk's own metadata (the JSON object under "vtk" in a file's key/value metadata), with why it is
    unusable when it is not an object (then {}); ({}, None) when the file has none."""
    value = flat.get("vtk")
    if value is None or isinstance(value, dict):
        return value or {}, None
    try:
        if not isinstance(value, (str, bytes)):
            raise ValueError(f"{where}'s vtk metadata is a JSON {_JSON_TYPES.get(type(value), 'value')}, not an "
                             f"object")
        return json_object(value, f"{where}'s vtk metadata"), None
    except ValueError as e:
        return {}, str(e)


def checked_dims(dims, where: str) -> tuple[int | str | None, ...]:
    """A declared input shape: each dimension a size >= 1, a name (a free dimension) or None; anything else
    (a negative or zero size, a float, a nested list) is an ArtifactError."""
    if not isinstance(dims, (list, tuple)) or not 1 <= len(dims) <= 8:
        raise ArtifactError(f"{where} declares an input shape that is not a list of 1 to 8 dimensions")
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, str, type(None))):
            raise ArtifactError(f"{where} declares input dimension {printable(repr(d))[:40]}, which is not a size")
        if isinstance(d, int) and d < 1:
            raise ArtifactError(f"{where} declares input dimension {d}; sizes are 1 or more")
        out.append(printable(d)[:64] if isinstance(d, str) else d)
    return tuple(out)


def elements(shape) -> int:
    return math.prod(int(d) for d in shape)


def check_elements(shape: tuple[int, ...], where: str, batch: int = 1) -> None:
    """Refuse, before anything is allocated, a batch of `shape` larger than one input tensor vtk builds."""
    n = batch * elements(shape)
    if n > MAX_ELEMENTS:
        raise ArtifactError(f"{where} takes input [{batch}, {', '.join(map(str, shape))}]: {n:,} elements, more "
                            f"than the {MAX_ELEMENTS:,} vtk builds for one batch; not benched")


def text_field(meta: dict, key: str, default: str) -> str:
    """A short string field of metadata (a dtype, a dataset name); `default` when absent."""
    value = meta.get(key, default)
    if not isinstance(value, str) or len(value) > 200:
        raise Unusable(f"its metadata's {key} is not a name")
    return value


def _numbers(value, name: str, channels: int) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise Unusable(f"its metadata's {name} is not a list of numbers")
    if len(value) not in (1, channels):
        raise Unusable(f"its metadata's {name} has {len(value)} values for {channels}-channel images")
    if not all(math.isfinite(v) for v in value):
        raise Unusable(f"its metadata's {name} is not finite")
    return tuple(float(v) for v in value) * (channels if len(value) == 1 else 1)


def normalisation(meta: dict, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel from vtk's metadata (its "preprocess" section); `Unusable` when absent or
    wrong: finite numbers, one per channel (or one for all), every std > 0."""
    prep = meta.get("preprocess")
    if prep is None:
        raise Unusable("its metadata says nothing of how inputs were normalised (no preprocess mean and std)")
    if not isinstance(prep, dict):
        raise Unusable("its metadata's preprocess is not an object")
    mean, std = _numbers(prep.get("mean"), "mean", channels), _numbers(prep.get("std"), "std", channels)
    if any(s <= 0 for s in std):
        raise Unusable("its metadata's std is not above 0 everywhere")
    return mean, std


def read_sidecar(path: Path) -> dict:
    """The metadata of a format with no field for it (an ExecuTorch program, a LiteRT file): the bounded JSON
    object in <file>.json beside it."""
    sidecar = path.with_name(path.name + ".json")
    try:
        with open(sidecar, "rb") as f:
            data = f.read(MAX_METADATA_BYTES + 1)
        return json_object(data, f"{printable(sidecar.name)}")
    except OSError as e:
        raise ArtifactError(f"{printable(path)} has no readable metadata sidecar {printable(sidecar.name)} "
                            f"({e.strerror or e})") from None
    except ValueError as e:
        raise ArtifactError(f"{printable(path)}: {e}") from None


def read_bounded(path: Path, limit: int, too_big: str) -> bytes:
    """A handed file's bytes, refused unread when larger than `limit`: "<path> is <n> bytes<too_big>"."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise ArtifactError(f"{printable(path)} is {size:,} bytes{too_big}")
        return path.read_bytes()
    except OSError as e:
        raise ArtifactError(f"cannot read {printable(path)}: {e.strerror or e}") from None
