"""`torch.export` ExportedProgram (.pt2): the forward-looking PyTorch format.

Metadata goes both inside the archive (extra files) and beside it as
`<file>.json`, so a deployer can read it without loading the program.

Loading is guarded. `torch.export.load` unpickles parts of the archive, and
where the safe (weights-only) unpickler fails it falls back to an
unrestricted one, so a crafted archive runs its payload on load. Every load
here runs with PyTorch's own switch TORCH_FORCE_WEIGHTS_ONLY_LOAD=1, which
overrides even an explicit `weights_only=False`, and with the two other
unpicklers an archive can reach (opaque Python objects and TorchBind
objects, neither of which vtk ever writes) refused. A refusal is an
ArtifactError: one line, exit 1.

An archive also carries strings that become Python: `guards_code`, which
`ExportedProgram.module()` hands to `exec` (with its default
`check_guards=True`), and every node's target, which the deserializer looks
up by dotted name from `torch`, `math` or `operator` and keeps when it is
any callable (`torch.os.system` resolves). vtk writes archives with no
guards code and plain ATen operators only, so it loads with `check_guards=False`
and refuses any archive with guards code or with a node that calls anything
but an ATen/prims operator or shape arithmetic. Higher-order operators
(`while_loop`, `cond`) are refused with them: a loop is how a graph would
never end.
"""

from __future__ import annotations

import io
import json
import operator
import os
import pickle
import re
import tokenize
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import sympy
import torch

from vtk_vision.core.artifact_metadata import archive_metadata
from vtk_vision.core.errors import ArtifactError, ExportError
from vtk_vision.core.text import printable
from vtk_vision.core.logs import quiet
from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.formats import Format
from vtk_vision.exporters.runner import Runner, require_cuda, torch_runner

__all__ = ["FORMAT", "safe_load"]

EXTRA = "vtk.json"
_FORCE, _NO_FORCE = "TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


class _Refused(Exception):
    """Not a RuntimeError: torch.export.load swallows those and tries a legacy path."""


def _refuse(*args, **kwargs):
    raise _Refused("an unrestricted unpickler was asked for")


# What a symbolic shape of torch.export may say: sympy's constructors and functions for integer shape
# arithmetic, and their assumptions. No attribute access, no other names: sympify evaluates with eval.
_SYMPY_NAMES = {"Symbol", "Integer", "Rational", "Float", "True", "False", "None", "oo", "Max", "Min", "Mod",
                "Abs", "floor", "ceiling", "Pow", "Mul", "Add", "sqrt", "Eq", "Ne", "Lt", "Le", "Gt", "Ge",
                "And", "Or", "Not", "positive", "negative", "nonnegative", "nonpositive", "integer", "real",
                "finite", "zero", "even", "odd"}
_OPERATORS = {"(", ")", ",", "=", "+", "-", "*", "/", "//", "%", "**", "<", ">", "<=", ">=", "==", "!=", "&", "|", "~"}
_QUOTED_NAME = re.compile(r"""^(['"])[A-Za-z_][A-Za-z0-9_]*\1$""")


def _plain_expression(text: str, known: set[str]) -> bool:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER) or tok.type == tokenize.NUMBER:
            continue
        if tok.type == tokenize.NAME and (tok.string in _SYMPY_NAMES or tok.string in known) \
                and not tok.string.startswith("__"):
            continue
        if tok.type == tokenize.OP and tok.string in _OPERATORS:
            continue
        if tok.type == tokenize.STRING and _QUOTED_NAME.match(tok.string):
            continue
        return False
    return True


def _guarded_sympify(original):
    def sympify(expr, *args, **kwargs):
        if isinstance(expr, str) and not _plain_expression(expr, set(kwargs.get("locals") or {})):
            raise _Refused("a symbolic shape is not plain arithmetic")
        return original(expr, *args, **kwargs)
    return sympify


@contextmanager
def _weights_only_everywhere() -> Iterator[None]:
    from torch.export.pt2_archive import _package

    saved = {k: os.environ.get(k) for k in (_FORCE, _NO_FORCE)}
    os.environ[_FORCE] = "1"
    os.environ.pop(_NO_FORCE, None)
    try:
        with mock.patch.object(_package, "pickle", mock.Mock(loads=_refuse)), \
                mock.patch.object(torch._C, "_pickle_load_obj", _refuse), \
                mock.patch.object(sympy, "sympify", _guarded_sympify(sympy.sympify)):
            yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _plain_call(target) -> bool:
    """An ATen or prims operator, `getitem` of a multi-output op, or symbolic shape arithmetic."""
    from torch._export.serde.serialize import _SYM_OPS

    if isinstance(target, torch._ops.OpOverload):
        return target.namespace in ("aten", "prims")
    return target is operator.getitem or target in _SYM_OPS


def _code_in(program: torch.export.ExportedProgram) -> str | None:
    """What in a loaded program would run as Python beyond its operators, or None."""
    if program._guards_code:
        return "guards code (Python that torch.export runs with exec)"
    for module in program.graph_module.modules():
        for node in getattr(module, "graph", torch.fx.Graph()).nodes:
            if node.op in ("call_module", "call_method") or \
                    (node.op == "call_function" and not _plain_call(node.target)):
                return f"a call to {printable(str(getattr(node.target, '__name__', node.target)))[:80]} (not a plain " \
                       f"ATen operator)"
    return None


_MAX_JSON = 64 << 20  # a program's JSON (models/model.json): vtk's LeNet-5 writes ~40 KB, resnet18 ~0.5 MB


def _refuse_huge_json(path: Path) -> None:
    """torch.export.load parses the archive's JSON members whole: one that declares more is refused unread
    (a header that understates its size fails the zip reader's own size check)."""
    try:
        with zipfile.ZipFile(path) as z:
            big = next((i for i in z.infolist() if i.filename.endswith(".json") and i.file_size > _MAX_JSON), None)
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip: torch.export.load names the problem below
    if big is not None:
        raise ArtifactError(f"{printable(path)}: its {printable(big.filename)} inflates to {big.file_size:,} bytes, "
                            f"more than the {_MAX_JSON:,} vtk parses; refused")


def safe_load(path: Path, extra_files: dict | None = None) -> torch.export.ExportedProgram:
    """`torch.export.load` with every unrestricted unpickler refused, and any program holding code refused."""
    _refuse_huge_json(path)
    try:
        with _weights_only_everywhere(), quiet("torch._export.serde.serialize", "torch.export",
                                               "torch.export.pt2_archive._package"):
            program = torch.export.load(str(path), extra_files=extra_files)
    except (pickle.UnpicklingError, _Refused) as e:
        what = ("a symbolic shape that is not plain arithmetic (sympy would evaluate it as Python)"
                if "symbolic" in str(e) else "pickled Python objects that only an unrestricted unpickler would load")
        raise ArtifactError(f"{printable(path)} holds {what}, and that can run code; vtk refuses it. Export the "
                            f"model again with `vtk export --format pt2`") from None
    except Exception as e:  # a damaged archive fails in many ways; all mean the same to the user
        raise ArtifactError(f"{printable(path)} is not a readable torch.export archive ({type(e).__name__}: "
                            f"{printable(str(e).splitlines()[0][:200]) if str(e) else 'no message'})") from None
    if (code := _code_in(program)) is not None:
        raise ArtifactError(f"{printable(path)} holds {code}; vtk never writes that and will not run it. Export the "
                            f"model again with `vtk export --format pt2`")
    return program


def write(module: torch.nn.Module, example: torch.Tensor, path: Path, opts: ExportOptions,
          metadata: dict[str, str]) -> None:
    dynamic = {"images": {0: torch.export.Dim("batch", min=1, max=1 << 20)}} if opts.dynamic_batch else None
    try:
        program = torch.export.export(module, (example,), dynamic_shapes=dynamic)
    except Exception as e:  # export raises many types; all are an export failure to the user
        raise ExportError(f"torch.export failed: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    _save(program, path, metadata)


def _save(program: torch.export.ExportedProgram, path: Path, metadata: dict[str, str]) -> None:
    # Through memory, so that a full disk is Python's OSError (caught and named by the atomic writer)
    # rather than an exception inside PyTorch's C++ archive writer, which aborts the process.
    import io

    buf = io.BytesIO()
    torch.export.save(program, buf, extra_files={EXTRA: json.dumps(metadata)})
    path.write_bytes(buf.getvalue())


def embed(path: Path, metadata: dict[str, str]) -> None:
    _save(safe_load(path), path, metadata)


def load(path: Path, provider: str = "cpu", threads: int = 1) -> Runner:
    program = safe_load(path)
    if provider == "cuda":  # an ExportedProgram's module cannot simply be .to()-ed: its constants are lifted
        require_cuda("torch.export on cuda")
        program = torch.export.passes.move_to_device_pass(program, "cuda")
    # check_guards=False: the guards would be exec'd Python (safe_load refuses archives that carry any)
    return torch_runner("pt2", program.module(check_guards=False), provider)


def read_metadata(path: Path) -> dict:
    return archive_metadata(path, f"extra/{EXTRA}")  # read as data, bounded: the program is not loaded


FORMAT = Format("pt2", order=3, description="torch.export ExportedProgram", providers=("cpu", "cuda"), load=load,
                suffix=".pt2", write=write, embed=embed, read_metadata=read_metadata, vet=safe_load,
                metadata_sidecar=True)  # <file>.json: metadata a deployer can read without loading the program
