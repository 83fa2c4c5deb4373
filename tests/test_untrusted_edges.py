"""Edges an adversarial pass found past the first round (issue 21, items 8-13): each input is crafted here,
and each must end in one line, the right exit code, no payload run and nothing left behind.

The Python API's arguments meet the same limits as the CLI's options (core/limits.py)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from vtk_vision.cli import cli
from vtk_vision.core.errors import VtkError
from vtk_vision.core.limits import BENCH_LIMITS, EXPORT_LIMITS


def _one_line(res, code: int = 1) -> str:
    lines = res.output.strip().splitlines()
    assert res.exit_code == code and len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


# --- 13: the Python API checks what the CLI checks, at once and in Python's words ---------------------------


@pytest.mark.parametrize("call, named", [
    (lambda vtk, nowhere: vtk.export(nowhere, "badformat"), "formats='badformat': unknown format 'badformat'"),
    (lambda vtk, nowhere: vtk.export(nowhere, ["onnx", "onx"]), "unknown format 'onx'; choose from onnx,"),
    (lambda vtk, nowhere: vtk.export(nowhere, "onnx", precision="int3"), "precision='int3': choose from fp32"),
    (lambda vtk, nowhere: vtk.export(nowhere, "onnx", opset=0), "opset=0: must be a whole number >= 1"),
    (lambda vtk, nowhere: vtk.benchmark(nowhere, batch_sizes=[0]), "batch_sizes=[0]: give one or a list"),
    (lambda vtk, nowhere: vtk.benchmark(nowhere, threads=[-1]), "threads=[-1]: give one or a list of numbers"),
    (lambda vtk, nowhere: vtk.benchmark(nowhere, threads=[True]), "threads=[True]"),
    (lambda vtk, nowhere: vtk.benchmark(nowhere, runtimes="onx"), "runtimes='onx': unknown runtime 'onx'"),
    (lambda vtk, nowhere: vtk.benchmark(nowhere, runtimes=[]), "runtimes=[]: give one runtime or a list"),
    (lambda vtk, nowhere: vtk.benchmark(nowhere, min_s=float("nan")), "min_s=nan: must be a finite number"),
    (lambda vtk, nowhere: vtk.benchmark(nowhere, precisions="int3"), "precisions='int3': unknown precision"),
])
def test_api_arguments_are_refused_before_any_work_naming_the_argument(tmp_path, call, named):
    """The run does not exist: the argument is refused before vtk even looks for it."""
    import vtk_vision as vtk

    with pytest.raises(VtkError) as e:
        call(vtk, tmp_path / "no-such-run")
    assert isinstance(e.value, ValueError) and named in str(e.value) and "--" not in str(e.value)
    assert "\n" not in str(e.value) and list(tmp_path.iterdir()) == []


def test_a_bare_name_or_number_is_one_of_it():
    from vtk_vision.bench.run import BenchOptions
    from vtk_vision.exporters import ExportOptions

    opts = BenchOptions(runtimes="onnx", precisions="fp32", providers="cpu", batch_sizes=8, threads=[2, 2])
    assert (opts.runtimes, opts.precisions, opts.providers, opts.batch_sizes, opts.threads) == \
        (("onnx",), ("fp32",), ("cpu",), (8,), (2,))
    assert ExportOptions(precision="int8").precision == "int8"


@pytest.mark.parametrize("name", sorted(BENCH_LIMITS))
def test_bench_limits_are_the_clis_limits(name):
    """One definition: a value just past the limit is exit 2 at `vtk bench` and an OptionError in Python."""
    from vtk_vision.bench.run import BenchOptions
    from vtk_vision.core.limits import OptionError

    limit = BENCH_LIMITS[name]
    past = limit.high + 1
    flag = {"batch_sizes": "--batch-sizes", "max_rounds": "--rounds", "max_time_s": "--max-time"}.get(name, "--" + name.replace("_", "-"))
    res = CliRunner().invoke(cli, ["bench", "nowhere", flag, str(past)], obj={})
    out = res.output.replace("\n", " ").replace("│", "")
    assert res.exit_code == 2 and (f"{limit.high:,}" in out or f"{limit.high:g}" in out), res.output
    with pytest.raises(OptionError, match=f"^{name}="):
        BenchOptions(**{name: past})


@pytest.mark.parametrize("name", sorted(n for n in EXPORT_LIMITS if n not in ("atol", "rtol")))
def test_export_limits_are_the_clis_limits(name):
    from vtk_vision.core.limits import OptionError
    from vtk_vision.exporters import ExportOptions

    limit = EXPORT_LIMITS[name]
    past = limit.high + 1 if limit.integer else limit.high * 2
    res = CliRunner().invoke(cli, ["export", "nowhere", "--" + name.replace("_", "-"), str(past)], obj={})
    assert res.exit_code == 2 and limit.describe() in res.output.replace("\n", " ").replace("│", ""), res.output
    with pytest.raises(OptionError, match=f"^{name}="):
        ExportOptions(**{name: past})


# --- 8: the launcher's options are checked by vtk, not by torchrun's traceback ------------------------------


@pytest.mark.parametrize("args, named", [
    (["--nnodes", "3:1", "--rdzv-endpoint", "127.0.0.1:29500"], "'3:1': machines from 1 to"),
    (["--nnodes", "two", "--rdzv-endpoint", "127.0.0.1:29500"], "'two' is not N or MIN:MAX"),
    (["--nnodes", "2", "--rdzv-endpoint", "host:notaport"], "'host:notaport' is not HOST:PORT"),
    (["--nnodes", "2", "--rdzv-endpoint", "127.0.0.1:0"], "with a port from 1 to 65535"),
    (["--nnodes", "2", "--rdzv-endpoint", "::1:29500"], "an IPv6 address goes in brackets"),
])
def test_bad_launcher_options_are_usage_errors(args, named):
    res = CliRunner().invoke(cli, ["train", "lenet5", "--nproc", "2", *args], obj={})
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert res.exit_code == 2 and len(errors) == 1 and named in errors[0] and "Traceback" not in res.output


def test_good_launcher_values_pass_as_torchrun_reads_them():
    from vtk_vision.training.distributed import parse_endpoint, parse_nnodes

    assert [parse_nnodes(v) for v in ("2", "1:4", " 3 ")] == ["2", "1:4", "3"]
    assert [parse_endpoint(v) for v in ("127.0.0.1:29500", "[::1]:29400", "node-7.lan:80")] == \
        ["127.0.0.1:29500", "[::1]:29400", "node-7.lan:80"]


# --- 9, 10: a refused weights file or checkpoint is one clean line -------------------------------------------

from tests.test_untrusted import MARKER, _Payload  # noqa: E402  (one payload for every crafted pickle)


def _crafted(kind: str, path, marker):
    """A file PyTorch's weights-only unpickler refuses: one naming a Python object, or a protocol-4 pickle
    (the unpickler warns about its protocol in two lines before refusing it)."""
    import pickle

    import torch

    if kind == "global":
        torch.save({"state_dict": {"w": torch.zeros(2)}, "x": _Payload(str(marker))}, path)
    else:
        path.write_bytes(pickle.dumps({"w": [1.0, 2.0], "x": _Payload(str(marker))}, protocol=4))
    return path


def _clean_refusal(text: str) -> None:
    """No advice to load the file unrestricted, no cut URL, no warning before it, no cut sentence."""
    for leak in ("weights_only", "allowlist", "safe_globals", "://", "UserWarning", "Traceback"):
        assert leak not in text, text


@pytest.mark.parametrize("kind, named", [("global", "needs an unrestricted unpickler (it holds posix.mkdir)"),
                                         ("protocol4", "is not a PyTorch state dict (Unsupported operand 149)")])
def test_refused_weights_are_one_clean_line(tmp_path, kind, named):
    """A real process: the protocol-4 warning goes to the terminal, where pytest cannot catch it."""
    import os
    import subprocess
    import sys

    weights = _crafted(kind, tmp_path / "w.pt", tmp_path / MARKER)
    res = subprocess.run([sys.executable, "-m", "vtk_vision.cli", "export", "--model", "lenet5", "--weights",
                          str(weights)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env=os.environ | {"VTK_RUNS_DIR": str(tmp_path / "runs")})
    out = (res.stdout + res.stderr).strip()
    assert res.returncode == 1 and len(out.splitlines()) == 1 and named in out, out
    assert out.endswith("save model.state_dict() or use safetensors"), out
    _clean_refusal(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pt"]  # no marker, no run folder


@pytest.mark.parametrize("kind", ["global", "protocol4"])
def test_a_refused_checkpoint_is_one_clean_line(trained_run, shared_data, tmp_path, kind):
    import json
    import shutil

    run = tmp_path / trained_run.name
    shutil.copytree(trained_run, run)
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(record | {"status": "interrupted"}))
    _crafted(kind, run / "checkpoint.pt", tmp_path / MARKER)
    runner = CliRunner(env={"VTK_DATA_DIR": str(shared_data)})
    line = _one_line(runner.invoke(cli, ["train", "--resume", str(run)], obj={}))
    assert "is damaged or not one vtk wrote (" in line and line.endswith("it was not loaded. Start a new run")
    assert ("posix.mkdir" if kind == "global" else "Unsupported operand 149") in line
    _clean_refusal(line)
    assert not (tmp_path / MARKER).exists()


def test_the_reason_is_cut_at_a_word_never_mid_url():
    from vtk_vision.core.weights_only import refusal_reason

    long = RuntimeError("Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` "
                        "will likely succeed.\n" + "word " * 60 + "end. Next sentence https://pytorch.org/x.html")
    reason = refusal_reason(long)
    assert reason.endswith("word...") and len(reason) <= 123 and "weights_only" not in reason
    assert refusal_reason(RuntimeError("Invalid magic number; corrupt file?")) == "Invalid magic number"


@pytest.mark.parametrize("where, value, suffix", [(2, "nan", ".pt"), (-1, "inf", ".safetensors"),
                                                   (0, "-inf", ".pt")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, where, value, suffix):
    import torch
    from safetensors.torch import save_file
    from vtk_vision.models import create_model

    state = create_model("lenet5").state_dict()
    name = list(state)[where]
    state[name].view(-1)[0] = float(value)
    path = tmp_path / f"w{suffix}"
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    runs = tmp_path / "runs"
    res = CliRunner(env={"VTK_RUNS_DIR": str(runs)}).invoke(
        cli, ["export", "--model", "lenet5", "--weights", str(path)], obj={})
    line = _one_line(res)
    assert f"tensor '{name}' holds NaN or infinity" in line and "max abs diff" not in line
    assert not runs.exists() or not any(runs.iterdir())


# --- 11: a model that calls sys.exit() or raises a BaseException is refused, not obeyed -----------------------

MODELS = '''
import sys
from torch import nn


class Quits(nn.Module):
    def __init__(self, num_classes=10, in_channels=1):
        super().__init__()
        self.fc = nn.Linear(in_channels * 28 * 28, num_classes)

    def forward(self, x):
        sys.exit(3)


class Odd(BaseException):
    pass


class OddForward(Quits):
    def forward(self, x):
        raise Odd("not an Exception")


class QuitsBuilding(nn.Module):
    def __init__(self, num_classes=10, in_channels=1):
        sys.exit(3)


class Interrupted(Quits):
    def forward(self, x):
        raise KeyboardInterrupt
'''


@pytest.mark.parametrize("command", [["summary"], ["train", "--epochs", "1", "--subset", "0.01"], ["export"]])
@pytest.mark.parametrize("name, said", [("Quits", "fails on a 1x28x28 input (called sys.exit(3)); fix the model"),
                                        ("OddForward", "fails on a 1x28x28 input (Odd: not an Exception)"),
                                        ("QuitsBuilding", "QuitsBuilding(num_classes=10, in_channels=1) called "
                                                          "sys.exit(3)")])
def test_a_model_that_exits_is_one_line_and_exit_1(tmp_path, shared_data, command, name, said):
    import torch

    (tmp_path / "nets.py").write_text(MODELS)
    torch.save({"fc.weight": torch.zeros(10, 784), "fc.bias": torch.zeros(10)}, tmp_path / "w.pt")
    spec = f"{tmp_path / 'nets.py'}:{name}"
    args = [command[0], spec, *command[1:]] if command[0] != "export" else \
        ["export", "--model", spec, "--weights", str(tmp_path / "w.pt")]
    runs = tmp_path / "runs"
    res = CliRunner(env={"VTK_RUNS_DIR": str(runs), "VTK_DATA_DIR": str(shared_data)}).invoke(cli, args, obj={})
    line = _one_line(res)
    assert f"nets.py:{name}" in line and said in line
    assert not runs.exists() or not any(runs.iterdir())


def test_a_real_interrupt_in_forward_is_still_an_interrupt(tmp_path):
    (tmp_path / "nets.py").write_text(MODELS)
    res = CliRunner().invoke(cli, ["summary", f"{tmp_path / 'nets.py'}:Interrupted"], obj={})
    assert res.exit_code == 130 and "interrupted" in res.output


# --- 12: an output path that is not a regular file is refused, never replaced -------------------------------


def _odd_targets(tmp_path):
    """A FIFO, a symbolic link to a regular file, a folder, a socket, and (as root) a character device: all
    made here, in tmp_path, never under the real /dev."""
    import os
    import socket
    import stat

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "real.html").write_text("keep me")
    (tmp_path / "link.html").symlink_to(tmp_path / "real.html")
    (tmp_path / "folder").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    sock.close()
    targets = {"fifo": "a named pipe (FIFO)", "link.html": "a symbolic link", "folder": "a folder",
               "sock": "a socket"}
    if os.geteuid() == 0:
        try:  # /dev/null's numbers, on a node in tmp_path
            os.mknod(tmp_path / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
            targets["null"] = "a character device"
        except OSError:  # a container without CAP_MKNOD
            pass
    return targets


def _kinds(tmp_path) -> dict[str, int]:
    import os
    import stat

    return {p.name: stat.S_IFMT(os.lstat(p).st_mode) for p in tmp_path.iterdir()}


def test_the_atomic_writer_refuses_what_a_rename_would_replace(tmp_path):
    from vtk_vision.core.atomic import write_text

    targets = _odd_targets(tmp_path)
    before = _kinds(tmp_path)
    for name, kind in targets.items():
        with pytest.raises(VtkError, match=re.escape(f"is {kind}; vtk writes only over a regular file")):
            write_text(tmp_path / name, "payload")
    assert _kinds(tmp_path) == before and (tmp_path / "real.html").read_text() == "keep me"
    write_text(tmp_path / "new.txt", "fine")  # the next write still works
    write_text(tmp_path / "new.txt", "again")
    assert (tmp_path / "new.txt").read_text() == "again"


def test_report_out_refuses_a_device_a_fifo_and_a_link(trained_run, tmp_path):
    targets = _odd_targets(tmp_path)
    before = _kinds(tmp_path)
    for name, kind in targets.items():
        if name == "folder":
            continue  # click's dir_okay=False answers that one (exit 2)
        line = _one_line(CliRunner().invoke(cli, ["report", str(trained_run), "--out", str(tmp_path / name)],
                                            obj={}))
        assert f"is {kind}" in line
    assert _kinds(tmp_path) == before and (tmp_path / "real.html").read_text() == "keep me"
    res = CliRunner().invoke(cli, ["report", str(trained_run), "--out", str(tmp_path / "ok.html")], obj={})
    assert res.exit_code == 0 and (tmp_path / "ok.html").stat().st_size > 0


def test_a_folder_writer_refuses_a_link_or_a_file_in_the_folders_place(tmp_path):
    from vtk_vision.core.atomic import atomic_dir

    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("x")
    for name, kind in (("link", "a symbolic link"), ("file", "a regular file")):
        with pytest.raises(VtkError, match=f"is {kind}; vtk writes only over a folder"):
            with atomic_dir(tmp_path / name) as tmp:
                (tmp / "inside").write_text("payload")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "file").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "link", "real"]
