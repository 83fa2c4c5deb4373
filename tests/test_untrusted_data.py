"""What a handed file says about itself is data, and what vtk believes lives where only this user can write.

Every crafted input is made here: ONNX graphs whose metadata or declared input
lie, TorchScript archives whose metadata is broken or inflates to 3 GB, trust
stores other users can write, unusable state folders, a cache that cannot be
memory-mapped."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import struct
import tracemalloc
import zipfile
import zlib

import pytest
import torch
from click.testing import CliRunner

from vtk_vision.cli import cli

FAST = ["--min-s", "0.01", "--min-iters", "3", "--warmup-s", "0", "--threads", "1"]
PREP = {"mean": [0.286], "std": [0.353]}


class Tiny(torch.nn.Module):
    """(N, 1, 28, 28) -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.head = torch.nn.Linear(4, 10)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


def vtk(*args, env=None):
    return CliRunner(env=env or {}).invoke(cli, [str(a) for a in args], obj={})


def _bench(path, tmp_path, *args, env=None):
    return vtk("bench", path, "--batch-sizes", "2", *FAST, "--json", tmp_path / "b.json", *args, env=env)


def _one_line(res, code, *needles):
    assert res.exit_code == code and "Traceback" not in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    for needle in needles:
        assert needle in res.output, res.output


@pytest.fixture(scope="module")
def base_onnx(tmp_path_factory):
    """Tiny as someone else would export it: a free batch, no vtk metadata."""
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    torch.onnx.export(Tiny().eval(), (torch.randn(2, 1, 28, 28),), str(path),
                      dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, external_data=False)
    return path


def _crafted(base, path, vtk_meta: str | None = None, dims: list[int | str] | None = None):
    """`base` with vtk metadata `vtk_meta` and/or its input declared as `dims` (a str: a free dimension)."""
    import onnx

    model = onnx.load(str(base))
    if dims is not None:
        for d, v in zip(model.graph.input[0].type.tensor_type.shape.dim, dims):
            d.Clear()
            setattr(d, "dim_param" if isinstance(v, str) else "dim_value", v)
    if vtk_meta is not None:
        model.metadata_props.add(key="vtk", value=vtk_meta)
    onnx.save(model, str(path))
    return path


# --------------------------------------------------------------- shapes: one line, exit 1, nothing allocated

@pytest.mark.parametrize("dims, args, needle", [
    ([1, 3, 100000, 100000], [], "30,000,000,000 elements"),
    ([1, 1, -5, 28], [], "input dimension -5"),
    ([1, 1, 0, 28], [], "input dimension 0"),
    (["batch", 1, "h", "w"], ["--input-shape", "1,60000,60000"], "3,600,000,000 elements"),
    ([4096, 1, 512, 512], [], "[4096, 1, 512, 512]"),  # a fixed batch larger than one tensor vtk builds
])
def test_a_declared_input_that_cannot_be_fed_is_one_line(base_onnx, tmp_path, dims, args, needle, monkeypatch):
    path = _crafted(base_onnx, tmp_path / "shape.onnx", dims=dims)
    monkeypatch.setattr(torch, "randn", lambda *a, **k: pytest.fail("an input was allocated"))
    _one_line(_bench(path, tmp_path, *args), 1, needle)
    assert not (tmp_path / "b.json").exists()


def test_batches_too_large_to_build_are_skipped_with_a_note(base_onnx, tmp_path):
    # 1 x 1024 x 1024 per image: batch 1 fits one tensor, batch 512 (2**29 elements) does not
    path = _crafted(base_onnx, tmp_path / "big.onnx", dims=["batch", 1, 1024, 1024])
    res = vtk("bench", path, "--batch-sizes", "1,512", *FAST, "--runtime", "onnx", "--json", tmp_path / "b.json")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert [r["batch"] for r in report["rows"]] == [1]
    assert any("batch 512 skipped" in n for n in report["notes"])


# --------------------------------------------------------------- accuracy metadata: bench goes on, says why

CASES = {
    "vtk metadata a list": ("[1, 2]", "list, not an object"),
    "vtk metadata a string": ('"fashion-mnist"', "string, not an object"),
    "vtk metadata not JSON": ("{'dataset':", "not JSON"),
    "vtk metadata nested too deep": ("[" * 100_000, "nested too deep"),
    "a NaN in it": ('{"dataset": "fashion-mnist", "preprocess": {"mean": [NaN], "std": [1]}}', "not JSON"),
    "mean a string": (json.dumps({"dataset": "fashion-mnist", "preprocess": {"mean": "0.3", "std": [0.3]}}),
                      "mean is not a list of numbers"),
    "no preprocess": (json.dumps({"dataset": "fashion-mnist"}), "no preprocess mean and std"),
    "std zero": (json.dumps({"dataset": "fashion-mnist", "preprocess": {"mean": [0.3], "std": [0]}}),
                 "std is not above 0"),
    "std infinite": ('{"dataset": "fashion-mnist", "preprocess": {"mean": [0.3], "std": [1e999]}}',
                     "not a finite number"),
    "a mean for two channels": (json.dumps({"dataset": "fashion-mnist", "preprocess": {"mean": [0.3] * 2,
                                                                                       "std": [0.3] * 2}}),
                                "has 2 values for 1-channel images"),
    "dataset a list": (json.dumps({"dataset": ["mnist"], "preprocess": PREP}), "dataset is not a name"),
    "dataset unknown": (json.dumps({"dataset": "nope", "preprocess": PREP}), "'nope', which is not one of vtk's"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_broken_accuracy_metadata_leaves_accuracy_not_measured(base_onnx, tmp_path, case, shared_data):
    meta, why = CASES[case]
    path = _crafted(base_onnx, tmp_path / "meta.onnx", vtk_meta=meta)
    res = _bench(path, tmp_path, "--runtime", "onnx", env={"VTK_DATA_DIR": str(shared_data)})
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    assert "accuracy not measured" in res.output, res.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["accuracy_measured"] is False and why in report["accuracy_note"]
    assert [(r["status"], r["accuracy"]) for r in report["rows"]] == [("ok", None)]


def test_metadata_naming_a_registered_dataset_is_scored(base_onnx, tmp_path, shared_data):
    """The control for the cases above: the same file with sound metadata is scored."""
    path = _crafted(base_onnx, tmp_path / "good.onnx", json.dumps({"dataset": "fashion-mnist", "preprocess": PREP}))
    res = _bench(path, tmp_path, "--runtime", "onnx", env={"VTK_DATA_DIR": str(shared_data)})
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["accuracy_measured"] is True and report["test_images"] == 10_000
    assert 0 <= report["rows"][0]["accuracy"] <= 1


def test_metadata_never_chooses_a_folder_to_read(base_onnx, tmp_path, monkeypatch):
    from tests.data_fakes import fake_tree
    from vtk_vision.data import sources

    private = fake_tree(tmp_path / "private", classes=("a", "b"), per_class=3, size=(28, 28), mode="L")
    monkeypatch.setenv("VTK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "read_image_tree", lambda *a, **k: pytest.fail("the folder was read"))
    for named in (f"imagefolder:{private}", str(private), "/etc"):
        path = _crafted(base_onnx, tmp_path / "nosy.onnx", json.dumps({"dataset": named, "preprocess": PREP}))
        res = _bench(path, tmp_path, "--runtime", "onnx")
        assert res.exit_code == 0 and "accuracy not measured" in res.output, res.output
        assert "which is not one of vtk's" in json.loads((tmp_path / "b.json").read_text())["accuracy_note"]
    assert not list((tmp_path / "cache").rglob("*.safetensors"))
    monkeypatch.undo()  # the user may still name a folder themselves, with --dataset
    res = _bench(tmp_path / "nosy.onnx", tmp_path, "--runtime", "onnx", "--dataset", f"imagefolder:{private}",
                 "--mean", "0.5", "--std", "0.25")
    assert res.exit_code == 0 and json.loads((tmp_path / "b.json").read_text())["accuracy_measured"], res.output


# --------------------------------------------------------------- TorchScript and pt2 metadata

def _torchscript(path, extra: str | None):
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(Tiny().eval(), torch.randn(1, 1, 28, 28)), buf,
                   _extra_files={"vtk.json": extra} if extra is not None else {})
    path.write_bytes(buf.getvalue())
    return path


def test_torchscript_input_shape_that_is_not_json(tmp_path):
    bad = json.dumps({"vtk": json.dumps({"input_shape": "[1, 1, 28", "dataset": "fashion-mnist"})})
    path = _torchscript(tmp_path / "bad.torchscript", bad)
    _one_line(_bench(path, tmp_path, "--trust-code"), 1, "input_shape is not a list of sizes", "--input-shape")
    res = _bench(path, tmp_path, "--trust-code", "--input-shape", "1,28,28")  # the user can still say it
    assert res.exit_code == 0, res.output
    assert "input_shape is not a list of sizes" in json.loads((tmp_path / "b.json").read_text())["accuracy_note"]


def _deflated_zeros(size: int) -> bytes:
    """A raw deflate stream of `size` zero bytes, made in milliseconds: one compressed MiB repeated (each
    copy ends in a full flush, so it stands alone) and an empty final block."""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = block.compress(bytes(1 << 20)) + block.flush(zlib.Z_FULL_FLUSH)
    return one * (size >> 20) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def _bomb(src, dst, member: str, declared: int):
    """`src` with `member` replaced by 3 GB of deflated zeros whose headers declare `declared` bytes."""
    stream = _deflated_zeros(3 << 30)
    assert zlib.decompressobj(-15).decompress(stream, 1 << 21) == bytes(1 << 21)  # it does inflate (2 MiB of it)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, stream if item.filename.endswith(member) else zin.read(item.filename))
    data = bytearray(dst.read_bytes())
    with zipfile.ZipFile(dst) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(member))
    name = info.filename.encode()
    central = next(at for at in range(len(data)) if data.startswith(b"PK\x01\x02", at)
                   and data[at + 46:at + 46 + len(name)] == name)
    for method_at, size_at in ((info.header_offset + 8, info.header_offset + 22), (central + 10, central + 24)):
        struct.pack_into("<H", data, method_at, zipfile.ZIP_DEFLATED)
        struct.pack_into("<I", data, size_at, declared)
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("declared, needle", [(3 << 30, "inflates to 3.2 GB"), (100, "not a readable archive")])
def test_torchscript_metadata_inflating_to_3gb_is_never_inflated(tmp_path, declared, needle):
    from vtk_vision.core.errors import ArtifactError
    from vtk_vision.exporters import read_artifact_metadata

    src = _torchscript(tmp_path / "src.torchscript", "{}")
    path = _bomb(src, tmp_path / "bomb.torchscript", "/extra/vtk.json", declared)
    with zipfile.ZipFile(path) as z:
        assert z.getinfo(next(n for n in z.namelist() if n.endswith("vtk.json"))).file_size == declared
    tracemalloc.start()
    try:
        _one_line(_bench(path, tmp_path, "--trust-code", "--input-shape", "1,28,28"), 1, needle)
        with pytest.raises(ArtifactError, match=needle):
            read_artifact_metadata(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{peak >> 20} MiB were allocated reading the metadata"
    assert not (tmp_path / "b.json").exists()


def test_pt2_metadata_goes_through_the_same_checks(tmp_path):
    program = torch.export.export(Tiny().eval(), (torch.randn(2, 1, 28, 28),),
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(program, str(tmp_path / "t.pt2"), extra_files={"vtk.json": json.dumps({"vtk": "[1, 2]"})})
    res = _bench(tmp_path / "t.pt2", tmp_path, "--runtime", "pt2")
    assert res.exit_code == 0 and "accuracy not measured" in res.output, res.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert "list, not an object" in report["accuracy_note"] and report["rows"][0]["status"] == "ok"


# --------------------------------------------------------------- ownership: trust store and state folder

NET = '''
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes=10, in_channels=1):
        super().__init__()
        self.head = nn.Linear(in_channels * 28 * 28, num_classes)

    def forward(self, x):
        return self.head(x.flatten(1))
'''


def _train(base, env):
    return vtk("train", base / "mynet.py:Net", "--subset", "0.01", "--epochs", "1", "--device", "cpu", env=env)


@pytest.fixture(scope="module")
def user_run(shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("mynet")
    (base / "mynet.py").write_text(NET)
    env = {"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(base / "runs")}
    res = _train(base, env)
    assert res.exit_code == 0, res.output
    return env, base / "runs" / (base / "runs" / "latest").read_text().strip()


def _evil_copy(run, tmp_path, marker):
    """The run as someone could hand it over: its kept code runs a payload, run.json agrees with it."""
    import hashlib

    evil = tmp_path / "evil"
    shutil.copytree(run, evil)
    kept = evil / "model_source" / "mynet.py"
    kept.write_text(f"open({str(marker)!r}, 'w').write('ran')\n" + NET)
    record = json.loads((evil / "run.json").read_text())
    digest = hashlib.sha256(kept.read_bytes()).hexdigest()
    record["model"]["source"]["sha256"] = digest
    (evil / "run.json").write_text(json.dumps(record))
    return evil, digest


@pytest.mark.parametrize("store", ["a shared 1777 state folder", "a store others can write",
                                   "a store owned by another uid", "a store of your own"])
def test_trust_comes_only_from_a_store_only_you_can_write(user_run, tmp_path, store, caplog):
    env, run = user_run
    marker = tmp_path / "payload-ran"
    evil, digest = _evil_copy(run, tmp_path, marker)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "trusted-artifacts.json").write_text(json.dumps({"sha256": {digest: str(evil)}}))
    os.chmod(state / "trusted-artifacts.json", 0o600)
    if store == "a shared 1777 state folder":
        os.chmod(state, 0o1777)
    elif store == "a store others can write":
        os.chmod(state / "trusted-artifacts.json", 0o666)
    elif store == "a store owned by another uid":
        if os.getuid() != 0:
            pytest.skip("making a file owned by another user needs root")
        os.chown(state / "trusted-artifacts.json", 4242, -1)
    theirs = env | {"VTK_STATE_DIR": str(state)}
    with caplog.at_level(logging.WARNING, logger="vtk"):
        res = vtk("eval", evil, env=theirs)
    if store == "a store of your own":  # the control: the same record, believed, runs the code it vouches for
        assert res.exit_code == 0 and marker.exists(), res.output
        return
    _one_line(res, 1, "--trust-code")
    assert not marker.exists(), "the payload ran on the word of a store others can write"
    assert "the trust store is not yours alone" in caplog.text
    assert vtk("eval", run, env=env).exit_code == 0  # the user's own run, with their own store, still works


@pytest.mark.parametrize("state", ["a regular file", "a folder under a regular file", "a folder others can write"])
def test_an_unusable_state_folder_stops_training_before_any_run_folder(shared_data, tmp_path, state):
    (tmp_path / "mynet.py").write_text(NET)
    (tmp_path / "afile").write_text("not a folder")
    where = {"a regular file": tmp_path / "afile", "a folder under a regular file": tmp_path / "afile" / "vtk",
             "a folder others can write": tmp_path / "shared"}[state]
    if state == "a folder others can write":
        where.mkdir()
        os.chmod(where, 0o1777)
    env = {"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(tmp_path / "runs"), "VTK_STATE_DIR": str(where)}
    _one_line(_train(tmp_path, env), 1, "state folder", "VTK_STATE_DIR")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    if state == "a regular file":  # the next command, with a usable state folder, gets run number 1
        res = _train(tmp_path, env | {"VTK_STATE_DIR": str(tmp_path / "state")})
        assert res.exit_code == 0, res.output
        assert (tmp_path / "runs" / "latest").read_text().strip() == "Net-fashion-mnist-1"


# --------------------------------------------------------------- a cache that cannot be mapped

def _no_memory(*args, **kwargs):
    raise MemoryError("Cannot allocate memory (os error 12)")  # safetensors' mmap under `ulimit -v`


def _no_map(*args, **kwargs):  # PyTorch's storage mmap under `ulimit -v`
    raise RuntimeError("unable to mmap 55441088 bytes from file <x.safetensors>: Cannot allocate memory (12)")


@pytest.mark.parametrize("fails", ["load_file", "safe_open"])
def test_a_cache_that_cannot_be_mapped_is_one_line(base_onnx, tmp_path, monkeypatch, fails):
    from tests.data_fakes import fake_mnist
    from vtk_vision.data import cache, load_dataset

    root = fake_mnist(tmp_path / "data")
    monkeypatch.setenv("VTK_CACHE_DIR", str(tmp_path / "cache"))
    load_dataset("mnist", root)  # decoded and cached
    args = ["--runtime", "onnx", "--dataset", "mnist", "--mean", "0.13", "--std", "0.31", "--data-dir", root]
    with monkeypatch.context() as m:
        m.setattr(cache, fails, _no_memory if fails == "load_file" else _no_map)
        _one_line(_bench(base_onnx, tmp_path, *args), 1, "not enough memory to map the cached mnist", "ulimit -v")
    assert not (tmp_path / "b.json").exists()
    res = _bench(base_onnx, tmp_path, *args)  # with the memory back, the same command works
    assert res.exit_code == 0, res.output
