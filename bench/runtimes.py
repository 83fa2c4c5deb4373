"""Runtimes the bench times: eager PyTorch, TorchScript, torch.export (pt2) and ONNX Runtime.

Each runner takes normalised float inputs on the CPU and, before any clock
starts, places a batch where its runtime wants it (a CUDA tensor, an ORT I/O
binding). Provider truth: an ONNX Runtime session asked for CUDA or TensorRT
is created with CPU fallback disabled and its active providers are checked,
so a CPU figure can never land in a CUDA row.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vtk_vision.core.errors import ProviderError

__all__ = ["RUNTIMES", "PROVIDERS", "Runner", "make_runner", "cuda_problem"]

RUNTIMES = ("eager", "torchscript", "onnx", "pt2")
PROVIDERS = ("cpu", "cuda", "tensorrt")
ORT_PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                "tensorrt": "TensorrtExecutionProvider"}


def cuda_problem() -> str | None:
    """Why CUDA cannot be used here, or None when a GPU is usable."""
    if torch.cuda.is_available():
        return None
    return (f"no usable NVIDIA GPU (torch {torch.__version__} sees {torch.cuda.device_count()} CUDA devices; "
            f"check the driver with nvidia-smi)")


@dataclass
class Runner:
    """A loaded model in one runtime on one provider."""

    runtime: str
    provider: str
    bind: Callable[[torch.Tensor], Callable[[], object]]  # input batch -> zero-argument call, input pre-placed
    logits: Callable[[torch.Tensor], torch.Tensor]        # input batch -> CPU logits
    sync: Callable[[], None]
    cuda_events: bool                                     # time with CUDA events (PyTorch on CUDA)
    active: list[str]                                     # what really runs it


def _torch_runner(runtime: str, module: torch.nn.Module, provider: str) -> Runner:
    device = torch.device("cuda" if provider == "cuda" else "cpu")

    def bind(x: torch.Tensor):
        xd = x.to(device)

        def call():
            with torch.inference_mode():
                return module(xd)
        return call

    def logits(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x.to(device)).float().cpu()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    return Runner(runtime, provider, bind, logits, sync, device.type == "cuda", [f"torch:{device.type}"])


def _ort_session(path: Path, provider: str, threads: int):
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
    return sess, active


def _ort_runner(path: Path, provider: str, threads: int) -> Runner:
    sess, active = _ort_session(path, provider, threads)
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    if provider == "cpu":
        def bind(x: torch.Tensor):
            feed = {name: np.ascontiguousarray(x.numpy())}
            return lambda: sess.run([out], feed)

        def logits(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(sess.run([out], {name: np.ascontiguousarray(x.numpy())})[0])

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
        return torch.from_numpy(binding.copy_outputs_to_cpu()[0])

    return Runner("onnx", provider, bind, logits, binding.synchronize_outputs, False, active)


def make_runner(runtime: str, provider: str, *, model: torch.nn.Module | None = None,
                artifact: Path | None = None, threads: int = 1) -> Runner:
    """Load `artifact` (or wrap `model` for eager) in `runtime` on `provider`."""
    if provider == "tensorrt" and runtime != "onnx":
        raise ProviderError("TensorRT is an ONNX Runtime provider; PyTorch runtimes run on cpu or cuda")
    if runtime == "eager":
        device = "cuda" if provider == "cuda" else "cpu"
        # a copy: moving it to CUDA must not move the run's own model
        return _torch_runner(runtime, copy.deepcopy(model).to(device).eval(), provider)
    if runtime == "onnx":
        return _ort_runner(artifact, provider, threads)
    map_location = "cuda" if provider == "cuda" else "cpu"
    if provider == "cuda" and (why := cuda_problem()) is not None:
        raise ProviderError(why)
    if runtime == "torchscript":
        from vtk_vision.exporters.torchscript_format import quiet_jit

        with quiet_jit():  # map_location moves frozen constants too, which .to() would not
            module = torch.jit.load(str(artifact), map_location=map_location)
        return _torch_runner(runtime, module, provider)
    program = torch.export.load(str(artifact))
    if provider == "cuda":  # an ExportedProgram's module cannot simply be .to()-ed: its constants are lifted
        program = torch.export.passes.move_to_device_pass(program, "cuda")
    return _torch_runner(runtime, program.module(), provider)
