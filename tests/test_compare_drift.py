"""`vtk compare` tells the machine's drift from the model's: a calibration workload timed in every bench."""

from __future__ import annotations

import json
import re

import numpy as np

from tests.test_compare import _compare, _report, _row, _samples, _write


def _calibrated(rows, scale: float, seed: int) -> dict:
    report = _report(rows)
    report["environment"]["calibration"] = {"workload": "128x128 float32 matmul", "samples_ms":
                                            _samples(seed, 30, 2.5 * scale)}
    return report


def test_a_machine_that_got_slower_is_named_and_divided_out(tmp_path):
    """Everything 30% slower, the calibration too: the machine drifted, the file did not change."""
    old = _write(tmp_path / "old.json", _calibrated([_row(samples=_samples(1))], 1.0, 11))
    new = _write(tmp_path / "new.json", _calibrated([_row(samples=_samples(2, scale=1.3))], 1.3, 12))
    res = _compare(old, new, "--fail-slower", "10%")
    assert res.exit_code == 0, res.output
    assert re.search(r"^the machine drifted by \+(2[5-9]|3[0-5])\.\d%", res.output, re.M), res.output
    assert "divided by 1." in res.output
    data = json.loads(_compare(old, new, "--json").output)
    assert [r["verdict"] for r in data["rows"]] == ["same"] and data["drift"]["applied"] and not data["failures"]


def test_a_real_slowdown_on_a_steady_machine_still_fails(tmp_path):
    old = _write(tmp_path / "old.json", _calibrated([_row(samples=_samples(1))], 1.0, 11))
    new = _write(tmp_path / "new.json", _calibrated([_row(samples=_samples(2, scale=1.3))], 1.0, 12))
    res = _compare(old, new, "--fail-slower", "10%")
    assert res.exit_code == 1 and "is slower" in res.output
    assert "the machine held steady" in res.output


def test_old_files_without_calibration_say_drift_was_not_measured(tmp_path):
    old = _write(tmp_path / "old.json", _report([_row(samples=_samples(1))]))
    new = _write(tmp_path / "new.json", _calibrated([_row(samples=_samples(2, scale=1.3))], 1.3, 12))
    res = _compare(old, new, "--fail-slower", "10%")
    assert res.exit_code == 1 and "machine drift not measured" in res.output


def test_a_damaged_calibration_is_one_line(tmp_path):
    bad = _calibrated([_row(samples=_samples(1))], 1.0, 11)
    bad["environment"]["calibration"]["samples_ms"] = [1.0, -5.0, float("nan")]
    path = tmp_path / "bad.json"
    path.write_text(__import__("json").dumps(bad).replace("NaN", "1e400"))
    res = _compare(path, path)
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "not positive" in res.output


def test_the_bench_records_a_calibration():
    from vtk_vision.bench.calibration import measure

    cal = measure(5)
    assert len(cal["samples_ms"]) == 5 and all(s > 0 for s in cal["samples_ms"])
    assert cal["p50_ms"] == sorted(cal["samples_ms"])[2] and np.isfinite(cal["p50_ms"])


def test_a_calibration_that_swung_is_not_divided_out(tmp_path):
    """Calibration samples spread 0.5x-2x: too wide to trust, so the rows stay as measured and say why."""
    swinging = _calibrated([_row(samples=_samples(2, scale=1.3))], 1.0, 12)
    swinging["environment"]["calibration"]["samples_ms"] = list(np.geomspace(1.25, 5.0, 30) * 0.8)
    old = _write(tmp_path / "old.json", _calibrated([_row(samples=_samples(1))], 1.0, 11))
    new = _write(tmp_path / "new.json", swinging)
    res = _compare(old, new, "--fail-slower", "10%")
    assert res.exit_code == 1 and "swung during the calibration" in res.output and "is slower" in res.output
    assert json.loads(_compare(old, new, "--json").output)["drift"]["applied"] is False
