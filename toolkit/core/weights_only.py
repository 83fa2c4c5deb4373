"""PyTorch pickles loaded only as data, and PyTorch's refusal of one said in a clause that fits one line.

`torch.load(weights_only=True)` refuses a file whose pickle names a Python object (it would run code), but
its message goes on to advise re-running with `weights_only=False` or allow-listing the object: exactly
what must not be done with a handed file. Its message is also long, so cutting it to a length cut a
sentence or a URL in half, and a protocol-4 pickle got a two-line UserWarning printed before it. Here only
what was refused is kept.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_weights_only", "refused_global", "refusal_reason"]

_ADVICE = ("weights_only", "trusted source", "documentation", "file an issue", "safe_globals", "allowlist")
_MOST = 120  # characters of PyTorch's reason kept; longer reasons end at a word with "..."


def load_weights_only(path: Path) -> Any:
    """torch.load through the weights-only unpickler, on CPU, without the warning it prints about a pickle
    protocol it was not written with (the refusal that follows says enough)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, weights_only=True, map_location="cpu")


def refused_global(error: BaseException) -> str | None:
    """The Python object a refused pickle names (`posix.system`), if that is why it was refused."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    return found.group(1) if found else None


def _clause(text: str) -> str:
    sentence = re.split(r"(?<=[.;])\s", text.strip(), maxsplit=1)[0].rstrip(".;")
    if len(sentence) <= _MOST:
        return sentence
    return sentence[:_MOST].rsplit(" ", 1)[0] + "..."


def refusal_reason(error: BaseException) -> str:
    """Why torch.load refused a file, as a clause: the object it names, or PyTorch's first line that is not
    advice, to its first sentence; never a cut word or URL, never the advice to load it unrestricted."""
    if (name := refused_global(error)) is not None:
        return f"it names the Python object {name}, which only an unrestricted unpickler loads"
    text = re.sub(r"\S+://\S+", "", str(error).split("WeightsUnpickler error:")[-1])  # a URL is never kept
    for line in text.splitlines():
        if line.strip() and not any(a in line for a in _ADVICE):
            return _clause(line)
    return type(error).__name__
