"""vtk compare: matched rows, bootstrap intervals, verdicts, thresholds, old files, 80 columns.

Most tests write small bench files whose samples are drawn from known distributions, so that the right
verdict is known; one runs two real (tiny) benches of the shared run end to end.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from vtk_vision.bench.compare import (
    change_rows,
    compare_reports,
    failures,
    ratio_interval,
)
from vtk_vision.cli import cli

TEST_IMAGES = 10_000


def _row(runtime="onnx", batch=1, threads=2, samples=None, correct=9_000, status="ok", keep=True):
    """A bench row as `vtk bench` writes it, timed from `samples` (ms)."""
    if status != "ok":
        return {"runtime": runtime, "provider": "cpu", "batch": batch, "precision": "fp32", "threads": threads,
                "status": status, "reason": "ProviderError: no GPU", "latency_ms": None, "accuracy": None,
                "correct": None}
    ms = np.sort(samples)
    return {"runtime": runtime, "provider": "cpu", "batch": batch, "precision": "fp32", "threads": threads,
            "status": "ok", "reason": None, "latency_ms": {"n": len(ms), "p50": float(np.median(ms)),
                                                          "p90": float(ms[int(0.9 * len(ms))])},
            "images_per_s": batch / float(np.median(ms)) * 1e3, "accuracy": correct / TEST_IMAGES,
            "correct": correct, "samples_ms": [float(s) for s in samples] if keep else None}


def _report(rows, threads=(1, 2)):
    return {"dataset": "fashion-mnist", "test_images": TEST_IMAGES, "environment": {"threads": threads},
            "rows": rows}


def _samples(seed, n=300, scale=1.0):
    """Per-call times around `scale` ms with a long right tail, as a loaded CPU gives them."""
    rng = np.random.default_rng(seed)
    return (scale * (1 + rng.gamma(2.0, 0.02, n))).tolist()


def _write(path, report):
    path.write_text(json.dumps(report))
    return str(path)


def _compare(*args):
    return CliRunner().invoke(cli, ["compare", *map(str, args)], obj={})


def test_the_interval_holds_the_true_ratio():
    same = ratio_interval(_samples(1), _samples(2))
    slower = ratio_interval(_samples(1), _samples(3, scale=1.2))
    assert same[0] < 1 < same[1]
    assert slower[0] < 1.2 < slower[1] and slower[0] > 1.1
    assert ratio_interval(_samples(1), _samples(3, scale=1.2)) == slower  # seeded: the same files, the same answer


def test_the_order_statistic_bootstrap_is_the_resampling_one():
    """Each replicate is one Beta draw; it must give what resampling all n values and taking their nearest-rank
    p50 gives (here 20,000 brute-force replicates of 301 and of 300 samples)."""
    from vtk_vision.bench.compare import _medians

    rng = np.random.default_rng(0)
    for n in (301, 300):
        x = np.asarray(_samples(n, n=n))
        brute = np.sort(x[rng.integers(0, n, (20_000, n))], axis=1)[:, -(-n // 2) - 1]
        fast = _medians(np.random.default_rng(1), x, 20_000)
        assert np.percentile(fast, [2.5, 50, 97.5]) == pytest.approx(np.percentile(brute, [2.5, 50, 97.5]), rel=2e-3)


def test_verdicts_follow_the_interval():
    old = _report([_row(batch=1, samples=_samples(1)), _row(batch=8, samples=_samples(2)),
                   _row(batch=64, samples=_samples(3))])
    new = _report([_row(batch=1, samples=_samples(4)), _row(batch=8, samples=_samples(5, scale=1.3)),
                   _row(batch=64, samples=_samples(6, scale=0.7))])
    verdicts = {r.batch: r.verdict for r in compare_reports(old, new).rows}
    assert verdicts == {1: "same", 8: "slower", 64: "faster"}
    new["rows"][1]["unstable"] = True  # a row its bench could not steady: the verdict says so
    cells = {row[2]: row[8] for row in change_rows(compare_reports(old, new))}
    assert cells == {"1": "same", "8": "slower!", "64": "faster"}


def test_a_small_change_is_the_same_within_the_tolerance(tmp_path):
    """3% slower with thousands of samples: significant within one bench, yet inside the drift between two."""
    old = _write(tmp_path / "old.json", _report([_row(samples=_samples(1, n=5000))]))
    new = _write(tmp_path / "new.json", _report([_row(samples=_samples(2, n=5000, scale=1.03))]))
    (row,) = json.loads(_compare(old, new, "--json").output)["rows"]
    assert row["verdict"] == "same" and 1 < row["ci_low"] < row["ci_high"] < 1.05
    assert json.loads(_compare(old, new, "--json", "--tolerance", "0%").output)["rows"][0]["verdict"] == "slower"


def test_a_file_compared_with_itself_is_the_same_everywhere_and_exits_0(tmp_path):
    path = _write(tmp_path / "a.json", _report([_row(batch=b, samples=_samples(b, n=5 + b)) for b in (1, 8, 64)]))
    res = _compare(path, path, "--fail-slower", "0%", "--fail-accuracy-drop", "0")
    assert res.exit_code == 0, res.output
    data = json.loads(_compare(path, path, "--json").output)
    assert [r["verdict"] for r in data["rows"]] == ["same"] * 3 and {r["ratio"] for r in data["rows"]} == {1.0}


def test_fail_slower_needs_the_whole_interval_past_the_threshold(tmp_path):
    old = _write(tmp_path / "old.json", _report([_row(samples=_samples(1))]))
    new = _write(tmp_path / "new.json", _report([_row(samples=_samples(2, scale=1.25))]))
    assert _compare(old, new, "--fail-slower", "30%").exit_code == 0  # slower, but not by 30% for sure
    res = _compare(old, new, "--fail-slower", "10%")
    assert res.exit_code == 1 and "onnx/cpu/b1/t2 is slower" in res.output and "above 1.10" in res.output
    assert _compare(new, old, "--fail-slower", "10").exit_code == 0  # faster never fails
    assert _compare(old, new, "--fail-slower", "ten").exit_code == 2


def test_accuracy_changes_are_counted_to_the_image(tmp_path):
    old = _write(tmp_path / "old.json", _report([_row(samples=_samples(1), correct=9_000)]))
    new = _write(tmp_path / "new.json", _report([_row(samples=_samples(1), correct=8_985)]))
    res = _compare(old, new)
    assert res.exit_code == 0 and "90.00% -> 89.85% (-15 images right)" in res.output
    assert _compare(old, new, "--fail-accuracy-drop", "0.2").exit_code == 0
    res = _compare(old, new, "--fail-accuracy-drop", "0.1")
    assert res.exit_code == 1 and "lost 0.15 accuracy points" in res.output


def test_rows_on_one_side_and_without_accuracy_or_samples(tmp_path):
    """A row timed without labels (accuracy None) shows '-', a file without samples gets no invented verdict,
    and rows that only one file has are listed."""
    unlabelled = _row(batch=1, samples=_samples(1)) | {"accuracy": None, "correct": None}
    old = _report([unlabelled, _row(batch=8, samples=_samples(2), keep=False), _row(batch=64, samples=_samples(3))])
    new = _report([unlabelled, _row(batch=8, samples=_samples(4, scale=2.0)), _row(batch=256, samples=_samples(5)),
                   _row(runtime="eager", status="failed")])
    rows = {r.batch: r for r in compare_reports(old, new).rows}
    assert rows[1].correct_change is None and rows[1].accuracy_change_pts is None
    assert rows[8].verdict == "no samples" and rows[8].ci_low is None and rows[8].ratio == pytest.approx(2, rel=0.1)
    assert failures(compare_reports(old, new), slower=0.1) == []  # no interval: cannot be judged slower
    paths = [_write(tmp_path / f"{n}.json", r) for n, r in (("old", old), ("new", new))]
    res = _compare(*paths)
    assert res.exit_code == 0, res.output
    assert "only in the old file: onnx/cpu/b64/t2" in res.output
    assert "only in the new file: onnx/cpu/b256/t2, eager/cpu/b1/t2" in res.output
    data = json.loads(_compare(*paths, "--json").output)
    assert [r["verdict"] for r in data["rows"]] == ["same", "no samples"] and data["failures"] == []


def test_what_differs_around_the_two_benches_is_named(tmp_path):
    env = {"threads": [1, 2], "cpu": "AMD EPYC", "versions": {"torch": "2.15.0", "onnxruntime": "1.31.1"}}
    old = _report([_row(samples=_samples(1))]) | {"environment": env}
    new = _report([_row(samples=_samples(2))]) | {"environment": env | {"cpu": "Intel Xeon",
                                                                        "versions": {"torch": "2.16.0"}}}
    res = _compare(_write(tmp_path / "old.json", old), _write(tmp_path / "new.json", new))
    assert res.exit_code == 0, res.output
    assert "note: the CPU differs: AMD EPYC in the old file, Intel Xeon in the new" in res.output
    assert "note: the torch version differs: 2.15.0 in the old file, 2.16.0 in the new" in res.output
    assert "note: the onnxruntime version differs: 1.31.1 in the old file, not recorded in the new" in res.output
    assert "note:" not in _compare(_write(tmp_path / "same.json", old), tmp_path / "old.json").output


def test_an_old_file_without_thread_counts_matches_rows_at_its_thread_count(tmp_path):
    old_rows = [{k: v for k, v in _row(threads=None, samples=_samples(1)).items() if k != "threads"}]
    old = _write(tmp_path / "old.json", _report(old_rows, threads=2))
    new = _write(tmp_path / "new.json", _report([_row(threads=1, samples=_samples(2)),
                                                 _row(threads=2, samples=_samples(3))]))
    data = json.loads(_compare(old, new, "--json").output)
    assert [r["key"] for r in data["rows"]] == ["onnx/cpu/b1/t2"] and data["only_new"] == ["onnx/cpu/b1/t1"]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"rows": [{"runtime": "onnx"}]}', "\x00\xff"])
def test_a_file_that_is_not_a_bench_is_one_line(tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content.encode("latin-1"))
    good = _write(tmp_path / "good.json", _report([_row(samples=_samples(1))]))
    res = _compare(good, bad)
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert "not a vtk bench JSON file" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("damage", [{"latency_ms": {"p50": 0}}, {"latency_ms": None},
                                    {"samples_ms": [1.0, -2.0]}, {"samples_ms": [1.0, "x"]},
                                    {"samples_ms": [[1.0], [2.0]]}, {"samples_ms": [1.0, None]}])
def test_a_row_with_unusable_figures_is_one_line_even_when_it_matches_nothing(tmp_path, damage):
    bad = _write(tmp_path / "bad.json", _report([_row(batch=999, samples=_samples(1)) | damage]))
    good = _write(tmp_path / "good.json", _report([_row(samples=_samples(1))]))
    res = _compare(bad, good)
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert "bad.json: row onnx/cpu/b999/t2" in res.output


def test_the_table_fits_80_columns(tmp_path, monkeypatch):
    from vtk_vision.cli import app

    monkeypatch.setattr(app.SafeConsole, "is_terminal", property(lambda self: True))  # CliRunner: no tty
    monkeypatch.setattr(app.console, "width", 80)
    rows = [_row(runtime=rt, batch=b, threads=t, samples=_samples(b + t, scale=b / 4))
            for rt in ("torchscript", "openvino") for b in (1, 256) for t in (1, 2)]
    old, new = _write(tmp_path / "old.json", _report(rows)), _write(tmp_path / "new.json", _report(rows[1:]))
    res = _compare(old, new)
    assert res.exit_code == 0, res.output
    table = [line for line in res.output.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80 and "…" not in res.output
    assert "verdict" in res.output and "95% CI" in res.output and table[0].count("┳") == 6  # 7 columns
    wide = _compare(old, new, "--wide")
    top = next(line for line in wide.output.splitlines() if line.startswith("┏"))
    assert top.count("┳") == 9 and "…" not in wide.output  # all 10, folded, never cut


def test_two_real_benches_compare_end_to_end(trained_run, shared_data, tmp_path):
    run = tmp_path / trained_run.name
    shutil.copytree(trained_run, run)
    runner = CliRunner(env={"VTK_DATA_DIR": str(shared_data)})
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        res = runner.invoke(cli, ["bench", str(run), "--runtime", "eager", "--batch-sizes", "8,16", "--threads",
                                  "1", "--warmup-s", "0", "--min-iters", "20", "--min-s", "0.01",
                                  "--json", str(path)], obj={})
        assert res.exit_code == 0, res.output
    data = json.loads(runner.invoke(cli, ["compare", *map(str, paths), "--json"], obj={}).output)
    assert [r["key"] for r in data["rows"]] == ["eager/cpu/b8/t1", "eager/cpu/b16/t1"]
    assert all(r["ci_low"] <= r["ratio"] <= r["ci_high"] and r["correct_change"] == 0 for r in data["rows"])
    same = runner.invoke(cli, ["compare", str(paths[0]), str(paths[0]), "--fail-slower", "0%", "--json"], obj={})
    assert same.exit_code == 0 and [r["verdict"] for r in json.loads(same.output)["rows"]] == ["same", "same"]


@pytest.mark.parametrize("accuracy", ["NaN", "Infinity", '"0.9"', "true", "1.5", "[0.9]"])
def test_a_broken_accuracy_never_passes_the_accuracy_gate(tmp_path, accuracy):
    """NaN compares false with everything, so a gate that only looks for drops passed it (exit 0): refused."""
    old = _write(tmp_path / "old.json", _report([_row(samples=_samples(1))]))
    text = json.dumps(_report([_row(samples=_samples(1)) | {"accuracy": "@acc@"}])).replace('"@acc@"', accuracy)
    (tmp_path / "new.json").write_text(text)
    res = _compare(old, tmp_path / "new.json", "--fail-accuracy-drop", "0.1")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert "new.json: row onnx/cpu/b1/t2 holds accuracy" in res.output and "between 0 and 1" in res.output
    assert _compare(old, old, "--fail-accuracy-drop", "0.1").exit_code == 0  # the next command still works


def test_a_correct_count_that_is_not_a_count_is_refused(tmp_path):
    old = _write(tmp_path / "old.json", _report([_row(samples=_samples(1))]))
    new = _write(tmp_path / "new.json", _report([_row(samples=_samples(1)) | {"correct": True}]))
    res = _compare(old, new)
    assert res.exit_code == 1 and "row onnx/cpu/b1/t2 holds correct True, not a count" in res.output


def test_a_gate_cannot_pass_a_row_whose_accuracy_went_missing(tmp_path):
    old = _write(tmp_path / "old.json", _report([_row(samples=_samples(1))]))
    new = _write(tmp_path / "new.json", _report([_row(samples=_samples(1)) | {"accuracy": None, "correct": None}]))
    assert _compare(old, new).exit_code == 0  # shown as not measured
    res = _compare(old, new, "--fail-accuracy-drop", "0.1")
    assert res.exit_code == 1 and "has no accuracy in the new file" in res.output


def test_samples_that_contradict_the_recorded_p50_are_refused(tmp_path):
    """The verdict comes from the samples and the ratio from the p50s: edited apart, they would disagree."""
    old = _write(tmp_path / "old.json", _report([_row(samples=_samples(1))]))
    edited = _row(samples=_samples(2, scale=2.0))
    edited["latency_ms"]["p50"] = 1.0  # the samples say ~2 ms
    new = _write(tmp_path / "new.json", _report([edited]))
    res = _compare(old, new, "--fail-slower", "10%")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert "new.json: row onnx/cpu/b1/t2 records p50 1 ms but its raw samples have median 2.0" in res.output
    rounded = _row(samples=_samples(2))  # the bench keeps samples to 6 decimals: that rounding passes
    rounded["samples_ms"] = [round(s, 6) for s in rounded["samples_ms"]]
    assert _compare(old, _write(tmp_path / "ok.json", _report([rounded]))).exit_code == 0


@pytest.mark.parametrize("damage", [{"samples_ms": [1e300, 1e300, 1e300]}, {"latency_ms": {"p50": 1e-300}},
                                    {"latency_ms": {"p50": 1e300}}, {"latency_ms": {"p50": True}}])
def test_implausible_times_are_refused(tmp_path, damage):
    good = _write(tmp_path / "good.json", _report([_row(samples=_samples(1))]))
    bad = _write(tmp_path / "bad.json", _report([_row(samples=_samples(1)) | damage]))
    res = _compare(good, bad)
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "bad.json: row" in res.output


def test_large_ratios_print_in_a_few_digits(tmp_path):
    old = _write(tmp_path / "old.json", _report([_row(samples=_samples(1, scale=1e-5))]))
    new = _write(tmp_path / "new.json", _report([_row(samples=_samples(2, scale=1e8))]))
    res = _compare(old, new, "--wide", "--fail-slower", "10%")
    assert res.exit_code == 1 and "new/old 9.98e+12, 95% interval" in res.output
    assert max(len(word) for word in res.output.split() if word[0].isdigit()) <= 17  # "9.92e+12-1e+13"
    cells = change_rows(compare_reports(*(json.loads(open(p).read()) for p in (old, new))))[0]
    assert cells[6] == "9.98e+12" and len(cells[7]) <= 17
