"""The CPU-only install: vtk without torchvision, and one line when torch or ONNX Runtime is missing.

The CPU-only install (`pip install -e '.[cpu]'`) has no torchvision, so vtk reads CIFAR-10's
pickled batches itself, through an unpickler that resolves numpy arrays and nothing else.
"""

from __future__ import annotations

import logging
import pickle
import sys

import numpy as np
import pytest

from vtk_vision.core import install
from vtk_vision.core.errors import DataError
from vtk_vision.data.cifar_pickles import TEST_BATCH, TRAIN_BATCHES
from vtk_vision.data.datasets import load_dataset
from vtk_vision.data.entries import DATASETS

CLASSES = list(DATASETS["cifar10"].classes)


def _write_batches(root, per_batch=20, numpy1_names=False):
    """A cifar-10-batches-py folder laid out as torchvision downloads it (pickle protocol 2, as published)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        labels = [int(i % 10) for i in range(per_batch)]
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        blob = pickle.dumps({"batch_label": name, "labels": labels, "data": data}, protocol=2)
        if numpy1_names:  # how the published batches name numpy's reconstructor
            blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (folder / name).write_bytes(blob)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES}, protocol=2))
    return folder


@pytest.mark.parametrize("numpy1_names", [False, True])
def test_cifar_batches_are_read_without_torchvision(tmp_path, numpy1_names):
    _write_batches(tmp_path, numpy1_names=numpy1_names)
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert list(ds.classes) == CLASSES
    assert ds.test.images.shape == (20, 3, 32, 32) and ds.test.images.dtype.is_floating_point is False
    assert len(ds.train.labels) == 100 and sorted(set(ds.test.labels.tolist())) == list(range(10))


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_cifar_batch_that_names_any_other_callable_is_refused_unrun(tmp_path):
    folder = _write_batches(tmp_path)
    marker = tmp_path / "ran"
    blob = pickle.dumps({"labels": [0], "data": _Payload(marker)}, protocol=2)
    (folder / "data_batch_3").write_bytes(blob)
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "data_batch_3 is not a CIFAR-10 batch" in str(e.value) and "io.open" in str(e.value)
    assert not marker.exists()


def test_a_cifar_batch_of_the_wrong_shape_is_refused(tmp_path):
    folder = _write_batches(tmp_path)
    (folder / TEST_BATCH).write_bytes(pickle.dumps({"labels": [3], "data": np.zeros((1, 100), np.uint8)}))
    with pytest.raises(DataError, match="expected uint8 rows of 3x32x32"):
        load_dataset("cifar10", data_dir=tmp_path)


def _hide(monkeypatch, *modules):
    real = install.find_spec
    monkeypatch.setattr(install, "find_spec", lambda name, *a: None if name in modules else real(name, *a))


def test_torchvision_models_and_download_say_which_install_has_them(monkeypatch, tmp_path):
    _hide(monkeypatch, "torchvision")
    from vtk_vision.models.torchvision_zoo import names

    with pytest.raises(install.MissingPackage, match=r"torchvision:NAME model needs torchvision.*\.\[full\]"):
        names()
    with pytest.raises(install.MissingPackage, match=r"--download needs torchvision"):
        load_dataset("mnist", data_dir=tmp_path, download=True)


@pytest.mark.parametrize("hidden, named", [(("torch",), "PyTorch not"),
                                           (("torch", "onnxruntime"), "PyTorch and ONNX Runtime not")])
def test_no_torch_is_one_line_naming_both_installs(monkeypatch, capsys, hidden, named):
    from vtk_vision.cli.app import main

    _hide(monkeypatch, *hidden)
    monkeypatch.setattr(sys, "argv", ["vtk", "models"])
    handlers = list(logging.getLogger("vtk").handlers)
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert logging.getLogger("vtk").handlers == handlers  # nothing left writing to this test's captured stderr
    assert e.value.code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: {named} installed") and ".[cpu]" in err and ".[full]" in err


def test_executorch_says_which_install_has_it(monkeypatch, tmp_path):
    _hide(monkeypatch, "executorch")
    from vtk_vision.exporters.formats import get_format

    with pytest.raises(install.MissingPackage, match=r"the executorch runtime needs ExecuTorch.*\.\[full\]"):
        get_format("executorch").load(tmp_path / "model.pte", "cpu", 1)
