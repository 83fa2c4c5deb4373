"""One family of exceptions for everything a user can get wrong.

Library code raises these with a message that says what was wrong and what to
do; `vtk_vision.cli` turns them into one line on stderr and exit code 1. Anything
else escaping is a bug in vtk and keeps its traceback.
"""

__all__ = ["VtkError", "UnknownNameError", "InputSizeError", "DataError", "RunError",
           "ExportError", "ValidationError", "ProviderError", "ArtifactError"]


class VtkError(Exception):
    """A user-facing error: its message is the whole story."""


class UnknownNameError(VtkError):
    """A model, dataset, format or runtime name that is not registered."""

    def __init__(self, kind: str, name: str, valid: list[str]):
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(valid)}")


class InputSizeError(VtkError):
    """An input size a model cannot take, caught before any forward pass."""


class DataError(VtkError):
    """A dataset that is missing, malformed, or does not fit the model."""


class RunError(VtkError):
    """A run directory that is missing, incomplete or corrupt."""


class ExportError(VtkError):
    """An export that could not be produced."""

    @classmethod
    def step_failed(cls, what: str, e: Exception) -> "ExportError":
        """A converter step that raised (they raise many types, all an export failure): its first line only."""
        from vtk_vision.core.text import printable

        said = str(e).strip()
        return cls(f"{what} failed: {type(e).__name__}: "
                   f"{printable(said.splitlines()[0][:300]) if said else 'no message'}")


class ValidationError(ExportError):
    """An artifact that does not match eager PyTorch within tolerance."""


class ProviderError(VtkError):
    """A requested execution provider or device that is not really available."""


class ArtifactError(VtkError):
    """An artifact file vtk will not load: unreadable, or able to run code it was not asked to run."""
