"""What `vtk datasets` reports: each named dataset, where it was found, its splits."""

from __future__ import annotations

from pathlib import Path

from vtk_vision.data.datasets import load_dataset
from vtk_vision.data.entries import DATASETS
from vtk_vision.core.errors import DataError

__all__ = ["survey"]


def survey(data_dir: str | Path | None = None) -> list[dict]:
    """One row per built-in dataset; loading goes through the cache, so it is quick after the first time."""
    rows = []
    for name in DATASETS:
        try:
            ds = load_dataset(name, data_dir)
        except DataError as e:
            rows.append({"name": name, "source": None, "error": str(e).split(" (looked for")[0]})
            continue
        rows.append({"name": name, "source": ds.source, "train": len(ds.train), "test": len(ds.test),
                     "shape": list(ds.shape), "classes": list(ds.classes),
                     "mean": [round(m, 4) for m in ds.mean], "std": [round(s, 4) for s in ds.std]})
    return rows

