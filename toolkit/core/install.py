"""Which of vtk's two installs is present, and the one line that says what to add.

torch and ONNX Runtime come from an extra (`full`: the CUDA builds; `cpu`: the CPU-only wheels;
see pyproject.toml), so a bare `pip install .` has neither, and the CPU-only install has no
torchvision. Each of those gaps gets a sentence naming the install that fills it, instead of
an ImportError from deep inside a command.
"""

from __future__ import annotations

from importlib.util import find_spec

from vtk_vision.core.errors import VtkError

__all__ = ["MissingPackage", "missing_stack", "require_full", "require_torchvision", "require_executorch"]

INSTALLS = ("pip install -e '.[cpu]' (CPU only, about 1.5 GB) or pip install -e '.[full]' "
            "(CUDA build, about 6 GB, runs on CPU too)")


class MissingPackage(VtkError):
    """A package one of vtk's installs brings is not installed."""


def missing_stack() -> str | None:
    """The sentence for a missing torch or ONNX Runtime, or None when both are there."""
    missing = [name for name, module in (("PyTorch", "torch"), ("ONNX Runtime", "onnxruntime"))
               if find_spec(module) is None]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed: vtk needs one of its two installs, {INSTALLS}"


def require_full(module: str, what: str, why: str) -> None:
    """Raise the one-line error for `what` when `module`, which only the full install brings, is absent."""
    if find_spec(module) is None:
        raise MissingPackage(f"{what} needs {why}, which the CPU-only install leaves out; install vtk with "
                             f"pip install -e '.[full]'")


def require_torchvision(what: str) -> None:
    """The CPU-only install has no torchvision: no torchvision build on the registry imports beside the CPU-only
    torch wheel."""
    require_full("torchvision", what, "torchvision (no build of it imports beside the CPU-only torch wheel)")


def require_executorch(what: str) -> None:
    """ExecuTorch links torch 2.15's libtorch, so it is part of the full install only."""
    require_full("executorch", what, "ExecuTorch (it links the libtorch of the full install's torch 2.15)")
