"""What `vtk datasets` reports: each named dataset, where it was found, and whether it is decoded yet.

Listing never decodes or unpacks: the first `vtk datasets` once spent 37 s
unpacking CIFAR-10's tarball just to count its images. Sizes come from the
decoded cache's header when there is a fresh entry, else from the source
files' own headers where the format has them (IDX), else they are unknown
until the first use; a number that was not read is never shown.
"""

from __future__ import annotations

from pathlib import Path

from vtk_vision.core.errors import DataError
from vtk_vision.core.paths import data_root
from vtk_vision.data.cache import cached_shapes
from vtk_vision.data.datasets import find_source, missing_error, source_label
from vtk_vision.data.entries import DATASETS, DatasetEntry

__all__ = ["survey"]


def survey(data_dir: str | Path | None = None) -> list[dict]:
    """One row per built-in dataset: source (None when not found, with `error`), `decoded` (a fresh cache
    entry exists), train/test sizes and shape when known without decoding (else None), classes."""
    root = data_root(data_dir)
    rows: dict[str, dict] = {}
    for name, entry in DATASETS.items():
        if entry.rgb_of is not None:  # the grey entry's files, three channels
            grey = rows[entry.rgb_of]
            shape = grey.get("shape")
            rows[name] = grey | {"name": name, "shape": shape and [3, *shape[1:]],
                                 "mean": grey.get("mean") and grey["mean"] * 3, "std": grey.get("std") and grey["std"] * 3}
            if grey.get("error"):
                rows[name]["error"] = f"{name} is {entry.rgb_of} in three channels: {grey['error']}"
            continue
        rows[name] = _row(entry, root)
    return list(rows.values())


def _row(entry: DatasetEntry, root: Path) -> dict:
    found = find_source(entry, root)
    if found is None:
        return {"name": entry.name, "source": None, "decoded": False,
                "error": str(missing_error(entry, root)).split(" (looked for")[0]}
    src, files = found
    row = {"name": entry.name, "source": source_label(files), "decoded": False, "train": None, "test": None,
           "shape": None, "classes": list(entry.classes or ()), "mean": None, "std": None}
    cache = cached_shapes(entry.name, files)
    if cache is not None:
        info = cache["info"]
        return row | {"decoded": True, "train": cache["train_y"][0], "test": cache["test_y"][0],
                      "shape": cache["train_x"][1:], "classes": list(info["classes"]),
                      "mean": [round(m, 4) for m in info["mean"]], "std": [round(s, 4) for s in info["std"]]}
    try:
        return row | (src.peek(root) if src.peek else {})
    except DataError as e:  # a damaged header: named here, as loading would name it
        return row | {"error": str(e)}
