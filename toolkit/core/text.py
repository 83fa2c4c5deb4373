"""Strings from outside (paths, file and class names, messages) made safe to print.

A class folder can be named `[/x]` (rich markup: it crashed the table), a
run.json can carry ESC sequences (they reached the terminal raw), and a file
name can hold bytes that are not UTF-8 (Python keeps them as lone
surrogates, which cannot be encoded for output). vtk's consoles never
interpret markup, and every string goes through `printable` first: control
characters and undecodable bytes become visible escapes like `\\x1b`.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]


def _escape(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, keep_newlines: bool = False) -> str:
    """`text` as a string with every control character and undecodable byte shown as an escape."""
    s = str(text)
    return "".join(ch if (ch == "\n" and keep_newlines) or ch == "\t"
                   or unicodedata.category(ch) not in ("Cc", "Cs", "Cf") else _escape(ch) for ch in s)
