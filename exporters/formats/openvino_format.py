"""OpenVINO: the runtime most x86 deployments use beside ONNX Runtime, reading vtk's ONNX file as it is.

No conversion step and no second file: `Core.read_model` takes the ONNX
artifact (fp32, fp16 or int8 QDQ) and compiles it for the CPU device. Each
batch runs under OpenVINO's documented hint for it: LATENCY at batch 1,
THROUGHPUT above, where the batch is split across the compiled model's
optimal number of infer requests and run as one asynchronous wave, as
OpenVINO's own benchmark_app does. The device and compute precision it
reports are recorded, as ONNX Runtime's active providers are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vtk_vision.core.errors import ArtifactError
from vtk_vision.exporters.formats import Format
from vtk_vision.exporters.runner import Runner


def load(path: Path, provider: str = "cpu", threads: int = 1) -> Runner:
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    core = ov.Core()
    model = core.read_model(str(path))
    if len(model.inputs) != 1:
        raise ArtifactError(f"{path.name} has {len(model.inputs)} inputs; vtk benches models with one")
    # f32 asked for explicitly: on CPUs with AMX or AVX512-BF16 OpenVINO would otherwise compute in bf16,
    # and an "fp32" row would be a bf16 one
    compiled = {mode: core.compile_model(model, "CPU", {hints.performance_mode: mode, props.inference_num_threads:
                                                        threads, hints.inference_precision: ov.Type.f32})
                for mode in (hints.PerformanceMode.LATENCY, hints.PerformanceMode.THROUGHPUT)}
    latency, throughput = compiled[hints.PerformanceMode.LATENCY], compiled[hints.PerformanceMode.THROUGHPUT]
    streams = throughput.get_property(props.optimal_number_of_infer_requests)
    used = {c.get_property(hints.inference_precision).get_type_name() for c in compiled.values()}
    active = [f"openvino:{','.join(latency.get_property(props.execution_devices))}",
              f"latency hint at batch 1, throughput hint ({streams} infer requests) above",
              f"inference_precision={'/'.join(sorted(used))}"]
    requests: list = []  # every request and queue made, so that `cancel` reaches the call in flight

    def made(req):
        requests.append(req)
        return req

    def cancel() -> None:  # best effort: the CPU plugin does not stop inside a Loop node (core/stoppable.py)
        for r in list(requests):
            for one in ([r[i] for i in range(len(r))] if isinstance(r, ov.AsyncInferQueue) else [r]):
                one.cancel()

    def bind(x: torch.Tensor, reuse: dict | None = None):
        """The zero-argument call that runs batch `x`, inputs in place; `call.outputs()` reads its result.
        Each call owns its requests, unless `reuse` (a cache the caller reads at once from) is given."""
        cache = {} if reuse is None else reuse
        arr = np.ascontiguousarray(x.numpy())
        n = 1 if len(arr) == 1 else min(streams, len(arr))
        if n == 1:
            hint = latency if len(arr) == 1 else throughput
            req = cache.get(id(hint)) or cache.setdefault(id(hint), made(hint.create_infer_request()))
            tensor = ov.Tensor(arr, shared_memory=True)

            def call():
                req.set_input_tensor(tensor)
                req.infer()
            call.outputs = lambda: req.get_output_tensor(0).data.copy()
            return call
        chunks = [ov.Tensor(c, shared_memory=True) for c in np.array_split(arr, n)]
        queue = cache.get(n) or cache.setdefault(n, made(ov.AsyncInferQueue(throughput, n)))
        results = [None] * n

        def wave():  # the batch split over the throughput hint's requests, run as one wave
            queue.set_callback(lambda req, i: results.__setitem__(i, req.get_output_tensor(0).data.copy()))
            for i, chunk in enumerate(chunks):
                queue.start_async({0: chunk}, i)
            queue.wait_all()
        wave.outputs = lambda: np.concatenate(results)
        return wave

    shared: dict = {}  # the checked path reads each result at once, so its requests are made once

    def logits(x: torch.Tensor) -> torch.Tensor:
        call = bind(x, shared)
        call()
        return torch.from_numpy(call.outputs()).float()

    return Runner("openvino", provider, bind, logits, lambda: None, False, active, cancel)


FORMAT = Format("openvino", order=4, description="OpenVINO (CPU), on the ONNX artifact", providers=("cpu",),
                load=load, reads="onnx")
