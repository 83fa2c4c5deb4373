"""Training measures its precision, kernels, threads and layout (training/tuning.py, training/probe.py).

The choice logic runs on injected timings (no clock is judged here); one real, short probe runs on LeNet-5
and must leave the run's numbers exactly as a run without it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from safetensors.torch import load_file

from vtk_vision.cli import cli
from vtk_vision.core.errors import RunError, VtkError
from vtk_vision.models import create_model
from vtk_vision.runs.config import TrainConfig
from vtk_vision.runs.folder import RunFolder
from vtk_vision.runs.setting import Setting, TuningRecord
from vtk_vision.training import trainer
from vtk_vision.training.probe import ProbeJob, probe
from vtk_vision.training.tuning import Request, cache_path, choose_setting, first_epoch, thread_candidates


class _Fake:
    """Candidates with made-up step times: `step_of(setting)` seconds a step, `bad(setting)` non-finite."""

    def __init__(self, step_of, bad=lambda s: False, forward_share=lambda s: 1 / 3):
        self.step_of, self.bad, self.forward_share, self.calls, self.spent = step_of, bad, forward_share, [], 0.0

    def __call__(self, s: Setting):
        fake = self

        class Trial:
            def finite(self, limit=None):
                fake.calls.append(("check", s))
                step = fake.step_of(s)
                forward = step * fake.forward_share(s)
                if limit is not None and forward > limit:
                    fake.spent += forward
                    return None, forward, forward
                fake.spent += step
                return not fake.bad(s), step, forward

            def steps(self, k):
                fake.calls.append(("steps", s))
                fake.spent += k * fake.step_of(s)
                return k * fake.step_of(s)
        return Trial()


def _job(**kw) -> ProbeJob:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))  # no layer takes vtk's kernels
    base = dict(model=model, make_optimizer=lambda m: torch.optim.SGD(m.parameters(), 0.1),
                loss_fn=F.cross_entropy, x=torch.zeros(8, 1, 4, 4), y=torch.zeros(8, dtype=torch.long),
                planned_steps=100_000, amps=("fp32", "bf16"), threads=(1, 2, 4), kernels=("torch",),
                layouts=("contiguous", "channels_last"))
    return ProbeJob(**base | kw)


def test_the_fastest_finite_candidate_wins_stage_by_stage():
    # 2 threads fastest; bf16 faster still at any count; channels_last slower
    step = lambda s: {1: 0.04, 2: 0.02, 4: 0.03}[s.threads] * (0.5 if s.amp == "bf16" else 1) * \
        (1.2 if s.layout == "channels_last" else 1)  # noqa: E731
    fake = _Fake(step)
    got = probe(_job(), fake)
    assert got.chosen == Setting("bf16", 2, "torch", "contiguous")
    stages = [(f.stage, f.setting) for f in got.figures]
    assert [s.threads for st, s in stages if st == "threads"] == [1, 2, 4]
    assert all(s.amp == "fp32" for st, s in stages if st == "threads")  # threads first, at fp32
    assert all(s.threads == 2 for st, s in stages if st != "threads")   # the rest at the best count
    assert {s.layout for st, s in stages if st == "layout"} == {"contiguous", "channels_last"}
    assert all(s.amp == "bf16" for st, s in stages if st == "layout")   # layout at the best precision
    # interleaved: each round visits every timed candidate before the next round starts
    timed = [s for what, s in fake.calls if what == "steps"]
    assert timed[-2:] == [Setting("bf16", 2), Setting("bf16", 2, layout="channels_last")]


def test_a_non_finite_candidate_is_never_chosen_however_fast():
    got = probe(_job(threads=(1,)), _Fake(lambda s: 0.001 if s.amp == "bf16" else 0.01, bad=lambda s: s.amp == "bf16"))
    assert got.chosen.amp == "fp32"
    bf16 = next(f for f in got.figures if f.setting.amp == "bf16")
    assert not bf16.finite and bf16.images_per_s is None and "never chosen" in bf16.note
    assert TuningRecord(got.chosen, "measured", candidates=got.figures).summary().count("bf16 non-finite") == 1


@pytest.mark.parametrize("forward_share, where", [(1 / 3, "forward pass"), (1 / 500, "first pass")])
def test_a_hopeless_candidate_stops_early_and_the_budget_holds(forward_share, where):
    # 4 threads 100x slower: its forward alone gives it away; when its forward is quick (1/500 of its
    # step), its whole first pass does
    fake = _Fake(lambda s: 1.0 if s.threads == 4 else 0.01,
                 forward_share=lambda s: forward_share if s.threads == 4 else 1 / 3)
    got = probe(_job(amps=("fp32",), layouts=("contiguous",), planned_steps=2000), fake)
    four = next(f for f in got.figures if f.setting.threads == 4)
    assert four.samples == 0 and f"stopped after its {where}" in four.note
    assert [what for what, s in fake.calls if s.threads == 4] == ["check"]  # not one step more
    assert got.chosen.threads in (1, 2)
    assert 1 / four.images_per_s == pytest.approx(1.0 / 8, rel=0.01)  # its step, estimated or timed


def test_everything_the_probe_times_fits_its_share_of_the_run():
    # bf16 12x slower, 2 threads 1.6x faster, channels_last 1.4x slower: the figures of issue 25's run
    step = lambda s: 0.04 / (1.6 if s.threads == 2 else 1) * (12 if s.amp == "bf16" else 1) * \
        (1.4 if s.layout == "channels_last" else 1)  # noqa: E731
    fake = _Fake(step)
    got = probe(_job(threads=(1, 2), planned_steps=2350), fake)
    assert got.chosen == Setting("fp32", 2, "torch", "contiguous")
    assert got.planned_s == pytest.approx(0.025 * 2350)  # the fastest step, not the first one timed
    assert fake.spent <= 0.03 * got.planned_s  # checks and warm-ups too
    assert {f.stage for f in got.figures if f.samples} == {"threads", "precision/kernels", "layout"}


def test_a_run_too_short_is_not_measured_and_a_short_one_measures_threads_only():
    assert probe(_job(planned_steps=100), _Fake(lambda s: 0.01)).chosen is None
    got = probe(_job(planned_steps=600), _Fake(lambda s: 0.01))  # 3% of 600 = 18 steps: threads (15) only
    assert {f.stage for f in got.figures if f.samples} == {"threads"}
    assert all("too short" in f.note for f in got.figures if f.stage != "threads")


def test_thread_candidates_stay_few():
    assert thread_candidates(1) == (1,) and thread_candidates(2) == (1, 2)
    assert thread_candidates(6) == (1, 2, 4, 6) and thread_candidates(64) == (1, 2, 4, 8, 16, 32, 64)


@pytest.fixture
def request_for(tmp_path, monkeypatch):
    """A Request for a LeNet-5 on a random CPU batch (the state folder is the test's own)."""
    monkeypatch.setenv("VTK_STATE_DIR", str(tmp_path / "state"))

    def make(planned_steps=100_000, batch=16, **cfg):
        torch.manual_seed(0)
        model = create_model("lenet5")
        return Request(TrainConfig(model="lenet5", **cfg), model, lambda m: torch.optim.SGD(m.parameters(), 0.1),
                       F.cross_entropy, torch.randn(batch, 1, 32, 32), torch.randint(0, 10, (batch,)),
                       planned_steps, conv=True)
    return make


def _threads_win(s: Setting) -> float:
    return 0.01 if s.threads == 1 else 0.02


def test_the_cache_is_hit_keyed_and_retune_measures_again(request_for):
    fake = _Fake(_threads_win)
    first = choose_setting(request_for(), fake)
    assert first.how == "measured" and first.chosen.threads == 1 and cache_path().is_file()
    assert first.summary().startswith("cpu fp32, 1 thread, ") and "measured in" in first.summary()
    calls = len(fake.calls)
    again = choose_setting(request_for(), fake)
    assert again.how == "cached" and again.chosen == first.chosen and len(fake.calls) == calls
    assert again.summary().startswith(f"cpu {first.chosen.describe()} (cached ")
    assert choose_setting(request_for(batch=32), fake).how == "measured"  # another batch: another key
    assert choose_setting(request_for(threads=1), fake).how == "measured"  # a fixed option: another key
    calls = len(fake.calls)
    assert choose_setting(request_for(), fake, ).how == "cached"
    assert choose_setting(replace(request_for(), retune=True), fake).how == "measured" and len(fake.calls) > calls


def test_a_cached_answer_that_ran_slower_is_measured_again(request_for):
    fake = _Fake(_threads_win)
    measured = choose_setting(request_for(), fake)
    assert first_epoch(measured, 1000.0, 10.0) is None          # the measuring run's epoch: the expectation
    cached = choose_setting(request_for(), fake)
    assert first_epoch(cached, 900.0, 10.0) is None              # within STALE: still good
    assert first_epoch(cached, 300.0, 0.5) is None               # too short to judge
    assert choose_setting(request_for(), fake).how == "cached"
    note = first_epoch(cached, 300.0, 10.0)
    assert "3.3x slower" in note and "the next run measures again" in note
    assert choose_setting(request_for(), fake).how == "measured"


def test_a_broken_cache_file_is_measured_over(request_for):
    cache_path().parent.mkdir(parents=True)
    cache_path().write_text("{not json")
    assert choose_setting(request_for(), _Fake(_threads_win)).how == "measured"
    assert json.loads(cache_path().read_text())["version"] == 1


def test_overrides_win_and_all_three_mean_no_probe(request_for):
    never = _Fake(lambda s: pytest.fail("nothing should be timed"))
    rec = choose_setting(request_for(amp="off", threads=1, kernels="torch"), never)
    assert rec.how == "fixed" and rec.chosen == Setting("fp32", 1, "torch", "contiguous") and not never.calls
    assert rec.summary() == "cpu fp32, 1 thread, torch kernels (set by --amp, --threads, --kernels; nothing measured)"
    fake = _Fake(lambda s: 0.001 if s.amp == "bf16" else 0.01)
    rec = choose_setting(request_for(threads=1), fake)
    assert rec.chosen.threads == 1 and {s.threads for _, s in fake.calls} == {1}
    assert rec.chosen.amp == "bf16"  # measured faster here (made up), so chosen: no CPU flag is consulted
    rec = choose_setting(request_for(amp="off"), _Fake(lambda s: 0.001 if s.kernels == "torch" else 0.01))
    assert rec.chosen.amp == "fp32" and rec.chosen.kernels == "torch"
    with pytest.raises(VtkError, match="--kernels vtk are fp32 CPU kernels"):
        choose_setting(request_for(amp="bf16", kernels="vtk"), never)


def test_old_and_newer_tuning_records_load(tmp_path, trained_run):
    data = json.loads((trained_run / "run.json").read_text())
    folder = tmp_path / "run"
    folder.mkdir()
    for tuning, expect in ((None, None), ({"version": 99, "anything": 1}, None)):
        d = {k: v for k, v in data.items() if k != "tuning"} | ({"tuning": tuning} if tuning else {})
        (folder / "run.json").write_text(json.dumps(d))
        assert RunFolder(folder).read().tuning is expect
    (folder / "run.json").write_text(json.dumps(data | {"tuning": {"chosen": {"amp": "fp64"}, "how": "measured"}}))
    with pytest.raises(RunError, match="field 'tuning'"):
        RunFolder(folder).read()


@pytest.fixture
def small(shared_data, tmp_path):
    def make(**kw):
        base = dict(model="lenet5", dataset="fashion-mnist", input_size=28, subset=0.02, epochs=2, batch_size=64,
                    lr=3e-3, device="cpu", data_dir=str(shared_data), runs_dir=str(tmp_path / "runs"))
        return TrainConfig(**base | kw)
    return make


def test_a_real_probe_leaves_the_seeded_numbers_as_they_were(small, monkeypatch, tmp_path):
    """Same seed, same fixed setting: with a real probe on LeNet-5 before training and without one, the same
    weights and losses bit for bit. The probe's record lands in run.json; its figures are not judged."""
    monkeypatch.setenv("VTK_STATE_DIR", str(tmp_path / "state"))
    fixed = Setting("fp32", torch.get_num_threads(), "vtk", "contiguous")
    drop = {"dropout": 0.3}  # dropout draws from torch's generator in every step, the probe's steps included
    plain = trainer.fit(small(amp="off", threads=fixed.threads, kernels="vtk", model_args=drop))
    assert plain.record.tuning.how == "fixed"
    real = trainer.choose_setting

    def probed_then_fixed(req):  # a run long enough to measure, then the same setting as the plain run
        rec = real(replace(req, planned_steps=2000))
        assert rec.how == "measured"
        return rec.moved(chosen=fixed)
    monkeypatch.setattr(trainer, "choose_setting", probed_then_fixed)
    probed = trainer.fit(small(model_args=drop))
    a, b = load_file(plain.run_dir / "model.safetensors"), load_file(probed.run_dir / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h.train_loss for h in plain.record.history] == [h.train_loss for h in probed.record.history]
    rec = RunFolder(probed.run_dir).read().tuning
    assert rec.how == "measured" and rec.probe_s > 0 and rec.planned_s > 0
    assert {f.setting.threads for f in rec.candidates if f.stage == "threads"} == \
        set(thread_candidates(torch.get_num_threads())) - ({1} if torch.get_num_threads() == 1 else set())
    assert all(f.finite and f.images_per_s > 0 for f in rec.candidates if f.samples)
    assert {"threads", "precision/kernels", "layout"} >= {f.stage for f in rec.candidates}


def test_the_line_before_the_first_epoch_and_the_report_table(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("VTK_STATE_DIR", str(tmp_path / "state"))
    real = trainer.choose_setting
    monkeypatch.setattr(trainer, "choose_setting",
                        lambda req: real(replace(req, planned_steps=100_000), _Fake(_threads_win)))
    runner = CliRunner(env={"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(tmp_path / "runs")})
    args = ["train", "lenet5", "--subset", "0.02", "--epochs", "1", "--device", "cpu"]
    res = runner.invoke(cli, args, obj={})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    setting = lines[lines.index(next(x for x in lines if x.startswith("run "))) + 1]
    assert setting.startswith("cpu fp32, 1 thread, vtk kernels (measured in ") and "2 threads 2.00x slower" in setting
    assert runner.invoke(cli, args, obj={}).output.count("(cached ") == 1
    assert "(measured in " in runner.invoke(cli, [*args, "--retune"], obj={}).output
    res = runner.invoke(cli, ["report", str(tmp_path / "runs" / "lenet5-fashion-mnist-1")], obj={})
    page = (tmp_path / "runs" / "lenet5-fashion-mnist-1" / "report.html").read_text()
    assert res.exit_code == 0 and "throughput vs chosen" in page and "fp32, 2 threads, vtk kernels" in page


@pytest.mark.parametrize("args,code,needle", [
    (["--amp", "bf16", "--kernels", "vtk"], 1, "--kernels vtk are fp32 CPU kernels"),
    (["--amp", "fp16", "--device", "cpu"], 1, "--amp fp16 needs a CUDA device"),
    (["--threads", "0"], 2, "--threads"),
    (["--kernels", "fast"], 2, "--kernels"),
])
def test_option_errors_are_one_line_before_any_work(shared_data, tmp_path, args, code, needle):
    runs = tmp_path / "runs"
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(runs)}).invoke(
        cli, ["train", "lenet5", "--subset", "0.02", *args], obj={})
    assert res.exit_code == code and needle in res.output and "Traceback" not in res.output
    assert not runs.exists()


@pytest.mark.cuda
def test_cuda_probe_weighs_fp16_and_bf16(request_for):
    """Written from PyTorch's autocast docs (fp16 with a GradScaler, bf16 without); not run on a CPU."""
    req = request_for(device="cuda")
    req = replace(req, model=req.model.cuda(), x=req.x.cuda(), y=req.y.cuda())
    rec = choose_setting(req)
    assert rec.device == "cuda" and {f.setting.amp for f in rec.candidates} >= {"fp32", "bf16", "fp16"}
    assert all(f.setting.kernels == "torch" for f in rec.candidates)
