"""Handed files that would run code through torch.export's strings, or never end: neither may happen.

Each crafted file is made here: a pt2 archive whose guards code is a payload, one whose graph loops
(torch's while_loop), and an ONNX graph with a Loop of 2**62 turns. The hanging ones run in a child vtk
where a runtime cannot be stopped (OpenVINO), so a thread left spinning never outlives its test.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from vtk_vision.cli import cli

from tests.test_survival import _default_sigint

MARKER = "VTK-GUARDS-PAYLOAD-RAN"
# -X faulthandler: a child that hangs is sent SIGABRT (see _ended) and prints where each thread stood
VTK = [sys.executable, "-X", "faulthandler", "-c", "from vtk_vision.cli import main; main()"]


def _rewrite_model_json(src: Path, dst: Path, change) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("models/model.json"):
                program = json.loads(data)
                change(program)
                data = json.dumps(program).encode()
            zout.writestr(item, data)


def _one_line(res) -> str:
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    return lines[0]


def _bench(*args: str):
    return CliRunner().invoke(cli, ["bench", "--batch-sizes", "1", "--warmup-s", "0", "--min-iters", "1",
                                    "--min-s", "0", "--threads", "1", *map(str, args)], obj={})  # args win


def test_guards_code_in_a_pt2_never_runs(handed_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pt2 = handed_run / "exports" / "model.pt2"
    payload = f"__import__('os').mkdir({str(tmp_path / MARKER)!r}) is None"
    _rewrite_model_json(pt2, tmp_path / "evil.pt2", lambda p: p.__setitem__("guards_code", [payload]))
    pt2.write_bytes((tmp_path / "evil.pt2").read_bytes())
    for target in (handed_run, tmp_path / "evil.pt2"):  # a handed run folder's export, and a file on its own
        res = _bench(target, "--runtime", "pt2")
        assert res.exit_code == 1, res.output
        line = _one_line(res)
        assert "guards code" in line and "will not run it" in line, line
        assert not (tmp_path / MARKER).exists(), "the guards code ran"
    assert not (handed_run / "bench.json").exists() and not (tmp_path / "evil.pt2.bench.json").exists()
    res = _bench(handed_run, "--runtime", "onnx")  # the next command still works
    assert res.exit_code == 0, res.output


def test_a_pt2_whose_graph_loops_is_refused(tmp_path):
    from torch._higher_order_ops.while_loop import while_loop

    class Loops(torch.nn.Module):
        def forward(self, x):
            _, y = while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x + 1), (torch.tensor(0), x))
            return y.flatten(1)

    torch.export.save(torch.export.export(Loops(), (torch.randn(2, 1, 8, 8),)), tmp_path / "loops.pt2")
    res = _bench(tmp_path / "loops.pt2")
    assert res.exit_code == 1, res.output
    assert "a call to while_loop (not a plain ATen operator)" in _one_line(res)


def test_vtk_loads_its_own_pt2_without_checking_guards(handed_run, monkeypatch):
    """vtk's archives carry no guards code, and the program's module is made with check_guards=False."""
    from vtk_vision.exporters.formats.pt2_format import safe_load

    program = safe_load(handed_run / "exports" / "model.pt2")
    assert program._guards_code == []
    made = []
    original = torch.export.ExportedProgram.module
    monkeypatch.setattr(torch.export.ExportedProgram, "module",
                        lambda self, **kw: made.append(kw) or original(self, **kw))
    assert _bench(handed_run, "--runtime", "pt2", "--batch-sizes", "64").exit_code == 0  # 10,000 calls at 1
    assert made and all(kw.get("check_guards") is False for kw in made)


def _endless_onnx(path: Path) -> Path:
    """images -> Loop(2**62 turns, condition always true, doubling its carried tensor) -> flatten."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h

    body = h.make_graph(
        [h.make_node("Identity", ["cond_in"], ["cond_out"]), h.make_node("Add", ["acc_in", "acc_in"], ["acc_out"])],
        "body", [h.make_tensor_value_info("i", T.INT64, []), h.make_tensor_value_info("cond_in", T.BOOL, []),
                 h.make_tensor_value_info("acc_in", T.FLOAT, None)],
        [h.make_tensor_value_info("cond_out", T.BOOL, []), h.make_tensor_value_info("acc_out", T.FLOAT, None)])
    nodes = [h.make_node("Constant", [], ["turns"], value=h.make_tensor("turns", T.INT64, [], [1 << 62])),
             h.make_node("Constant", [], ["go"], value=h.make_tensor("go", T.BOOL, [], [True])),
             h.make_node("Loop", ["turns", "go", "images"], ["acc"], body=body),
             h.make_node("Flatten", ["acc"], ["logits"], axis=1)]
    graph = h.make_graph(nodes, "endless", [h.make_tensor_value_info("images", T.FLOAT, ["batch", 1, 8, 8])],
                         [h.make_tensor_value_info("logits", T.FLOAT, ["batch", 64])])
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8), path)
    return path


@pytest.fixture
def endless(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return _endless_onnx(tmp_path / "endless.onnx")


def test_a_graph_that_never_ends_is_stopped_by_the_call_timeout(endless):
    """ONNX Runtime stops the run through its terminate flag: the row fails, the bench ends, no file left."""
    t0 = time.monotonic()
    res = _bench(endless, "--runtime", "onnx", "--call-timeout", "1")
    assert res.exit_code == 1, res.output
    assert "onnx: a call ran past --call-timeout 1 s and was stopped" in res.output.strip().splitlines()[-1]
    assert time.monotonic() - t0 < 60
    assert sorted(p.name for p in endless.parent.iterdir()) == ["endless.onnx"]


def _vtk(*args: str) -> subprocess.Popen:
    # SIGINT as a terminal's Ctrl-C finds it (test_survival._default_sigint): under a background job's inherited
    # SIG_IGN the SIGINT test hung 30 s in two suite runs, the main thread never interrupted (faulthandler dump)
    return subprocess.Popen([*VTK, "bench", *args, "--threads", "1", "--batch-sizes", "1"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, preexec_fn=_default_sigint())


def _ended(child: subprocess.Popen, timeout_s: float) -> str:
    """The child's stderr once it ends; one that is still running after `timeout_s` fails the test with the
    stack of every thread (faulthandler on SIGABRT): a hang seen once in a suite run needs its place named."""
    try:
        return child.communicate(timeout=timeout_s)[1]
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGABRT)
        try:
            err = child.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:
            child.kill()
            err = child.communicate()[1]
        pytest.fail(f"vtk still ran {timeout_s:g} s after the signal; its threads:\n{err}")


def test_a_runtime_that_cannot_stop_the_graph_ends_vtk_in_one_line(endless):
    """OpenVINO's CPU plugin does not cancel inside a Loop: vtk says so and ends its process."""
    child = _vtk(str(endless), "--runtime", "openvino", "--call-timeout", "1")
    err = _ended(child, 120)
    assert child.returncode == 1, err
    assert err.strip().splitlines()[-1].startswith("Error: openvino: a call ran past --call-timeout 1 s and "
                                                   "openvino has no way to stop it"), err


@pytest.mark.parametrize("runtime, sig, code", [("onnx", signal.SIGINT, 130), ("openvino", signal.SIGTERM, 143)])
def test_signals_stop_a_call_that_never_ends(endless, runtime, sig, code):
    child = _vtk(str(endless), "--runtime", runtime)  # the default limit (60 s) is far off
    line = child.stderr.readline()  # announced before the runtime loads; the hang comes after it
    assert line.startswith("row 1 of 1"), line
    time.sleep(1.5)
    assert child.poll() is None
    t0 = time.monotonic()
    child.send_signal(sig)
    err = _ended(child, 30)
    assert child.returncode == code, err
    assert time.monotonic() - t0 < 15
    assert "files being written were left as they were" in err


def test_a_pt2_whose_program_json_inflates_past_the_limit_is_refused_unread(handed_run, tmp_path, monkeypatch):
    from vtk_vision.exporters.formats import pt2_format

    monkeypatch.setattr(pt2_format, "_MAX_JSON", 1000)  # vtk's own model.json is larger: it stands for a bomb
    monkeypatch.setattr(torch.export, "load", lambda *a, **k: pytest.fail("the archive was parsed"))
    res = _bench(handed_run / "exports" / "model.pt2")
    assert res.exit_code == 1 and re.search(r"its \S+\.json inflates to [\d,]+ bytes", _one_line(res)), res.output
