"""Two bench files, row by row: is the new one faster, slower, or the same within noise?

    comparison = compare_reports(load_bench(old_path), load_bench(new_path))
    failures(comparison, slower=0.10, accuracy_drop_pts=0.1)   # -> what breaks the thresholds

Rows are matched on `keys.row_key` (runtime, precision, provider, batch,
threads). A row's change is new p50 / old p50 with a 95% interval from a
seeded bootstrap of the two medians over the raw per-call samples both files
keep (drawn exactly through order statistics, see `_medians`). The verdict follows the interval, past a tolerance: slower when the
whole interval is above 1 + tolerance, faster when it is below
1 / (1 + tolerance), else the same within noise. The tolerance (5% unless
asked) is there because the samples of one bench cannot see what moves
between two benches: on this 2-core machine two benches of the same files a
minute apart differed by 1.7-3.3% on ONNX rows, two of them with intervals
under 1% wide. A file without raw samples (an older bench.json, or
`vtk bench --no-samples`) gets the verdict "no samples": its p50 ratio is
shown, but no interval or verdict is made up for it.
Accuracy is compared to the image through each row's `correct` count.
The LoadGen sections of `vtk bench --scenario` are set side by side in
bench/compare_load.py.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from vtk_vision.bench.compare_load import LoadComparison, compare_loads
from vtk_vision.bench.keys import report_threads, row_key, runtime_label
from vtk_vision.bench.load_checks import check_load_section
from vtk_vision.bench.percentiles import shown as percentile_cell
from vtk_vision.core.errors import VtkError
from vtk_vision.core.text import printable

__all__ = ["CHANGE_COLUMNS", "CHANGE_OPTIONAL", "VERDICTS", "Comparison", "Drift", "RowChange", "change_rows",
           "compare_reports", "context_notes", "drift", "failures", "load_bench", "ratio_interval"]

SEED = 14          # the same files always give the same intervals
RESAMPLES = 10_000  # bootstrap replicates of each median: one Beta draw each (see _medians), so they are cheap
TOLERANCE = 0.05   # changes inside +-5% are the same within noise (see above)
PRECISE_DRIFT = 0.05  # the calibration's interval (high / low - 1) must be this narrow for its drift to be divided out
MIN_MS, MAX_MS = 1e-6, 1e9  # a per-call time outside 1 ns .. 11 days is no measurement
SAMPLE_ROUNDING_MS = 1e-6   # bench.json keeps samples to 6 decimals in ms

VERDICTS = {"faster": "the whole 95% interval of new/old is below 1 / (1 + tolerance)",
            "slower": "the whole 95% interval of new/old is above 1 + tolerance",
            "same": "the 95% interval of new/old reaches into 1 +- tolerance: the same within noise",
            "no samples": "a file holds no raw samples for this row (older bench.json or --no-samples); "
                          "new/old is the ratio of the two p50s, with no interval",
            "old failed": "the row did not run in the old file", "new failed": "the row did not run in the new file",
            "not run": "the row ran in neither file (failed, or n/a: the runtime does not run on that provider)"}


@dataclass(frozen=True)
class RowChange:
    """One row present in both files."""

    key: str
    runtime: str                 # with its precision, as the bench table shows it
    provider: str
    batch: int
    threads: int | None
    verdict: str                 # one of VERDICTS
    old_p50: float | None = None
    new_p50: float | None = None
    ratio: float | None = None   # new p50 / old p50
    ci_low: float | None = None  # 95% bootstrap interval of the ratio; None without raw samples
    ci_high: float | None = None
    old_accuracy: float | None = None  # None: not measured
    new_accuracy: float | None = None
    correct_change: int | None = None  # images the new row gets right minus the old row's; None: not comparable
    unstable: bool = False       # either bench flagged the row unstable (its spread stayed over the limit)
    old_n: int | None = None     # calls behind each p50: fewer than LoadGen's bound print as n<11
    new_n: int | None = None

    @property
    def accuracy_change_pts(self) -> float | None:
        if self.old_accuracy is None or self.new_accuracy is None:
            return None
        return 100 * (self.new_accuracy - self.old_accuracy)


@dataclass(frozen=True)
class Drift:
    """The calibration workload's new/old (bench/calibration.py): how much the machine itself changed."""

    ratio: float
    ci_low: float
    ci_high: float
    applied: bool       # outside the tolerance and measured precisely: every row's new/old is divided by `ratio`
    workload: str

    @property
    def precise(self) -> bool:
        """Whether the calibration pins the drift down to within PRECISE_DRIFT: on a machine whose speed swung
        during the calibration (95% CI 0.50-0.81 under a load of 14 on 2 cores), dividing by it turned an
        unchanged ONNX row into "slower" by 36%."""
        return self.ci_high / self.ci_low - 1 <= PRECISE_DRIFT

    def describe(self, tolerance: float) -> str:
        change = f"{100 * (self.ratio - 1):+.1f}% (calibration: {self.workload}, new/old {self.ratio:.3f}, " \
                 f"95% CI {self.ci_low:.3f}-{self.ci_high:.3f})"
        if not self.precise:
            return (f"the machine's speed swung during the calibration: {change} is too wide to divide out; rows "
                    f"as measured, so part of any change may be the machine: bench both again on a quieter one")
        if self.applied:
            return (f"the machine drifted by {change}; each row's new/old, interval and verdict below are divided "
                    f"by {self.ratio:.3f}, so they judge the model and runtime, not the machine")
        return f"the machine held steady: {change} is within the {100 * tolerance:g}% tolerance; rows as measured"


@dataclass(frozen=True)
class Comparison:
    rows: list[RowChange]
    only_old: list[str]   # row keys in the old file alone
    only_new: list[str]
    notes: list[str] = field(default_factory=list)  # how the two benches' circumstances differ
    tolerance: float = TOLERANCE
    resamples: int = RESAMPLES
    seed: int = SEED
    drift: Drift | None = None  # None: a file holds no calibration (written before vtk measured one)
    load: LoadComparison | None = None  # the LoadGen sections (bench/compare_load.py); None: neither file has one

    def to_dict(self) -> dict:
        return {"rows": [asdict(r) | {"accuracy_change_pts": r.accuracy_change_pts} for r in self.rows],
                "drift": asdict(self.drift) if self.drift else None,
                "only_old": self.only_old, "only_new": self.only_new, "notes": self.notes, "verdicts": VERDICTS,
                "tolerance": self.tolerance, "load": self.load.to_dict() if self.load else None,
                "interval": f"95% percentile bootstrap of median(new)/median(old), {self.resamples} resamples, "
                            f"seed {self.seed}; p50 as the bench takes it (nearest rank)"}


def load_bench(path: Path) -> dict:
    """A bench report from `path`, or one line saying why it is not one."""
    what = f"{printable(path)} is not a vtk bench JSON file"
    try:
        report = json.loads(Path(path).read_text())
    except OSError as e:
        raise VtkError(f"cannot read {printable(path)}: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VtkError(f"{what} ({type(e).__name__}); give a file `vtk bench` wrote") from None
    rows = report.get("rows") if isinstance(report, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and {"runtime", "provider", "batch", "status"}
                                             <= r.keys() for r in rows):
        raise VtkError(f"{what} (no list of rows with runtime, provider, batch and status); "
                       f"give a file `vtk bench` wrote")
    try:  # every figure checked now: a bad file stops `vtk bench --compare` before any work, not after
        for row in rows:
            if row["status"] == "ok":
                _agrees(row, _p50(row), _samples(row))
                _accuracy_of(row)
        _calibration(report)
        check_load_section(report)  # `vtk bench --scenario`'s rows (bench/load_checks.py)
    except VtkError as e:
        raise VtkError(f"{printable(path)}: {e}") from None
    return report


def _keyed(report: dict) -> dict[str, dict]:
    default = report_threads(report)
    return {row_key(r, default): r | {"threads": r.get("threads") or default} for r in report["rows"]}


def _medians(rng: np.random.Generator, samples: np.ndarray, resamples: int) -> np.ndarray:
    """The p50 (nearest rank, as the bench takes it) of `resamples` bootstrap resamples of `samples`.

    Drawn exactly without resampling: the p50 of n values drawn from the samples is their m-th smallest
    (m = ceil(n / 2)), which is the sorted samples at the m-th smallest of n uniforms, and that uniform is
    Beta(m, n - m + 1). One Beta draw per replicate instead of n values: a 50,000-sample row costs what
    a 50-sample one does (40 large rows took 10.8 s by resampling, even subsampled to 4,096 a side)."""
    x = np.sort(samples)
    n = len(x)
    m = -(-n // 2)
    u = rng.beta(m, n - m + 1, resamples)
    return x[np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)]


def ratio_interval(old_ms, new_ms, *, seed: int = SEED, resamples: int = RESAMPLES) -> tuple[float, float]:
    """95% percentile-bootstrap interval of p50(new) / p50(old), from the raw per-call samples."""
    rng = np.random.default_rng(seed)
    old = _medians(rng, np.asarray(old_ms, dtype=float), resamples)
    new = _medians(rng, np.asarray(new_ms, dtype=float), resamples)
    low, high = np.percentile(new / old, [2.5, 97.5])
    return float(low), float(high)


def _samples(row: dict) -> np.ndarray | None:
    """The row's raw per-call times in ms, or None where the file kept none."""
    samples = row.get("samples_ms")
    if not isinstance(samples, list) or not samples:
        return None
    try:
        ms = np.asarray(samples, dtype=float)
    except (TypeError, ValueError, OverflowError):
        ms = np.array([math.nan])
    if ms.ndim != 1 or not np.all(np.isfinite(ms) & (ms >= MIN_MS) & (ms <= MAX_MS)):
        raise VtkError(f"row {row_key(row)} holds raw samples that are not positive numbers; "
                       f"compare files `vtk bench` wrote")
    return ms


def _plausible_ms(value: object) -> bool:
    """A per-call time no clock gives (a nanosecond or less, weeks) is a damaged file; refusing it also keeps
    every ratio finite and printable."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and MIN_MS <= value <= MAX_MS


def _p50(row: dict) -> float:
    p50 = row["latency_ms"].get("p50") if isinstance(row.get("latency_ms"), dict) else None
    if not _plausible_ms(p50):
        raise VtkError(f"row {row_key(row)} is ok but holds no usable p50; compare files `vtk bench` wrote")
    return float(p50)


def _agrees(row: dict, p50: float, samples: np.ndarray | None) -> None:
    """Refuse a row whose raw samples do not have the p50 it records: the verdict comes from the samples and
    the printed ratio from the p50s, so the two could otherwise contradict each other. The bench keeps
    samples rounded to 1 ns (6 decimals in ms); any median of them (nearest rank or midpoint) passes."""
    if samples is None:
        return
    x = np.sort(samples)
    low, high = x[(len(x) - 1) // 2], x[len(x) // 2]
    if not low - SAMPLE_ROUNDING_MS <= p50 <= high + SAMPLE_ROUNDING_MS:
        raise VtkError(f"row {row_key(row)} records p50 {p50:.6g} ms but its raw samples have median "
                       f"{low:.6g} ms; compare files `vtk bench` wrote, unedited")


def _accuracy_of(row: dict) -> float | None:
    """The row's accuracy, None where it was not measured (no labels); anything else that is not a fraction
    between 0 and 1 is refused, so a broken file can never pass `--fail-accuracy-drop`."""
    accuracy, correct = row.get("accuracy"), row.get("correct")
    fraction = isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool) and 0 <= accuracy <= 1
    counted = correct is None or (isinstance(correct, int) and not isinstance(correct, bool) and correct >= 0)
    if not ((accuracy is None or fraction) and counted):
        shown = printable(repr(accuracy if not (accuracy is None or fraction) else correct))[:40]
        field = "accuracy" if not (accuracy is None or fraction) else "correct"
        raise VtkError(f"row {row_key(row)} holds {field} {shown}, not a "
                       f"{'fraction between 0 and 1' if field == 'accuracy' else 'count of images'}; "
                       f"compare files `vtk bench` wrote")
    return None if accuracy is None else float(accuracy)


def _accuracy(old: dict, new: dict, same_split: bool) -> dict:
    acc = {"old_accuracy": _accuracy_of(old), "new_accuracy": _accuracy_of(new)}
    if same_split and isinstance(old.get("correct"), int) and isinstance(new.get("correct"), int):
        acc["correct_change"] = new["correct"] - old["correct"]
    return acc


def _calibration(report: dict) -> np.ndarray | None:
    """The calibration samples of a report, checked as data; None where it holds none."""
    cal = _get(report, "environment", "calibration")
    return _samples({"samples_ms": cal.get("samples_ms"), "runtime": "calibration", "provider": "cpu",
                     "batch": 0}) if isinstance(cal, dict) else None


def drift(old: dict, new: dict, tolerance: float = TOLERANCE, seed: int = SEED) -> Drift | None:
    """The machine's change between two benches, from their calibration samples; applied to the rows when its
    whole interval lies beyond the tolerance (the same rule as a row's verdict)."""
    a, b = _calibration(old), _calibration(new)
    if a is None or b is None:
        return None
    low, high = ratio_interval(a, b, seed=seed)
    ratio = float(np.median(b) / np.median(a))
    beyond = low > 1 + tolerance or high < 1 / (1 + tolerance)
    precise = high / low - 1 <= PRECISE_DRIFT
    return Drift(ratio, low, high, beyond and precise,
                 printable(_get(new, "environment", "calibration", "workload"))[:120])


def _change(key: str, old: dict, new: dict, same_split: bool, tolerance: float, seed: int,
            machine: float = 1.0) -> RowChange:
    ident = {"key": key, "runtime": runtime_label(new), "provider": new["provider"], "batch": new["batch"],
             "threads": new["threads"]}
    ran = (old["status"] == "ok", new["status"] == "ok")
    if not all(ran):
        return RowChange(**ident, verdict={(False, False): "not run", (False, True): "old failed",
                                           (True, False): "new failed"}[ran])
    p50s = {"old_p50": _p50(old), "new_p50": _p50(new)}
    ratio = p50s["new_p50"] / p50s["old_p50"] / machine  # `machine`: the drift divided out (1: none)
    counts = {"old_n": old["latency_ms"].get("n"), "new_n": new["latency_ms"].get("n")}
    measured = {**ident, **p50s, **counts, **_accuracy(old, new, same_split), "ratio": ratio,
                "unstable": bool(old.get("unstable") or new.get("unstable"))}
    old_ms, new_ms = _samples(old), _samples(new)
    if old_ms is None or new_ms is None:
        return RowChange(**measured, verdict="no samples")
    low, high = (v / machine for v in ratio_interval(old_ms, new_ms, seed=seed))
    verdict = "slower" if low > 1 + tolerance else "faster" if high < 1 / (1 + tolerance) else "same"
    return RowChange(**measured, verdict=verdict, ci_low=low, ci_high=high)


def _get(report: dict, *path: str):
    for name in path:
        report = report.get(name) if isinstance(report, dict) else None
    return report


# What must match for a change to be the code's rather than the circumstances': (label, path in the report).
_CONTEXT = (("model", ("model", "name")), ("dataset", ("dataset",)), ("test images", ("test_images",)),
            ("CPU", ("environment", "cpu")), ("cores", ("environment", "cpu_count")),
            ("GPU", ("environment", "gpu", "name")),
            *((f"{name} version", ("environment", "versions", name)) for name in ("torch", "onnxruntime", "openvino")))


def context_notes(old: dict, new: dict) -> list[str]:
    """One line for each circumstance that differs between the two benches (model, data, machine, library
    versions): a change in them explains a latency change as well as a change in the code would."""
    out = []
    for label, path in _CONTEXT:
        a, b = _get(old, *path), _get(new, *path)
        if a != b and (a, b) != (None, None):
            out.append(f"the {label} differs: {'not recorded' if a is None else a} in the old file, "
                       f"{'not recorded' if b is None else b} in the new")
    return out


def compare_reports(old: dict, new: dict, *, tolerance: float = TOLERANCE, seed: int = SEED) -> Comparison:
    """Every row in both reports compared, in the new report's order; rows on one side only listed.
    `tolerance` (0.05: 5%) is the change a verdict ignores, however narrow its interval."""
    old_rows, new_rows = _keyed(old), _keyed(new)
    same_split = old.get("dataset") == new.get("dataset") and old.get("test_images") == new.get("test_images")
    moved = drift(old, new, tolerance, seed)
    machine = moved.ratio if moved is not None and moved.applied else 1.0
    rows = [_change(k, old_rows[k], r, same_split, tolerance, seed, machine) for k, r in new_rows.items()
            if k in old_rows]
    return Comparison(rows, [k for k in old_rows if k not in new_rows], [k for k in new_rows if k not in old_rows],
                      context_notes(old, new), tolerance, seed=seed, drift=moved, load=compare_loads(old, new))


def failures(comparison: Comparison, *, slower: float | None = None,
             accuracy_drop_pts: float | None = None) -> list[str]:
    """Rows beyond the thresholds: significantly slower by more than `slower` (0.10: the interval's lower
    bound above 1.10), or `accuracy_drop_pts` percentage points less accurate. Rows without samples
    cannot be judged slower; they never fail the latency threshold."""
    out = []
    for r in comparison.rows:
        if slower is not None and r.ci_low is not None and r.ci_low > 1 + slower:
            out.append(f"{r.key} is slower: new/old {_ratio_text(r.ratio, 2)}, 95% interval "
                       f"{_ratio_text(r.ci_low, 2)}-{_ratio_text(r.ci_high, 2)} is above {1 + slower:.2f}")
        drop = r.accuracy_change_pts
        if accuracy_drop_pts is not None and drop is not None and -drop > accuracy_drop_pts:
            out.append(f"{r.key} lost {-drop:.2f} accuracy points (more than {accuracy_drop_pts:g})")
        elif accuracy_drop_pts is not None and r.old_accuracy is not None and r.new_accuracy is None:
            out.append(f"{r.key} has no accuracy in the new file, so the accuracy gate cannot pass it")
    return out


def _ratio_text(value: float, decimals: int = 3) -> str:
    """A ratio to a few decimals where that is readable, else to 3 significant digits (1.23e+04), so that no
    file's figure prints as a wall of digits."""
    return f"{value:.{decimals}f}" if 0.01 <= value < 1000 else f"{value:.3g}"


CHANGE_COLUMNS = ["runtime", "provider", "batch", "thr", "old ms", "new ms", "new/old", "95% CI", "verdict",
                  "Δ images"]
# Left out, in this order, when the terminal is too narrow (bench's --wide and `vtk compare --wide` keep them).
CHANGE_OPTIONAL = ("old ms", "new ms", "provider")


def change_rows(comparison: Comparison) -> list[list[str]]:
    """The comparison as table cells; '-' where a figure was not measured, 'n<11' for a p50 from fewer calls
    than LoadGen's early stopping accepts (bench/percentiles.py), '!' after the verdict of a row that either
    bench flagged unstable."""
    out = []
    for r in comparison.rows:
        ci = "-" if r.ci_low is None else f"{_ratio_text(r.ci_low)}-{_ratio_text(r.ci_high)}"
        images = "-" if r.correct_change is None else f"{r.correct_change:+d}"
        out.append([r.runtime, r.provider, str(r.batch), "-" if r.threads is None else str(r.threads),
                    percentile_cell(r.old_p50, r.old_n, 0.5), percentile_cell(r.new_p50, r.new_n, 0.5),
                    "-" if r.ratio is None else _ratio_text(r.ratio),
                    ci, r.verdict + ("!" if r.unstable else ""), images])
    return out
