"""ONNX: written by `torch.onnx.export` (dynamo, one self-contained file), run by ONNX Runtime.

Reduced precision is made from the exported fp32 graph with ONNX Runtime's
own tools: int8 by static QDQ quantization after `quant_pre_process`, fp16
by its float16 converter with fp32 inputs and outputs kept.

Chosen explicitly (`dynamo=True`) rather than by default, with
`external_data=False` so small models are one file, and the batch dimension
named `batch`. The exporter falls back silently when asked for an opset it
cannot convert to (asked for 13, it writes 18), so the opset in the written
file is checked against the one asked for.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from vtk_vision.core.cpu import has_vnni
from vtk_vision.core.errors import ExportError, ProviderError
from vtk_vision.core.logs import quiet
from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.formats import Format
from vtk_vision.exporters.precision import CALIBRATION_SEED
from vtk_vision.exporters.runner import Runner, cuda_problem

ORT_PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                "tensorrt": "TensorrtExecutionProvider"}


def write(module: torch.nn.Module, example: torch.Tensor, path: Path, opts: ExportOptions,
          metadata: dict[str, str]) -> None:
    dynamic = {"images": {0: torch.export.Dim("batch", min=1, max=1 << 20)}} if opts.dynamic_batch else None
    try:  # the exporter narrates every step at INFO/WARNING; its errors still raise
        with quiet("onnxscript", "torch.onnx", "torch.export"), warnings.catch_warnings():
            # torch 2.13 (the CPU-only install) warns about its own pytree internals while exporting
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                    category=FutureWarning)
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
    options = _tensorrt_options(path) if provider == "tensorrt" else {}
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=[(wanted, options)])
    except Exception as e:  # ORT reports a missing library or GPU as a generic failure
        raise ProviderError(f"ONNX Runtime could not create a {wanted} session: "
                            f"{str(e).strip().splitlines()[0][:300]}") from None
    active = sess.get_providers()
    if active[0] != wanted:
        raise ProviderError(f"ONNX Runtime was asked for {wanted} but runs on {active[0]} (available: "
                            f"{ort.get_available_providers()}); the {provider} figures would be CPU figures")
    return sess


def _tensorrt_options(path: Path) -> dict[str, str]:
    """TensorRT builds fp32 engines unless told: an fp16 artifact asks for fp16. TensorRT's int8 takes
    symmetric (QInt8) activations only, and vtk's int8 is quantized for CPUs (QUInt8), so it is refused here
    rather than left to fail inside the engine build."""
    meta = read_metadata(path)
    precision = meta.get("precision", "fp32")
    if precision == "int8":
        raise ProviderError("TensorRT runs int8 QDQ graphs with symmetric (QInt8) activations; this artifact was "
                            "quantized for CPUs (QUInt8 activations). Bench it on cpu, or run the fp16 artifact")
    return {"trt_fp16_enable": "True"} if precision == "fp16" else {}


def load(path: Path, provider: str = "cpu", threads: int = 1) -> Runner:
    import onnxruntime as ort

    sess = session(path, provider, threads)
    active = sess.get_providers()
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    run_options = ort.RunOptions()  # its terminate flag, set from another thread, stops a run in flight
    run_options.log_severity_level = 4  # a stopped run is the caller's to report, not ORT's to log

    def cancel() -> None:
        run_options.terminate = True

    if provider == "cpu":
        def bind(x: torch.Tensor):
            feed = {name: np.ascontiguousarray(x.numpy())}
            return lambda: sess.run([out], feed, run_options)

        def logits(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(sess.run([out], {name: np.ascontiguousarray(x.numpy())}, run_options)[0]).float()

        return Runner("onnx", provider, bind, logits, lambda: None, False, active, cancel)

    binding = sess.io_binding()

    def bind(x: torch.Tensor):  # device-resident input and output: no host copies in the timed call
        xd = x.to("cuda").contiguous()
        bind.keep = xd  # the binding holds a raw pointer: keep the tensor alive
        binding.bind_input(name, "cuda", 0, np.float32, tuple(xd.shape), xd.data_ptr())
        binding.bind_output(out, "cuda")
        return lambda: sess.run_with_iobinding(binding, run_options)

    def logits(x: torch.Tensor) -> torch.Tensor:
        bind(x)()
        binding.synchronize_outputs()
        return torch.from_numpy(binding.copy_outputs_to_cpu()[0]).float()

    return Runner("onnx", provider, bind, logits, binding.synchronize_outputs, False, active, cancel)


class _Calibration:
    """ONNX Runtime's CalibrationDataReader protocol over the calibration inputs, `batch` at a time (a
    static-batch graph takes only its own batch, so a remainder is left out)."""

    def __init__(self, name: str, inputs: np.ndarray, batch: int, static: bool):
        stop = len(inputs) // batch * batch if static else len(inputs)
        self._batches = iter([{name: inputs[i:i + batch]} for i in range(0, stop, batch)])

    def get_next(self):
        return next(self._batches, None)


ENTROPY_BINS = 2048  # histogram bins for the entropy (KL) search over 128 quantized levels, as TensorRT uses


def _entropy_ranges(model: Path, reader: _Calibration, tmp: Path) -> Path:
    """Activation ranges by ORT's entropy calibrator with a histogram fine enough to choose from. Through
    quantize_static it runs with 128 bins for 128 levels, so its only candidate is the full range and it
    returns the minmax model; run here with 2048 bins, its ranges go to quantize_static as a calibration cache."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator, save_tensors_data

    calibrator = create_calibrator(model, None, augmented_model_path=str(tmp / "augmented.onnx"),
                                   calibrate_method=CalibrationMethod.Entropy,
                                   extra_options={"num_bins": ENTROPY_BINS, "num_quantized_bins": 128})
    calibrator.collect_data(reader)
    cache = tmp / "ranges.json"
    save_tensors_data(calibrator.compute_data(), cache)
    return cache


def reduce(path: Path, precision: str, opts: ExportOptions, calibration: torch.Tensor | None) -> dict:
    """Rewrite the fp32 artifact at `path` as `precision`; return the settings used, for export.json."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    try:
        # the prepared graph goes to the system's temporary folder: a killed export leaves nothing in exports/
        with tempfile.TemporaryDirectory(prefix="vtk-reduce-") as tmp, \
                quiet("", "onnxruntime", "onnxruntime.quantization"), warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()):  # the entropy calibrator print()s its progress
            warnings.simplefilter("ignore")  # the converters warn for every clipped constant: the gate judges it
            if precision == "fp16":
                from onnxruntime.transformers.float16 import convert_float_to_float16

                onnx.save_model(convert_float_to_float16(onnx.load(str(path)), keep_io_types=True), str(path))
                return {"converter": "onnxruntime.transformers.float16", "keep_io_types": True}
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(path), str(prepared))
            # ORT's CPU guidance: uint8 activations, int8 weights; 7-bit weights where no VNNI can keep
            # the 8-bit products from saturating. reduce_range follows that documented rule (ORT's
            # quantization docs): a correctness rule about saturation, not a guess at speed from CPU flags
            settings = {"quantizer": "onnxruntime.quantization.quantize_static", "format": "QDQ",
                        "per_channel": True, "reduce_range": not has_vnni(), "activation_type": "QUInt8",
                        "weight_type": "QInt8", "calibration_method": opts.calibration_method,
                        "calibration_images": len(calibration), "calibration_seed": CALIBRATION_SEED}
            name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name
            batch = 64 if opts.dynamic_batch else opts.batch_size
            if not opts.dynamic_batch and len(calibration) < batch:
                raise ExportError(f"--calibration-size {len(calibration)} is smaller than the static batch of "
                                  f"{batch}; calibrate on at least {batch} images")
            reader = _Calibration(name, calibration.numpy(), batch, not opts.dynamic_batch)
            cache = None
            if opts.calibration_method == "entropy":
                cache, reader = _entropy_ranges(prepared, reader, Path(tmp)), None
                settings |= {"entropy_bins": ENTROPY_BINS}
            quantize_static(str(prepared), str(path), reader, calibration_cache_path=cache,
                            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=settings["reduce_range"],
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                                              "percentile": CalibrationMethod.Percentile}[opts.calibration_method])
            return settings
    except ExportError:
        raise
    except Exception as e:  # the quantizer and converter raise many types; all are an export failure
        raise ExportError(f"{precision} conversion failed: {type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0][:300] if str(e).strip() else 'no message'}") from None


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
                suffix=".onnx", write=write, embed=embed, read_metadata=read_metadata, reduce=reduce,
                reduced=("fp16", "int8"))
