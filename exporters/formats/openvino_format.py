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
    compiled = {mode: core.compile_model(model, "CPU", {hints.performance_mode: mode,
                                                        props.inference_num_threads: threads})
                for mode in (hints.PerformanceMode.LATENCY, hints.PerformanceMode.THROUGHPUT)}
    latency, throughput = compiled[hints.PerformanceMode.LATENCY], compiled[hints.PerformanceMode.THROUGHPUT]
    streams = throughput.get_property(props.optimal_number_of_infer_requests)
    active = [f"openvino:{','.join(latency.get_property(props.execution_devices))}",
              f"latency hint at batch 1, throughput hint ({streams} infer requests) above",
              f"inference_precision={latency.get_property(hints.inference_precision).get_type_name()}"]

    def bind(x: torch.Tensor):
        """The zero-argument call that runs batch `x`, inputs in place; its outputs land in `bind.outputs`."""
        arr = np.ascontiguousarray(x.numpy())
        n = 1 if len(arr) == 1 else min(streams, len(arr))
        if n == 1:
            req = (latency if len(arr) == 1 else throughput).create_infer_request()
            req.set_input_tensor(ov.Tensor(arr, shared_memory=True))
            bind.keep, bind.outputs = arr, lambda: req.get_output_tensor(0).data.copy()
            return req.infer
        chunks = [ov.Tensor(c, shared_memory=True) for c in np.array_split(arr, n)]
        queue, results = ov.AsyncInferQueue(throughput, n), [None] * n
        queue.set_callback(lambda req, i: results.__setitem__(i, req.get_output_tensor(0).data.copy()))

        def wave():
            for i, chunk in enumerate(chunks):
                queue.start_async({0: chunk}, i)
            queue.wait_all()
        bind.keep, bind.outputs = (arr, chunks, queue), lambda: np.concatenate(results)
        return wave

    def logits(x: torch.Tensor) -> torch.Tensor:
        bind(x)()
        return torch.from_numpy(bind.outputs()).float()

    return Runner("openvino", provider, bind, logits, lambda: None, False, active)


FORMAT = Format("openvino", order=4, description="OpenVINO (CPU), on the ONNX artifact", providers=("cpu",),
                load=load, reads="onnx")
