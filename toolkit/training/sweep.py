"""`vtk sweep`: one training run per combination of option values, ranked by validation accuracy.

A combination that fails (diverges, or any other error vtk can name) becomes a
row with its reason and the sweep goes on; the best finished run becomes
`runs/latest`. Ctrl-C stops the whole sweep.

    sweep(TrainConfig(model="lenet5", epochs=5), {"lr": [1e-3, 5e-4], "weight_decay": [5e-3, 1e-3]})
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from vtk_vision.core.errors import VtkError
from vtk_vision.core.text import printable
from vtk_vision.runs.config import TrainConfig
from vtk_vision.runs.folder import RunFolder
from vtk_vision.runs.schema import RunRecord

__all__ = ["SweepRow", "SweepResult", "combinations", "sweep"]


@dataclass(frozen=True)
class SweepRow:
    values: dict[str, Any]      # this combination's option values, by TrainConfig field (or model argument)
    folder: RunFolder | None
    record: RunRecord | None
    error: str | None = None    # why this combination has no finished run

    @property
    def finished(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class SweepResult:
    options: tuple[str, ...]    # the swept options, in the order given
    rows: tuple[SweepRow, ...]  # best validation accuracy first

    @property
    def best(self) -> SweepRow:
        return self.rows[0]  # a sweep with no finished row raises instead of returning


def combinations(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the order given; one empty combination for no grid."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]


def _apply(base: TrainConfig, values: dict[str, Any], model_args: set[str]) -> TrainConfig:
    fields = {k: v for k, v in values.items() if k not in model_args}
    margs = {k: v for k, v in values.items() if k in model_args}
    return replace(base, **fields, model_args=base.model_args | margs)


def sweep(base: TrainConfig, grid: dict[str, list], model_args: set[str] = frozenset(),
          fit_one: Callable[[TrainConfig], Any] | None = None,
          on_combination: Callable[[int, int, dict], None] = lambda i, n, values: None) -> SweepResult:
    """Train `base` once per combination of `grid`; `runs/latest` ends at the best validation accuracy.

    `model_args` names the grid keys that are model arguments rather than TrainConfig fields;
    `fit_one` trains one config and returns a `FitResult` (default: `fit`, without progress).
    """
    from vtk_vision.training.trainer import TrainingInterrupted

    if fit_one is None:
        from vtk_vision.training.trainer import fit as fit_one
    combos = combinations(grid)
    rows = []
    for i, values in enumerate(combos, 1):
        on_combination(i, len(combos), values)
        try:
            result = fit_one(_apply(base, values, set(model_args)))
        except TrainingInterrupted:
            raise  # Ctrl-C / SIGTERM stops the whole sweep
        except VtkError as e:  # this combination's failure is its row
            rows.append(SweepRow(values, None, None, printable(e)))
            continue
        rows.append(SweepRow(values, result.folder, result.record))
    if not any(r.finished for r in rows):
        raise VtkError(f"every combination failed; the first: {rows[0].values}: {rows[0].error}")
    rows.sort(key=lambda r: (not r.finished, -r.record.accuracy["val"] if r.finished else 0))
    rows[0].folder.set_latest()
    return SweepResult(tuple(grid), tuple(rows))
