"""`vtk recommend`: the artifact to ship under a latency, accuracy and size budget, from measured rows only.

    rec = recommend(read_sources([path]), Constraints(max_p99_ms=1.0, max_accuracy_drop_pts=0.3))
    rec.pick, rec.why, rec.front, rec.rejected

Nothing is measured again: the rows are bench.json's (the closed loop's, or
with `scenario="server"` LoadGen's load rows). A row is kept when it meets
every constraint; a figure it lacks ("not measured": accuracy without
labels, the size of eager PyTorch, a p99 from fewer calls than LoadGen's
early-stopping bound) cannot show that it meets one, so the row is rejected
with that reason, and where no constraint asks for it the figure only
counts against the row on the Pareto front (one-sided: a missing figure
never wins a comparison).

The front is the rows no other kept row beats on every axis: speed (p50
latency of the closed loop, or the server's peak request rate), accuracy
and size. The one to ship is the fastest on the front; rows whose speed is
the same within noise are ties (for latency: the 95% bootstrap interval of
the p50 ratio that `vtk compare` uses reaches into 1 +- 5%; for a peak rate:
within the search's 5%), broken by the smaller file, then the higher
accuracy. When nothing fits, the closest row is named: the fewest
constraints missed, then the smallest overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vtk_vision.bench.compare import TOLERANCE, ratio_interval
from vtk_vision.bench.keys import load_key, report_threads, row_key
from vtk_vision.bench.percentiles import min_samples, trusted
from vtk_vision.core.errors import VtkError

__all__ = ["Candidate", "Constraints", "Recommendation", "candidates", "recommend"]

SEARCH_PRECISION = 0.05  # bench/loadgen_scenarios.py brackets a peak rate to within 5%
_TIE_RULE = {True: "peak rates within 5%", False: "95% intervals of the p50 ratio reach 1 +- 5%"}


@dataclass(frozen=True)
class Constraints:
    max_p99_ms: float | None = None
    max_accuracy_drop_pts: float | None = None  # percentage points below eager PyTorch on CPU
    max_size_bytes: int | None = None
    scenario: str | None = None                 # "server": LoadGen's load rows instead of the closed loop
    min_qps: float | None = None                # with scenario "server": the peak rate meeting the bench's budget

    def __post_init__(self):
        if self.min_qps is not None and self.scenario != "server":
            raise VtkError("--min-qps is a request rate under load: it goes with --scenario server (a closed "
                           "loop's images/s is no request rate)")
        for name in ("max_p99_ms", "max_accuracy_drop_pts", "max_size_bytes", "min_qps"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value < float("inf")):
                raise VtkError(f"{name} must be a finite number of at least 0, not {value!r}")


@dataclass(frozen=True)
class Candidate:
    """One measured row, with the figures the constraints and the front read; None: not measured."""

    name: str
    source: str
    p50_ms: float | None
    p99_ms: float | None          # None also where too few calls stand behind it (see p99_note)
    p99_note: str | None
    accuracy: float | None
    accuracy_drop_pts: float | None
    size_bytes: int | None
    qps: float | None             # server: the peak rate meeting the bench's budget (None without --slo)
    qps_note: str | None = None   # why qps is None
    p99_invalid_ms: float | None = None  # a p99 LoadGen measured in a run it called INVALID: no proof of a budget
    samples_ms: list[float] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "samples_ms"}


@dataclass(frozen=True)
class Recommendation:
    constraints: Constraints
    pick: Candidate | None
    why: str
    front: list[Candidate]
    fits: list[Candidate]
    rejected: list[tuple[Candidate, list[str]]]
    ties: list[Candidate]
    closest: Candidate | None = None     # when nothing fits

    def to_dict(self) -> dict:
        return {"constraints": self.constraints.__dict__, "pick": self.pick and self.pick.to_dict(), "why": self.why,
                "front": [c.to_dict() for c in self.front], "fits": [c.name for c in self.fits],
                "ties": [c.name for c in self.ties],
                "rejected": [{"row": c.name, "missed": reasons} for c, reasons in self.rejected],
                "closest": self.closest and self.closest.to_dict()}


def _closed(row: dict, report: dict, source: str, label: str) -> Candidate:
    lat, delta = row["latency_ms"], row.get("accuracy_delta")
    n = lat.get("n")
    p99_ok = trusted(n, 0.99)
    return Candidate(row_key(row, report_threads(report)) + label, source, lat.get("p50"),
                     lat.get("p99") if p99_ok else None,
                     None if p99_ok else f"n<{min_samples(0.99)}" if isinstance(n, int) else "count not recorded",
                     row.get("accuracy"), None if delta is None else -100 * delta, row.get("size_bytes"), None,
                     samples_ms=row.get("samples_ms"))


def _load(row: dict, source: str, label: str) -> Candidate:
    lat, delta, n = row.get("latency_ms") or {}, row.get("accuracy_delta"), row.get("queries")
    p99_ok = trusted(n, 0.99) and row.get("validity") == "VALID"
    note = None if p99_ok else "LoadGen: INVALID" if row.get("validity") != "VALID" else f"n<{min_samples(0.99)}"
    name = load_key(row)
    slo = row.get("slo") or {}
    qps_note = ("peak rate not measured (bench with --slo)" if not slo else
                f"no rate met p{100 * slo.get('percentile', 0.99):g} <= {slo.get('budget_ms')} ms in the bench")
    measured = lat.get("p99") if trusted(n, 0.99) and row.get("validity") == "INVALID" else None
    return Candidate(name + label, source, lat.get("p50"), lat.get("p99") if p99_ok else None, note,
                     row.get("accuracy"), None if delta is None else -100 * delta, row.get("size_bytes"),
                     slo.get("peak_qps"), qps_note if slo.get("peak_qps") is None else None,
                     measured if isinstance(measured, (int, float)) else None, samples_ms=row.get("latencies_ms"))


def candidates(reports: list[tuple[str, dict]], scenario: str | None) -> list[Candidate]:
    """Every measured row of the reports ((source, report) pairs); rows are named by file when there are several."""
    out = []
    for i, (source, report) in enumerate(reports):
        label = f" [{i + 1}]" if len(reports) > 1 else ""
        if scenario is None:
            out += [_closed(r, report, source, label) for r in report["rows"] if r["status"] == "ok"]
            continue
        section = report.get("load") if isinstance(report.get("load"), dict) else {}
        rows = [r for r in section.get("rows") or [] if isinstance(r, dict) and r.get("status") == "ok"
                and r.get("scenario") == scenario]
        if not rows:
            raise VtkError(f"{source} holds no measured {scenario} rows; run `vtk bench --scenario {scenario}` first")
        out += [_load(r, source, label) for r in rows]
    return out


def _missed(c: Candidate, k: Constraints) -> list[str]:
    """The constraints `c` misses or cannot show it meets, one phrase each."""
    out = []
    if k.max_p99_ms is not None:
        if c.p99_ms is None and c.p99_invalid_ms is not None:
            out.append(f"p99 {c.p99_invalid_ms:.3g} ms from a run LoadGen called INVALID")
        elif c.p99_ms is None:
            out.append(f"p99 not measured ({c.p99_note})")
        elif c.p99_ms > k.max_p99_ms:
            out.append(f"p99 {c.p99_ms:.3g} ms > {k.max_p99_ms:g} ms")
    if k.max_accuracy_drop_pts is not None:
        if c.accuracy_drop_pts is None:
            out.append("accuracy not measured")
        elif c.accuracy_drop_pts > k.max_accuracy_drop_pts + 1e-9:
            out.append(f"accuracy drop {c.accuracy_drop_pts:.2f} pts > {k.max_accuracy_drop_pts:g}")
    if k.max_size_bytes is not None:
        if c.size_bytes is None:
            out.append("size not measured (no artifact file)")
        elif c.size_bytes > k.max_size_bytes:
            out.append(f"size {c.size_bytes / 1e3:,.0f} KB > {k.max_size_bytes / 1e3:,.0f} KB")
    if k.min_qps is not None:
        if c.qps is None:
            out.append(c.qps_note or "peak rate not measured (bench with --slo)")
        elif c.qps < k.min_qps:
            out.append(f"peak {c.qps:,.0f}/s < {k.min_qps:,.0f}/s")
    return out


def _overshoot(c: Candidate, k: Constraints) -> float:
    """How far past its limits a row is, summed in relative terms; a figure not measured counts as 1."""
    pairs = [(c.p99_ms, k.max_p99_ms, 1), (c.accuracy_drop_pts, k.max_accuracy_drop_pts, 1),
             (c.size_bytes, k.max_size_bytes, 1), (c.qps, k.min_qps, -1)]
    total = 0.0
    for value, limit, sign in pairs:
        if limit is None:
            continue
        if value is None:
            total += 1.0
        elif sign > 0:
            total += max(0.0, value - limit) / max(limit, 1e-9)
        else:
            total += max(0.0, limit - value) / max(limit, 1e-9)
    return total


def _axes(c: Candidate, server: bool) -> tuple[float, float, float]:
    """Lower is better on every axis; a figure not measured is the worst (one-sided)."""
    inf = float("inf")
    speed = (-c.qps if c.qps is not None else inf) if server else (c.p50_ms if c.p50_ms is not None else inf)
    return (speed, c.accuracy_drop_pts if c.accuracy_drop_pts is not None else inf,
            c.size_bytes if c.size_bytes is not None else inf)


def _pareto(rows: list[Candidate], server: bool) -> list[Candidate]:
    def beats(a, b) -> bool:
        x, y = _axes(a, server), _axes(b, server)
        return all(p <= q for p, q in zip(x, y)) and x != y
    return [c for c in rows if not any(beats(o, c) for o in rows if o is not c)]


def _same_speed(best: Candidate, other: Candidate, server: bool) -> bool:
    """Whether `other` is as fast as `best` within noise (the docstring's tie rule)."""
    if server:
        return best.qps is not None and other.qps is not None and other.qps * (1 + SEARCH_PRECISION) >= best.qps
    if best.samples_ms and other.samples_ms:
        low, high = ratio_interval(best.samples_ms, other.samples_ms)
        return not (low > 1 + TOLERANCE or high < 1 / (1 + TOLERANCE))
    return other.p50_ms == best.p50_ms


def _size_text(c: Candidate) -> str:
    return "no file" if c.size_bytes is None else f"{c.size_bytes / 1e3:,.0f} KB"


def _speed_text(c: Candidate, server: bool) -> str:
    return f"peak {c.qps:,.0f}/s" if server else f"p50 {c.p50_ms:.4g} ms"


def recommend(reports: list[tuple[str, dict]], k: Constraints) -> Recommendation:
    """The row to ship and why, the front, and every rejected row with what it missed; `pick` is None when
    nothing fits (then `closest` names the nearest row)."""
    server = k.scenario == "server"
    rows = candidates(reports, k.scenario)
    if not rows:
        raise VtkError("no measured rows to choose from: every row failed; bench again")
    rejected = [(c, m) for c in rows if (m := _missed(c, k))]
    fits = [c for c in rows if not _missed(c, k)]
    if not fits:
        # fewest constraints missed, then fewest of them unmeasured (a near miss is closer than an unknown)
        closest = min(rows, key=lambda c: (len(_missed(c, k)), sum("not measured" in m for m in _missed(c, k)),
                                           _overshoot(c, k)))
        return Recommendation(k, None, f"nothing meets every constraint; closest: {closest.name} "
                              f"({'; '.join(_missed(closest, k))})", [], [], rejected, [], closest)
    front = sorted(_pareto(fits, server), key=lambda c: _axes(c, server))
    fastest = front[0]
    ties = [c for c in fits if c is fastest or _same_speed(fastest, c, server)]
    pick = min(ties, key=lambda c: _axes(c, server)[2:] + _axes(c, server)[1:2])  # size, then accuracy
    why = (f"{pick.name}: of {len(fits)} row{'s' * (len(fits) != 1)} meeting every constraint, the fastest "
           f"({_speed_text(fastest, server)})" if pick is fastest and len(ties) == 1 else
           f"{pick.name}: ties on speed with {len(ties) - 1} other row{'s' * (len(ties) != 2)} of the {len(fits)} "
           f"meeting every constraint ({_TIE_RULE[server]}; "
           f"fastest {fastest.name}, {_speed_text(fastest, server)}); the smallest file ({_size_text(pick)}), then "
           f"the most accurate, breaks the tie")
    if pick.accuracy is not None:
        why += f"; accuracy {100 * pick.accuracy:.2f}%"
    return Recommendation(k, pick, why, front, fits, rejected, ties)
