"""The training loop on a small real subset: run folder, losses, early stopping, resume, NaN."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from vtk_vision.models import model_spec
from vtk_vision.cli import cli
from vtk_vision.runs.config import TrainConfig
from vtk_vision.core.errors import DataError
from vtk_vision.runs.folder import RunFolder, load_run
from vtk_vision.cli.train_options import parse_class_weights
from vtk_vision.training.trainer import Hooks, TrainingDiverged, TrainingInterrupted, _loss_fn, fit


@pytest.fixture
def small(shared_data, tmp_path):
    """A 2% class-balanced slice of Fashion-MNIST (1,000 train / 200 val), CPU, 28x28 LeNet-5."""
    def make(**kw):
        base = dict(model="lenet5", dataset="fashion-mnist", input_size=28, subset=0.02, epochs=2,
                    batch_size=64, lr=3e-3, device="cpu", data_dir=str(shared_data),
                    runs_dir=str(tmp_path / "runs"))
        return TrainConfig(**base | kw)
    return make


def test_run_folder_holds_everything(small, tmp_path):
    result = fit(small())
    d = result.run_dir
    assert d.name == "lenet5-fashion-mnist-1"
    for f in ("model.safetensors", "run.json", "metrics.csv", "curves.png"):
        assert (d / f).is_file(), f
    assert list((d / "tb").glob("events.out.tfevents.*"))
    meta = json.loads((d / "run.json").read_text())
    assert meta["status"] == "complete" and meta["model"]["input_shape"] == [1, 28, 28]
    assert meta["data"]["classes"][0] == "T-shirt/top" and len(meta["data"]["preprocess"]["mean"]) == 1
    assert set(meta["accuracy"]) == {"train", "val", "test"} and meta["accuracy"]["test"] > 0.5
    recipe = model_spec("lenet5").recipe  # options not given come from the model's recipe; given ones win
    assert meta["config"]["optimizer"] == recipe["optimizer"] and meta["config"]["lr"] == 3e-3
    assert meta["config"]["label_smoothing"] == recipe["label_smoothing"]
    assert meta["config"]["model_args"] == recipe["model_args"]
    assert meta["model"]["kwargs"]["dropout"] == recipe["model_args"]["dropout"]
    assert meta["versions"]["torch"] == torch.__version__
    assert len((d / "metrics.csv").read_text().strip().splitlines()) == 3
    assert (tmp_path / "runs" / "latest").read_text().strip() == d.name
    run = load_run(runs_dir=tmp_path / "runs")  # latest, rebuilt from run.json + safetensors
    assert run.path == d and run.preprocess.pads == (0, 0, 0, 0)


def test_model_arguments_given_override_the_recipes():
    recipe = {"model_args": {"dropout": 0.0, "activation": "tanh"}}
    cfg = TrainConfig(model="lenet5", model_args={"dropout": 0.3}).resolved(recipe, "fashion-mnist")
    assert cfg.model_args == {"dropout": 0.3, "activation": "tanh"}
    assert TrainConfig(model="lenet5").resolved({}, "mnist").model_args == {}


def test_default_lenet5_pads_28_to_32(small):
    meta = fit(small(input_size=None, epochs=1)).record
    assert meta.model.input_shape == (1, 32, 32)
    assert meta.data.image_shape == (1, 28, 28)


def test_seed_repeats_bit_for_bit(small, tmp_path):
    a = load_file(fit(small()).run_dir / "model.safetensors")
    b = load_file(fit(small()).run_dir / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_mse_loss_trains(small):
    meta = fit(small(loss="mse", epochs=3, lr=5e-3)).record
    assert meta.accuracy["val"] > 0.5


def test_class_weights_change_the_loss():
    logits, y = torch.randn(8, 10), torch.tensor([2, 2, 5, 1, 0, 3, 5, 9])
    plain = _loss_fn(TrainConfig(), 10, torch.device("cpu"))(logits, y)
    weighted = _loss_fn(TrainConfig(class_weights={2: 3.0}), 10, torch.device("cpu"))(logits, y)
    w = torch.ones(10)
    w[2] = 3.0
    assert torch.allclose(weighted, torch.nn.functional.cross_entropy(logits, y, weight=w))
    assert not torch.allclose(plain, weighted)
    assert parse_class_weights("2=1.5,5=1.5") == {2: 1.5, 5: 1.5}


def test_early_stopping_restores_best(small):
    # min_delta no epoch can beat: epoch 1 stays best, patience 2 stops after epoch 3
    meta = fit(small(epochs=10, patience=2, min_delta=1.0)).record
    assert meta.epochs_run == 3 and meta.best_epoch == 1
    assert meta.accuracy["val"] == pytest.approx(meta.history[0].val_acc)


def test_interrupt_then_resume_equals_uninterrupted(small, tmp_path):
    straight = load_file(fit(small(epochs=3, runs_dir=str(tmp_path / "a"))).run_dir / "model.safetensors")
    calls = {"n": 0}

    def ctrl_c(i, n):
        calls["n"] += 1
        if calls["n"] == n + 3:  # a few batches into epoch 2
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="Resume with: vtk train --resume") as e:
        fit(small(epochs=3, runs_dir=str(tmp_path / "b")), Hooks(on_batch=ctrl_c))
    run_dir = tmp_path / "b" / "lenet5-fashion-mnist-1"
    assert str(run_dir) in str(e.value)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted" and not (run_dir / "model.safetensors").exists()
    assert not (tmp_path / "b" / "latest").exists()
    cfg = TrainConfig.from_dict(meta["config"])
    resumed = fit(cfg, resume=RunFolder(run_dir))
    assert resumed.record.epochs_run == 3 and [h.epoch for h in resumed.record.history] == [1, 2, 3]
    final = load_file(run_dir / "model.safetensors")
    assert all(torch.equal(final[k], straight[k]) for k in straight)
    assert not (run_dir / "checkpoint.pt").exists()


def test_nan_loss_stops_and_keeps_best(small):
    def poison(row):
        if row.epoch == 1:
            model_param = poison.model
            with torch.no_grad():
                model_param.fill_(float("nan"))

    import vtk_vision.training.trainer as t
    orig = t._optimizer

    def spy(cfg, model):
        poison.model = next(model.parameters())
        return orig(cfg, model)

    t._optimizer = spy
    try:
        with pytest.raises(TrainingDiverged, match="kept the best weights so far \\(epoch 1\\)"):
            fit(small(epochs=3), Hooks(on_epoch=poison))
    finally:
        t._optimizer = orig


def test_too_large_images_are_refused(small):
    with pytest.raises(DataError, match="never stretches"):
        fit(small(input_size=26))


# ------------------------------------------------------------- commands
@pytest.fixture
def cli_env(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("VTK_DATA_DIR", str(shared_data))
    monkeypatch.setenv("VTK_RUNS_DIR", str(tmp_path / "runs"))

    def run(*args):
        return CliRunner().invoke(cli, list(args), obj={})
    return run


SMALL = ["--subset", "0.02", "--epochs", "1", "--device", "cpu", "--input-size", "28"]


def test_train_eval_predict_commands(cli_env, tmp_path):
    res = cli_env("train", "lenet5", *SMALL, "--class-weights", "6=2")
    assert res.exit_code == 0, res.output
    assert "  epoch  train loss  val loss  val acc" in res.output and "test accuracy" in res.output
    epoch_line = next(line for line in res.output.splitlines() if line.lstrip().startswith("1/1 "))
    assert len(epoch_line) <= 80 and epoch_line.rstrip().endswith(tuple("0123456789"))
    res = cli_env("eval", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert len(report["per_class"]) == 10 and sum(map(sum, report["confusion"])) == 10_000
    run_dir = tmp_path / "runs" / "lenet5-fashion-mnist-1"
    assert (run_dir / "confusion.png").exists() and (run_dir / "misclassified.png").exists()
    res = cli_env("predict", "--n", "4")
    assert res.exit_code == 0 and res.output.count("true:") == 4
    from PIL import Image
    Image.new("L", (40, 40), 200).save(tmp_path / "x.png")
    res = cli_env("predict", str(run_dir), str(tmp_path / "x.png"), "--out", str(tmp_path / "p.png"))
    assert res.exit_code == 0, res.output
    assert "x.png: " in res.output and (tmp_path / "p.png").exists()


def test_sweep_marks_best(cli_env, tmp_path):
    res = cli_env("sweep", "lenet5", *SMALL, "--lr", "3e-3,1e-9")
    assert res.exit_code == 0, res.output
    assert "sweep results" in res.output and "best:" in res.output
    best = (tmp_path / "runs" / "latest").read_text().strip()
    assert json.loads((tmp_path / "runs" / best / "run.json").read_text())["config"]["lr"] == 3e-3


@pytest.mark.parametrize("args,code,needle", [
    (("train", "lenet5", "--resume", "x"), 2, "give no MODEL"),
    (("train",), 2, "name a MODEL"),
    (("train", "lenet5", "--epochs", "0"), 2, "--epochs"),
    (("train", "lenet5", "--dataset", "cifar10", "--subset", "0.01"), 1,
     "the model takes 1-channel images but the data has 3"),
    (("train", "nope"), 1, "valid models"),
    (("sweep", "lenet5", "--lr", "abc"), 2, "--lr"),
    (("eval", "/nonexistent"), 1, "not a vtk run folder"),
    (("train", "--resume", "/nonexistent"), 1, "not a vtk run folder"),
])
def test_command_errors(cli_env, args, code, needle):
    res = cli_env(*args)
    assert res.exit_code == code, res.output
    assert needle in res.output and "Traceback" not in res.output
