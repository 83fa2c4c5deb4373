"""ONNX: written by `torch.onnx.export` (dynamo, one self-contained file), run by ONNX Runtime.

Chosen explicitly (`dynamo=True`) rather than by default, with
`external_data=False` so small models are one file, and the batch dimension
named `batch`. The exporter falls back silently when asked for an opset it
cannot convert to (asked for 13, it writes 18), so the opset in the written
file is checked against the one asked for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch

from vtk_vision.core.errors import ExportError, ProviderError
from vtk_vision.core.logs import quiet
from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.formats import Format
from vtk_vision.exporters.runner import Runner, cuda_problem

ORT_PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                "tensorrt": "TensorrtExecutionProvider"}


def write(module: torch.nn.Module, example: torch.Tensor, path: Path, opts: ExportOptions,
          metadata: dict[str, str]) -> None:
    dynamic = {"images": {0: torch.export.Dim("batch", min=1, max=1 << 20)}} if opts.dynamic_batch else None
    try:  # the exporter narrates every step at INFO/WARNING; its errors still raise
        with quiet("onnxscript", "torch.onnx", "torch.export"):
            program = torch.onnx.export(module, (example,), None, dynamo=True, external_data=False,
                                        opset_version=opts.opset, input_names=["images"],
                                        output_names=["logits"], dynamic_shapes=dynamic, verbose=False)
    except Exception as e:  # the exporter raises many types; all are an export failure to the user
        raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    proto = program.model_proto
    got = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opts.opset is not None and got != opts.opset:
        raise ExportError(f"the installed exporter (torch {torch.__version__}) cannot produce ONNX opset "
                          f"{opts.opset}: it wrote opset {got}. Choose --opset between 17 and "
                          f"{onnx.defs.onnx_opset_version()}, or leave it out")
    onnx.save_model(proto, str(path))
    embed(path, metadata)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"onnx.checker rejected the exported graph: {str(e).splitlines()[0]}") from None


def session(path: Path, provider: str = "cpu", threads: int = 1):
    """An ONNX Runtime session on exactly `provider`, or a ProviderError saying why not."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    wanted = ORT_PROVIDER[provider]
    if provider != "cpu":
        if (why := cuda_problem()) is not None:
            raise ProviderError(f"ONNX Runtime {provider} provider unavailable: {why}")
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # the CUDA / cuDNN libraries that onnxruntime-gpu[cuda,cudnn] installed
        opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=[wanted])
    except Exception as e:  # ORT reports a missing library or GPU as a generic failure
        raise ProviderError(f"ONNX Runtime could not create a {wanted} session: "
                            f"{str(e).strip().splitlines()[0][:300]}") from None
    active = sess.get_providers()
    if active[0] != wanted:
        raise ProviderError(f"ONNX Runtime was asked for {wanted} but runs on {active[0]} (available: "
                            f"{ort.get_available_providers()}); the {provider} figures would be CPU figures")
    return sess


def load(path: Path, provider: str = "cpu", threads: int = 1) -> Runner:
    sess = session(path, provider, threads)
    active = sess.get_providers()
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    if provider == "cpu":
        def bind(x: torch.Tensor):
            feed = {name: np.ascontiguousarray(x.numpy())}
            return lambda: sess.run([out], feed)

        def logits(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(sess.run([out], {name: np.ascontiguousarray(x.numpy())})[0]).float()

        return Runner("onnx", provider, bind, logits, lambda: None, False, active)

    binding = sess.io_binding()

    def bind(x: torch.Tensor):  # device-resident input and output: no host copies in the timed call
        xd = x.to("cuda").contiguous()
        bind.keep = xd  # the binding holds a raw pointer: keep the tensor alive
        binding.bind_input(name, "cuda", 0, np.float32, tuple(xd.shape), xd.data_ptr())
        binding.bind_output(out, "cuda")
        return lambda: sess.run_with_iobinding(binding)

    def logits(x: torch.Tensor) -> torch.Tensor:
        bind(x)()
        binding.synchronize_outputs()
        return torch.from_numpy(binding.copy_outputs_to_cpu()[0]).float()

    return Runner("onnx", provider, bind, logits, binding.synchronize_outputs, False, active)


def embed(path: Path, metadata: dict[str, str]) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in metadata.items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name, model.doc_string = "vtk", metadata.get("description", "")
    onnx.save_model(model, str(path))


def read_metadata(path: Path) -> dict:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


FORMAT = Format("onnx", order=1, description="ONNX Runtime", providers=("cpu", "cuda", "tensorrt"), load=load,
                suffix=".onnx", write=write, embed=embed, read_metadata=read_metadata)
