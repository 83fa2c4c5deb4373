"""Batch-1 CPU inference of LeNet-5 in each runtime, through pytest-benchmark (opt-in).

    .venv/bin/python -m pytest tests/benchmarks --benchmarks --benchmark-json=bench-batch1.json

Random weights are fine for latency; the artifacts are exported (and
validated) into a temporary folder by the same code `vtk export` uses.
"""

import pytest
import torch

from vtk_vision.exporters import artifact_formats, export_model, get_format, runtimes
from tests.conftest import provenance
from vtk_vision.models import create_model
from vtk_vision.core.preprocess import Preprocess


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = create_model("lenet5").eval()
    prep = Preprocess((0.286,), (0.353,), (1, 28, 28), (1, 32, 32))
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    out = tmp_path_factory.mktemp("exports")
    paths = {f: export_model(model, prep, f, out, images, None, provenance(model, prep)).path
             for f in artifact_formats()}
    return model, prep(images[:1]), paths


@pytest.mark.parametrize("runtime", runtimes())
def test_batch1_latency(benchmark, artifacts, runtime):
    model, x, paths = artifacts
    fmt = get_format(runtime)
    runner = fmt.load(paths[runtime] if fmt.has_file else model, "cpu", 1)
    call = runner.bind(x)
    benchmark.group = "lenet5 batch 1, CPU, 1 thread"
    benchmark.extra_info["runtime"] = runtime
    out = benchmark(call)
    logits = out[0] if isinstance(out, list) else out  # ORT returns a list of outputs
    assert tuple(logits.shape) == (1, 10)  # the timed call really ran the model on one image
