"""Which of vtk's two installs is present, and the one line that says what to add.

torch and ONNX Runtime come from an extra (`full`: the CUDA builds; `cpu`: the CPU-only wheels;
see pyproject.toml), so a bare `pip install .` has neither, and the CPU-only install has no
torchvision. Each of those gaps gets a sentence naming the install that fills it, instead of
an ImportError from deep inside a command.
"""

from __future__ import annotations

from importlib.util import find_spec

from vtk_vision.core.errors import VtkError

__all__ = ["MissingPackage", "missing_stack", "require_torchvision"]

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


def require_torchvision(what: str) -> None:
    """Raise the one-line error for `what` when torchvision is absent (the CPU-only install)."""
    if find_spec("torchvision") is None:
        raise MissingPackage(f"{what} needs torchvision, which the CPU-only install leaves out (no torchvision "
                             f"build on the registry imports beside the CPU-only torch wheel); install vtk with "
                             f"pip install -e '.[full]'")
