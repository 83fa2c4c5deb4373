"""Two bench files' LoadGen sections (`vtk bench --scenario`), configuration by configuration.

    loads = compare_loads(old_report, new_report)   # None when neither file has a load section
    title, columns, cells, right = load_change_table(loads)

A configuration is a runtime at a precision, provider, thread count, scenario,
worker count and largest batch (`keys.load_key`). For each one in both files
the old and the new row sit one above the other: the peak request rate at the
latency budget (server with `--slo`), or the rate asked for, the latency
percentiles from each query's scheduled time, and LoadGen's VALID/INVALID.

No interval and no faster/slower verdict is made up here: a peak rate is one
search, each of whose probes is a single LoadGen test, bracketed to within 5%
(bench/loadgen_scenarios.py), so a peak change under about 5% is inside the
search's own step. The new/old of the peaks is printed as it is. A
percentile from fewer queries than LoadGen's early stopping needs shows as
`n<662` (bench/percentiles.py), as in `vtk bench`, and is null in the JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from vtk_vision.bench.keys import load_key, runtime_label
from vtk_vision.bench.percentiles import shown, trusted
from vtk_vision.core.text import printable

__all__ = ["LoadChange", "LoadComparison", "LoadSide", "compare_loads", "load_change_notes", "load_change_table"]

PEAK_STEP = 0.05  # the peak search's bracket (loadgen_scenarios.SEARCH_PRECISION), named in the notes


@dataclass(frozen=True)
class LoadSide:
    """One file's row of a configuration: its figures as the file holds them (percentiles checked on use)."""

    status: str
    reason: str | None = None
    validity: str | None = None          # LoadGen's verdict: VALID | INVALID
    failed: list[str] = field(default_factory=list)  # LoadGen's checks that were not met
    budget: str | None = None            # 'p99 <= 1 ms' where the row searched a peak rate
    peak_qps: float | None = None        # None: no --slo, or no rate met the budget
    target_qps: float | None = None      # the rate the row's test ran at (server, offline)
    completed_qps: float | None = None
    queries: int | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    offline: bool = False                # one query of every sample: no per-query percentile

    def percentile(self, q: float) -> float | None:
        """The figure where the file's query count supports it (LoadGen's early-stopping bound), else None."""
        value = self.p50_ms if q == 0.5 else self.p99_ms
        return None if self.offline or not trusted(self.queries, q) else value

    def cell(self, q: float) -> str:
        if self.status != "ok" or self.offline:
            return "-"
        return shown(self.p50_ms if q == 0.5 else self.p99_ms, self.queries, q, ".3f")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["p50_ms"], out["p99_ms"] = self.percentile(0.5), self.percentile(0.99)  # null below the bound
        return out


@dataclass(frozen=True)
class LoadChange:
    key: str
    runtime: str
    scenario: str
    threads: int
    workers: int | None
    max_batch: int | None
    old: LoadSide
    new: LoadSide

    @property
    def peak_ratio(self) -> float | None:
        """new peak / old peak; None unless both rows found one."""
        a, b = self.old.peak_qps, self.new.peak_qps
        return b / a if a and b is not None else None


@dataclass(frozen=True)
class LoadComparison:
    rows: list[LoadChange]
    only_old: list[str]
    only_new: list[str]
    notes: list[str]

    def to_dict(self) -> dict:
        return {"rows": [{"key": r.key, "old": r.old.to_dict(), "new": r.new.to_dict(), "peak_ratio": r.peak_ratio}
                         for r in self.rows],
                "only_old": self.only_old, "only_new": self.only_new, "notes": self.notes,
                "peak": f"the highest rate LoadGen called VALID at the budget: one search per file, bracketed to "
                        f"within {100 * PEAK_STEP:g}%; no interval",
                "percentiles": "from each query's scheduled time; null where the row has fewer queries than "
                               "LoadGen's early stopping needs for that percentile (p99: 662)"}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _side(row: dict) -> LoadSide:
    if row["status"] != "ok":
        return LoadSide(printable(row["status"]), printable(str(row.get("reason") or "no reason recorded"))[:200])
    lat, slo = row.get("latency_ms") or {}, row.get("slo") if isinstance(row.get("slo"), dict) else None
    budget = None
    if slo is not None and _number(slo.get("budget_ms")) is not None:
        budget = f"p{100 * (_number(slo.get('percentile')) or 0.99):g} <= {slo['budget_ms']:g} ms"
    queries = row.get("queries")
    return LoadSide("ok", validity=printable(str(row.get("validity") or "not recorded"))[:20],
                    failed=[printable(str(k))[:40] for k, met in (row.get("checks") or {}).items() if met is False],
                    budget=budget, peak_qps=_number((slo or {}).get("peak_qps")),
                    target_qps=_number(row.get("target_qps")), completed_qps=_number(row.get("completed_qps")),
                    queries=queries if isinstance(queries, int) and not isinstance(queries, bool) else None,
                    p50_ms=_number(lat.get("p50")), p99_ms=_number(lat.get("p99")),
                    offline=row["scenario"] == "offline")


def _keyed(report: dict) -> dict[str, dict]:
    return {load_key(r): r for r in ((report.get("load") or {}).get("rows") or [])}


def compare_loads(old: dict, new: dict) -> LoadComparison | None:
    """Every LoadGen configuration in both files, in the new file's order; None when neither file has a load
    section. Rows are checked as data by `load_bench` (bench/load_checks.py) before they come here."""
    if old.get("load") is None and new.get("load") is None:
        return None
    a, b = _keyed(old), _keyed(new)
    rows = [LoadChange(k, runtime_label(r), r["scenario"], r["threads"], r.get("workers"), r.get("max_batch"),
                       _side(a[k]), _side(r)) for k, r in b.items() if k in a]
    notes = []
    for side, report in (("old", old), ("new", new)):
        if report.get("load") is None:
            notes.append(f"only the {'new' if side == 'old' else 'old'} file has LoadGen rows (vtk bench --scenario); "
                         f"the {side} file has none to set beside them")
    was, now = {c.old.budget for c in rows if c.old.budget}, {c.new.budget for c in rows if c.new.budget}
    if was and now and was != now:
        notes.append(f"the latency budget differs: {', '.join(sorted(was))} in the old file, "
                     f"{', '.join(sorted(now))} in the new: the peak rates answer different questions")
    durations = [((r.get("load") or {}).get("options") or {}).get("min_duration_s") for r in (old, new)]
    if all(isinstance(d, (int, float)) for d in durations) and durations[0] != durations[1]:
        notes.append(f"LoadGen's shortest test differs: {durations[0]:g} s in the old file, {durations[1]:g} s "
                     f"in the new (--load-s)")
    return LoadComparison(rows, [k for k in a if k not in b], [k for k in b if k not in a], notes)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def load_change_table(loads: LoadComparison) -> tuple[str, list[str], list[list[str]], set[str]]:
    """(title, columns, cells, right-aligned): two lines per configuration, the old file's then the new's."""
    searched = any(c.old.budget or c.new.budget for c in loads.rows)
    columns = ["runtime", "thr", "workers", "batch", "file", *(["peak/s", "new/old"] if searched else ["rate/s"]),
               "p50 ms", "p99 ms", "verdict"]
    cells = []
    for c in loads.rows:
        for name, side in (("old", c.old), ("new", c.new)):
            if searched:
                ratio = c.peak_ratio
                rates = [_rate(side.peak_qps), f"{ratio:.2f}" if name == "new" and ratio is not None else ""]
            else:
                rates = [_rate(side.target_qps)]
            verdict = side.validity if side.status == "ok" else side.status
            cells.append([c.runtime, str(c.threads), str(c.workers), str(c.max_batch), name, *rates,
                          side.cell(0.5), side.cell(0.99), verdict])
    scenarios = sorted({str(c.scenario) for c in loads.rows})
    budgets = sorted({b for c in loads.rows for b in (c.old.budget, c.new.budget) if b})
    title = (f"LoadGen {', '.join(scenarios)}, old then new"
             + (f": peak rate with {' / '.join(budgets)}" if budgets else ""))
    return title, columns, cells, {"thr", "workers", "batch", "peak/s", "new/old", "rate/s", "p50 ms", "p99 ms"}


def load_change_notes(loads: LoadComparison) -> list[str]:
    """The lines under the table: what the columns mean, why a row is INVALID or did not run, rows on one side."""
    out = []
    searched = any(c.old.budget or c.new.budget for c in loads.rows)
    if loads.rows:
        out.append(("peak/s: the highest rate LoadGen called VALID at the budget, one search a file bracketed to "
                    f"within {100 * PEAK_STEP:g}% with no interval, so a change under about {100 * PEAK_STEP:g}% is "
                    "inside the search's step; " if searched else "rate/s: the rate each test issued at; ")
                   + "p50/p99 from each query's scheduled time, n<662 where a row has too few queries for "
                     "LoadGen's early stopping; verdict: LoadGen's, in each file")
    for c in loads.rows:
        for name, side in (("old", c.old), ("new", c.new)):
            if side.status != "ok":
                out.append(f"{c.key}, {name}: {side.status}: {side.reason}")
                continue
            said = [f"{side.validity} ({', '.join(side.failed)} not met)"] if side.failed else []
            if side.budget and side.peak_qps is None:
                said.append(f"no rate met {side.budget}; its figures are at {_rate(side.target_qps)}/s, the slowest "
                            f"rate tried")
            elif searched and not side.budget:
                said.append(f"ran at {_rate(side.target_qps)}/s as asked; no peak searched (no --slo)")
            if said:
                out.append(f"{c.key}, {name}: {'; '.join(said)}")
    for side, keys in (("old", loads.only_old), ("new", loads.only_new)):
        if keys:
            out.append(f"LoadGen rows only in the {side} file: {', '.join(keys)}")
    return out + [f"note: {n}" for n in loads.notes]
