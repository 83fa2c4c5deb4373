"""Files someone hands you: none of them can make vtk run code it was not asked to run.

Every crafted input is made here, in the test."""

from __future__ import annotations

import io
import os
import re
import shutil
import zipfile

import pytest
import torch
from click.testing import CliRunner
from vtk_vision.cli import cli

MARKER = "VTK-PAYLOAD-RAN"


class _Payload:
    """Unpickling this calls os.mkdir(marker): visible proof that code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _swap_member(src, dst, endswith: str, data: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            zout.writestr(item, data if item.filename.endswith(endswith) else zin.read(item.filename))


def _snapshot(path):
    return path.read_bytes() if path.exists() else None


def _bench(run, *args):
    return CliRunner().invoke(cli, ["bench", str(run), "--batch-sizes", "1", "--warmup-s", "0", "--min-iters", "1",
                                    "--min-s", "0", "--threads", "1", *args], obj={})


def test_crafted_pt2_is_refused_and_its_payload_never_runs(handed_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pt2 = handed_run / "exports" / "model.pt2"
    buf = io.BytesIO()
    torch.save(_Payload(str(tmp_path / MARKER)), buf)
    _swap_member(pt2, tmp_path / "evil.pt2", "sample_inputs/model.pt", buf.getvalue())
    shutil.copy(tmp_path / "evil.pt2", pt2)
    before = _snapshot(handed_run / "bench.json")
    res = _bench(handed_run, "--runtime", "eager,pt2")
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "refuses it" in lines[0] and "model.pt2" in lines[0]
    assert not (tmp_path / MARKER).exists(), "the pickled payload ran"
    assert _snapshot(handed_run / "bench.json") == before  # an earlier bench.json is kept as it was
    res = CliRunner().invoke(cli, ["bench", str(tmp_path / "evil.pt2"), "--threads", "1"], obj={})  # as a file
    assert res.exit_code == 1 and "refuses it" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / MARKER).exists(), "the pickled payload ran"


def test_vtk_written_torchscript_loads_without_asking(handed_run):
    res = _bench(handed_run, "--runtime", "torchscript", "--batch-sizes", "64")  # 10,000 calls at batch 1
    assert res.exit_code == 0, res.output


def test_torchscript_from_elsewhere_needs_consent(handed_run, monkeypatch, tmp_path):
    # another user's machine: this vtk has no record of having written the file
    monkeypatch.setenv("VTK_STATE_DIR", str(tmp_path / "another-user"))
    before = _snapshot(handed_run / "bench.json")
    res = _bench(handed_run, "--runtime", "eager,torchscript")  # asked before any runtime runs
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert "is TorchScript, which is code" in res.output and "--trust-code" in res.output
    assert _snapshot(handed_run / "bench.json") == before
    res = _bench(handed_run, "--runtime", "torchscript", "--trust-code", "--batch-sizes", "64")  # 10,000 calls at 1
    assert res.exit_code == 0, res.output


def test_torchscript_metadata_is_read_without_loading_the_program(handed_run, monkeypatch):
    from vtk_vision.exporters import read_artifact_metadata

    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load was called"))
    assert read_artifact_metadata(handed_run / "exports" / "model.torchscript")["model"] == "lenet5"


# ------------------------------------------------------------- data and caches
import json
import logging
import subprocess
import sys
import tarfile
import zlib

import numpy as np
from PIL import Image
from vtk_vision.core.errors import DataError
from vtk_vision.data import load_dataset
from vtk_vision.data.sources import read_image_tree, unpack_tarball

from tests.data_fakes import fake_mnist, fake_tree, write_idx


def _tar(folder, out):
    with tarfile.open(out, "w") as tar:
        for p in sorted(folder.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(folder)), recursive=False)
    os.utime(out, ns=(10**18, 10**18))
    return out


def test_a_replaced_tarball_of_the_same_size_is_unpacked_again(tmp_path, monkeypatch):
    monkeypatch.setenv("VTK_CACHE_DIR", str(tmp_path / "cache"))
    for names, where in ((("aa", "bb"), "one"), (("cc", "dd"), "two")):
        fake_tree(tmp_path / where / "train", classes=names, per_class=2)
        fake_tree(tmp_path / where / "test", classes=names, per_class=1)
    a, b = _tar(tmp_path / "one", tmp_path / "a.tar"), _tar(tmp_path / "two", tmp_path / "b.tar")
    assert a.stat().st_size == b.stat().st_size
    tarball = tmp_path / "data.tar"
    shutil.copy(a, tarball)
    os.utime(tarball, ns=(10**18, 10**18))
    assert read_image_tree(unpack_tarball(tarball, "t"))[1]["classes"] == ["aa", "bb"]
    shutil.copy(b, tarball)  # same size, same mtime: only the content differs
    os.utime(tarball, ns=(10**18, 10**18))
    assert read_image_tree(unpack_tarball(tarball, "t"))[1]["classes"] == ["cc", "dd"]


def test_an_unpack_that_lost_files_is_done_again(tmp_path, monkeypatch):
    monkeypatch.setenv("VTK_CACHE_DIR", str(tmp_path / "cache"))
    fake_tree(tmp_path / "src" / "train", per_class=2)
    fake_tree(tmp_path / "src" / "test", per_class=1)
    dest = unpack_tarball(_tar(tmp_path / "src", tmp_path / "d.tar"), "t")
    shutil.rmtree(dest / "test")  # as if the unpack was cut short, or someone cleaned the cache
    assert (unpack_tarball(tmp_path / "d.tar", "t") / "test" / "cat" / "0.png").exists()


def test_a_tree_with_train_but_no_test_is_refused(tmp_path):
    fake_tree(tmp_path / "t" / "train")
    with pytest.raises(DataError, match="has train/ but no test/"):
        load_dataset(f"imagefolder:{tmp_path / 't'}")


def test_labels_outside_the_class_list_are_refused(tmp_path):
    root = fake_mnist(tmp_path)
    write_idx(root / "MNIST" / "raw" / "train-labels-idx1-ubyte", np.r_[np.arange(59) % 10, 200])
    with pytest.raises(DataError, match="train labels run from 0 to 200, but there are 10 classes"):
        load_dataset("mnist", root)


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    from vtk_vision.data.images import decode

    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert (decode(tmp_path / "deep.png", (8, 8), grey=True) == 128).all()


def _png_header_only(path, width, height):
    """A PNG that claims width x height pixels: the header alone, so the test never holds the pixels."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_decompression_bombs_are_refused_in_one_line(tmp_path):
    root = fake_tree(tmp_path / "t")
    _png_header_only(root / "cat" / "bomb.png", 30000, 30000)
    res = CliRunner().invoke(cli, ["show", f"imagefolder:{root}", "--out", str(tmp_path / "g.png")], obj={})
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert "bomb.png" in res.output and "pixels" in res.output and not (tmp_path / "g.png").exists()


def test_hidden_files_and_folders_are_not_classes(tmp_path):
    root = fake_tree(tmp_path / "t", per_class=5)
    fake_tree(root / ".ipynb_checkpoints", classes=("x",), per_class=1)
    (root / "cat" / ".DS_Store").write_bytes(b"\x00junk")
    assert load_dataset(f"imagefolder:{root}").classes == ("cat", "dog")


def test_a_symlink_loop_is_one_line(tmp_path):
    root = fake_tree(tmp_path / "t")
    os.symlink(root / "cat" / "loop-b.png", root / "cat" / "loop-a.png")
    os.symlink(root / "cat" / "loop-a.png", root / "cat" / "loop-b.png")
    with pytest.raises(DataError, match="loop-a.png"):
        load_dataset(f"imagefolder:{root}")


def test_a_class_folder_name_that_is_not_utf8_is_refused(tmp_path):
    root = fake_tree(tmp_path / "t")
    os.rename(root / "dog", os.fsdecode(bytes(root) + b"/caf\xe9"))
    res = CliRunner().invoke(cli, ["show", f"imagefolder:{root}", "--out", str(tmp_path / "g.png")], obj={})
    assert res.exit_code == 1 and "caf\\xe9" in res.output and "not valid UTF-8" in res.output


def test_images_are_resized_as_they_are_decoded(tmp_path):
    """Twelve 3000x3000 PNGs (324 MB as full RGB arrays, a few KB on disk) decode at 32x32 within a
    small fraction of that: memory follows the output size."""
    for c in ("a", "b"):
        (tmp_path / "t" / c).mkdir(parents=True)
        Image.new("RGB", (32, 32), (10, 20, 30)).save(tmp_path / "t" / c / "0.png")  # the first sets the size
        for i in range(1, 7):
            Image.new("RGB", (3000, 3000), (i, 2 * i, 3 * i)).save(tmp_path / "t" / c / f"{i}.png")
    code = ("import resource; from pathlib import Path; from vtk_vision.data.sources import _decode_folder\n"
            "import torch; before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"x, y, classes = _decode_folder(Path({str(tmp_path / 't')!r}))\n"
            "print(tuple(x.shape), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    shape, grown_mb = res.stdout.rsplit(" ", 1)[0], int(res.stdout.split()[-1])
    assert shape == "(14, 3, 32, 32)", res.stderr
    assert grown_mb < 120, f"decoding grew the process by {grown_mb} MB"


def test_a_cache_others_can_write_is_not_used(tmp_path, monkeypatch, caplog):
    root = fake_mnist(tmp_path / "data")
    cache = tmp_path / "shared-cache"
    cache.mkdir(mode=0o777)
    os.chmod(cache, 0o777)
    monkeypatch.setenv("VTK_CACHE_DIR", str(cache))
    with caplog.at_level(logging.WARNING, logger="vtk"):
        ds = load_dataset("mnist", root)
    assert len(ds.train) == 60 and "writable by others" in caplog.text
    assert not list(cache.rglob("*.safetensors"))


def test_a_file_replaced_with_same_size_and_mtime_is_not_served_stale(tmp_path, monkeypatch):
    root = fake_mnist(tmp_path / "data")
    monkeypatch.setenv("VTK_CACHE_DIR", str(tmp_path / "cache"))
    path = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    load_dataset("mnist", root)
    stamp = path.stat().st_mtime_ns
    write_idx(tmp_path / "new", np.full((20, 28, 28), 9))
    os.utime(tmp_path / "new", ns=(stamp, stamp))
    os.replace(tmp_path / "new", path)  # same size, same mtime, another file
    assert (load_dataset("mnist", root).test.images == 9).all()


# ------------------------------------------------------------- what reaches the terminal
def test_markup_and_escape_sequences_print_as_text(handed_run, tmp_path):
    data = json.loads((handed_run / "run.json").read_text())
    data["data"]["classes"] = [f"[/x]{i}\x1b[31mred" for i in range(10)]  # whatever it predicts, the name is hostile
    (handed_run / "run.json").write_text(json.dumps(data))
    Image.new("L", (28, 28), 0).save(tmp_path / "a[b]c.png")
    res = CliRunner().invoke(cli, ["predict", str(handed_run), str(tmp_path / "a[b]c.png"),
                                   "--out", str(tmp_path / "p.png")], obj={})
    assert res.exit_code == 0, res.output
    assert "a[b]c.png: [/x]" in res.output and "\\x1b[31mred" in res.output and "\x1b" not in res.output


def test_a_runs_folder_with_markup_in_its_name_trains(tmp_path, shared_data):
    runs = tmp_path / "rd[/x]"
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data)}).invoke(
        cli, ["train", "linear", "--subset", "0.02", "--epochs", "1", "--runs-dir", str(runs)], obj={})
    assert res.exit_code == 0, res.output
    assert "rd[/x]" in res.output and (runs / "latest").exists()


# ------------------------------------------------------------- bad values
@pytest.mark.parametrize("args", [
    ["train", "lenet5", "--lr", "nan"], ["train", "lenet5", "--subset", "nan"],
    ["train", "lenet5", "--val-fraction", "nan"], ["train", "lenet5", "--val-fraction", "0.999"],
    ["train", "lenet5", "--seed", "1e23"], ["train", "lenet5", "--input-size", "100000"],
    ["train", "lenet5", "--label-smoothing", "nan"], ["train", "lenet5", "--momentum", "nan"],
    ["train", "lenet5", "--class-weights", "2=-5"], ["bench", "--min-s", "inf"], ["bench", "--warmup-s", "nan"],
    ["predict", *[f"{i}.png" for i in range(102)]],
])
def test_bad_values_are_refused_before_anything_is_created(args, tmp_path):
    res = CliRunner(env={"VTK_RUNS_DIR": str(tmp_path / "runs")}).invoke(cli, args, obj={})
    assert res.exit_code == 2 and "Error:" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "runs").exists()


def test_an_empty_split_is_refused_before_a_run_folder_exists(tmp_path, shared_data):
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(tmp_path / "runs")}).invoke(
        cli, ["train", "lenet5", "--subset", "0.0001"], obj={})
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "leaves no" in res.output
    assert not list((tmp_path / "runs").glob("lenet5-*"))


def _vtk_with_file_size_limit(limit_bytes: int, *args: str, env: dict) -> subprocess.CompletedProcess:
    """`vtk ARGS` where no file may grow past `limit_bytes`: writes fail as on a full disk (EFBIG, not a kill)."""
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes}))\n"
            "from vtk_vision.cli import main\n"
            f"sys.argv = ['vtk', *{list(args)!r}]\nmain()\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=os.environ | env, check=False)


@pytest.mark.parametrize("fmt", ["torchscript", "pt2", "onnx"])
def test_a_full_disk_during_export_is_one_line_and_leaves_nothing(handed_run, tmp_path, shared_data, fmt):
    out = tmp_path / "out"
    res = _vtk_with_file_size_limit(50_000, "export", str(handed_run), "--format", fmt, "--out", str(out),
                                    env={"VTK_DATA_DIR": str(shared_data)})
    assert res.returncode == 1, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "cannot write" in errors[0] and "Traceback" not in res.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_a_full_disk_during_bench_json_keeps_the_old_file(handed_run, tmp_path, shared_data):
    (handed_run / "bench.json").write_text('{"old": true}')
    res = _vtk_with_file_size_limit(1_000, "bench", str(handed_run), "--runtime", "eager", "--batch-sizes", "64",
                                    "--warmup-s", "0", "--min-iters", "1", "--min-s", "0", "--threads", "1",
                                    env={"VTK_DATA_DIR": str(shared_data)})
    assert res.returncode == 1 and "cannot write" in res.stderr and "Traceback" not in res.stderr
    assert (handed_run / "bench.json").read_text() == '{"old": true}'
    assert [p.name for p in handed_run.iterdir() if p.name.startswith(".") and p.name != ".lock"] == []


# ------------------------------------------------------------- outputs
def test_a_bench_where_every_row_failed_exits_1_and_keeps_the_old_report(handed_run):
    (handed_run / "bench.json").write_text('{"old": true}')
    (handed_run / "exports" / "model.onnx").write_bytes(b"not an onnx file")
    res = _bench(handed_run, "--runtime", "onnx")
    assert res.exit_code == 1 and "every row failed" in res.output
    assert (handed_run / "bench.json").read_text() == '{"old": true}'


def test_a_static_export_never_replaces_the_dynamic_one(handed_run):
    before = (handed_run / "exports" / "model.onnx").read_bytes()
    res = CliRunner().invoke(cli, ["export", str(handed_run), "--static-batch", "--batch-size", "4"], obj={})
    assert res.exit_code == 0, res.output
    assert (handed_run / "exports" / "model.onnx").read_bytes() == before
    assert (handed_run / "exports" / "model.b4.onnx").exists()
    assert _bench(handed_run, "--runtime", "onnx").exit_code == 0


def test_a_symlinked_exports_folder_is_not_followed(handed_run, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(handed_run / "exports")
    os.symlink(outside, handed_run / "exports")
    res = CliRunner().invoke(cli, ["export", str(handed_run)], obj={})
    assert res.exit_code == 1 and "leads out of the run folder" in res.output
    assert list(outside.iterdir()) == []


def test_temporaries_of_a_killed_export_are_removed_by_the_next(handed_run):
    exports = handed_run / "exports"
    stale = exports / ".model.onnx.vtk999999-x1y2.onnx"  # as a kill -9 leaves it: pid 999999 runs no more
    stale.write_bytes(b"half an onnx file")
    res = CliRunner().invoke(cli, ["export", str(handed_run)], obj={})
    assert res.exit_code == 0, res.output
    assert not stale.exists() and [p for p in exports.iterdir() if p.name.startswith(".")] == []


def test_a_full_disk_during_a_cache_write_is_a_warning_and_the_data_still_loads(tmp_path):
    root = fake_mnist(tmp_path / "data")
    # `vtk show` loads the data (`vtk datasets` no longer decodes): the cache entry (~55 KB) cannot be
    # written under the limit, the one-image grid can
    res = _vtk_with_file_size_limit(20_000, "show", "mnist", "--n", "1", "--data-dir", str(root), "--out",
                                    str(tmp_path / "grid.png"), env={"VTK_CACHE_DIR": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "grid.png").is_file()
    assert "warning: could not cache mnist" in res.stderr and "cannot write" in res.stderr
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_pt2_whose_symbolic_shape_is_python_is_refused(handed_run, tmp_path):
    """torch.export.load hands shape strings to sympy.sympify, which evaluates them with eval."""
    pt2 = handed_run / "exports" / "model.pt2"
    with zipfile.ZipFile(pt2) as z:
        name = next(n for n in z.namelist() if n.endswith("models/model.json"))
        text = z.read(name).decode()
    symbol = re.search(r"Symbol\('s\d+', positive=True, integer=True\)", text).group(0)
    payload = f"__import__(\\u0027os\\u0027).mkdir(\\u0027{tmp_path / MARKER}\\u0027) or {symbol}".replace("'", "\\u0027")
    _swap_member(pt2, tmp_path / "evil.pt2", "models/model.json", text.replace(f'"{symbol}"', f'"{payload}"', 1).encode())
    shutil.copy(tmp_path / "evil.pt2", pt2)
    res = _bench(handed_run, "--runtime", "pt2")
    assert res.exit_code == 1 and "not plain arithmetic" in res.output
    assert not (tmp_path / MARKER).exists(), "the shape string ran as Python"


# ------------------------------------------------------------- found by an adversarial review
def test_a_batch_larger_than_the_test_split_times_that_many_images(handed_run):
    from vtk_vision.bench.run import BenchOptions, bench_run
    from vtk_vision.runs.folder import load_run

    opts = BenchOptions(runtimes=("onnx",), batch_sizes=(20_000,), warmup_s=0, min_iters=2, min_s=0, threads=1)
    (row,) = bench_run(load_run(handed_run), opts)["rows"]
    assert row["status"] == "ok"  # 20,000 images a call from a 10,000-image split: the split twice
    assert row["images_per_s"] == pytest.approx(20_000 / (row["latency_ms"]["p50"] / 1e3))


def test_planted_processed_tensors_are_never_read(tmp_path):
    root = fake_mnist(tmp_path)
    (root / "MNIST" / "processed").mkdir()
    for name, n in (("training.pt", 499), ("test.pt", 100)):
        torch.save((torch.zeros(n, 28, 28, dtype=torch.uint8), torch.zeros(n, dtype=torch.long)),
                   root / "MNIST" / "processed" / name)
    ds = load_dataset("mnist", root)
    assert (len(ds.train), len(ds.test)) == (60, 20)  # the raw files vtk checked, not the planted tensors


def test_a_grey_train_tree_with_an_rgb_test_tree_trains(tmp_path):
    fake_tree(tmp_path / "t" / "train", per_class=4, mode="L")
    fake_tree(tmp_path / "t" / "test", per_class=2, mode="RGB")
    ds = load_dataset(f"imagefolder:{tmp_path / 't'}")
    assert ds.train.images.shape[1] == ds.test.images.shape[1] == 1


@pytest.mark.parametrize("change,needle", [
    (lambda d: (d["model"].__setitem__("num_classes", 3), d["data"].__setitem__("classes", list("abc"))),
     "gives 10 outputs, but the record says 3 classes"),
    (lambda d: d["model"]["kwargs"].__setitem__("num_classes", -1), "do not build lenet5"),
    (lambda d: d["data"].__setitem__("name", "mnist"), "class 0 is 'T-shirt/top' there and '0 - zero' here"),
])
def test_a_run_json_that_disagrees_with_its_model_or_data_is_one_line(handed_run, change, needle):
    data = json.loads((handed_run / "run.json").read_text())
    change(data)
    (handed_run / "run.json").write_text(json.dumps(data))
    res = CliRunner().invoke(cli, ["eval", str(handed_run)], obj={})
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and needle in res.output


def test_a_static_batch_larger_than_the_test_split_is_one_line(handed_run):
    res = CliRunner().invoke(cli, ["export", str(handed_run), "--static-batch", "--batch-size", "20000"], obj={})
    assert res.exit_code == 1 and "is larger than the 10,000 test images" in res.output


def test_a_checkpoint_of_another_shape_is_one_line(handed_run, tmp_path):
    data = json.loads((handed_run / "run.json").read_text())
    data["status"] = "interrupted"
    (handed_run / "run.json").write_text(json.dumps(data))
    shutil.copy(handed_run / "model.safetensors", handed_run / "resume.safetensors")
    torch.save({"hello": 1}, handed_run / "resume.pt")
    res = CliRunner().invoke(cli, ["train", "--resume", str(handed_run)], obj={})
    assert res.exit_code == 1 and "is not one vtk wrote" in res.output and "Traceback" not in res.output


def test_a_class_named_like_mathtext_is_drawn_as_text(tmp_path):
    root = fake_tree(tmp_path / "t", classes=("$\\foo$", "dog"))
    res = CliRunner().invoke(cli, ["show", f"imagefolder:{root}", "--out", str(tmp_path / "g.png")], obj={})
    assert res.exit_code == 0, res.output


def test_a_broken_compare_file_stops_before_anything_is_written(handed_run, tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"rows": [{"runtime": "eager", "provider": "cpu", "batch": 1, "status": "ok",
                                         "latency_ms": {"p50": 0}, "images_per_s": 0}]}))
    res = _bench(handed_run, "--runtime", "eager", "--json", str(tmp_path / "new.json"), "--compare", str(old))
    assert res.exit_code == 1 and "holds no usable p50" in res.output and not (tmp_path / "new.json").exists()


@pytest.mark.parametrize("args", [["bench", "--threads", "99999999999"],
                                  ["summary", "lenet5", "--input-size", "2000000000"]])
def test_huge_numbers_are_refused_as_options(args):
    res = CliRunner().invoke(cli, args, obj={})
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_a_tree_of_identical_images_is_refused_before_training(tmp_path):
    for c in ("a", "b"):
        (tmp_path / "t" / c).mkdir(parents=True)
        for i in range(5):
            Image.new("L", (28, 28), 7).save(tmp_path / "t" / c / f"{i}.png")
    res = CliRunner().invoke(cli, ["train", "linear", "--dataset", f"imagefolder:{tmp_path / 't'}",
                                   "--runs-dir", str(tmp_path / "runs")], obj={})
    assert res.exit_code == 1 and "nothing to learn" in res.output and not (tmp_path / "runs").exists()


def test_all_class_weights_zero_is_refused_before_a_run_folder(tmp_path, shared_data):
    weights = ",".join(f"{c}=0" for c in range(10))
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data)}).invoke(
        cli, ["train", "linear", "--class-weights", weights, "--runs-dir", str(tmp_path / "runs")], obj={})
    assert res.exit_code == 1 and "every class weight 0" in res.output
    assert not list((tmp_path / "runs").glob("linear-*"))


def test_a_failed_export_leaves_no_empty_folder(handed_run, tmp_path):
    res = CliRunner().invoke(cli, ["export", str(handed_run), "--opset", "5", "--out", str(tmp_path / "o")], obj={})
    assert res.exit_code == 1 and not (tmp_path / "o").exists()


def test_an_artifact_that_is_not_a_regular_file_is_refused(handed_run):
    (handed_run / "exports" / "model.torchscript").unlink()
    os.symlink("/dev/zero", handed_run / "exports" / "model.torchscript")
    res = _bench(handed_run, "--runtime", "torchscript")
    assert res.exit_code == 1 and "leads out of the run folder" in res.output


def test_a_newline_in_a_name_cannot_forge_a_line(handed_run, tmp_path):
    forged = tmp_path / "nl\nERROR: fake line"
    shutil.copytree(handed_run, forged)
    res = CliRunner().invoke(cli, ["eval", str(forged)], obj={})
    assert res.exit_code == 0, res.output
    assert not any(line.startswith("ERROR: fake line") for line in res.output.splitlines())


def test_a_symlinked_class_folder_is_part_of_the_cache_key(tmp_path, monkeypatch):
    monkeypatch.setenv("VTK_CACHE_DIR", str(tmp_path / "cache"))
    fake_tree(tmp_path / "elsewhere", classes=("b",), per_class=3)
    root = fake_tree(tmp_path / "t", classes=("a",), per_class=3)
    os.symlink(tmp_path / "elsewhere" / "b", root / "b")
    before = len(load_dataset(f"imagefolder:{root}").train)
    fake_tree(tmp_path / "more", classes=("b",), per_class=5)
    for i in range(5):
        shutil.copy(tmp_path / "more" / "b" / f"{i}.png", tmp_path / "elsewhere" / "b" / f"new{i}.png")
    assert len(load_dataset(f"imagefolder:{root}").train) > before  # the new images behind the link count
