"""ExecuTorch (.pte): PyTorch's own runtime for phones and boards, the successor of TorchScript there.

    vtk export --format executorch --precision int8

`torch.export` -> `to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])`
-> `to_executorch()`. Whatever XNNPACK does not take runs on ExecuTorch's
portable kernels, 90-330x slower on LeNet-5, so the delegation report
(`get_delegation_info`) is checked, not assumed: an export where any compute
node stays outside XNNPACK fails in one line unless `--allow-portable`, and
export.json's `lowering` records the figures. Shape bookkeeping (`sym_size`,
`getitem`) and the one reshape (`view_copy`, a copy) are not compute.

int8 is XNNPACK's own PT2E quantizer (symmetric, per-channel weights, static
activations), calibrated on the same seeded, class-balanced training sample
as ONNX's int8 and judged by the same --max-accuracy-drop gate. The int8
program is lowered from the quantized graph, so `write` leaves it to `reduce`.

A dynamic batch is bounded: ExecuTorch plans all memory ahead, for the
largest batch (MAX_BATCH, the largest batch vtk validates and benches by
default); `--static-batch --batch-size 1` is the phone-sized program.

A .pte is a flatbuffer program of ExecuTorch operators and XNNPACK blobs,
read by the C++ runtime with its internal-consistency verification: loading
one runs no Python, by design (no pickle anywhere). A program can hold
control flow, so a handed one could loop: ExecuTorch has no way to stop a
call, so a call past --call-timeout ends vtk in one line (core/stoppable.py),
as OpenVINO's does. A .pte has no free-form metadata field, so vtk's metadata
is the sidecar `<file>.pte.json`, read as bounded JSON.

Threads: XNNPACK runs on ExecuTorch's one process-wide thread pool, resized
to the row's count at load (`_unsafe_reset_threadpool`: unsafe only while a
method runs, and vtk runs one runtime at a time).
"""

from __future__ import annotations

from pathlib import Path

import torch

from vtk_vision.core.artifact_metadata import read_sidecar
from vtk_vision.core.errors import ArtifactError, ExportError, ProviderError
from vtk_vision.core.install import require_executorch
from vtk_vision.core.logs import quiet, stderr_kept
from vtk_vision.core.text import printable
from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.formats import Format
from vtk_vision.exporters.precision import CALIBRATION_SEED
from vtk_vision.exporters.runner import Runner

__all__ = ["FORMAT", "MAX_BATCH"]

MAX_BATCH = 256
_NOT_COMPUTE = {"getitem", "sym_size", "aten_view_copy_default"}
_IDENTIFIER = b"ET12"  # the flatbuffer file identifier of ExecuTorch programs, bytes 4-8


def _quiet_import() -> None:
    """Every ExecuTorch import brings torchao, whose import makes torch warn (through logging, on screen) about
    an enum it registers: advice for torchao's authors, not vtk's users. Imported once here, quietly."""
    with quiet("torch.utils._pytree"):
        import torchao  # noqa: F401


def _export(module: torch.nn.Module, example: torch.Tensor, opts: ExportOptions) -> torch.export.ExportedProgram:
    dynamic = {"images": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}} if opts.dynamic_batch else None
    return torch.export.export(module, (example,), dynamic_shapes=dynamic)


def _restore_ranges(program) -> None:
    """ExecuTorch 1.5.1's XNNPACK lowering leaves the batch symbol at [2, 15] in the graph's shape environment
    (its range_constraints still say [2, MAX_BATCH]), and memory is planned from the former: the program would
    refuse 16 images. The program's own constraints are put back before planning."""
    for node in program.graph.nodes:
        env = getattr(getattr(node.meta.get("val"), "fake_mode", None), "shape_env", None)
        if env is not None:
            env.var_to_range.update(program.range_constraints)


def _delegation(program) -> dict:
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(program.graph_module)
    outside = {op: b.non_delegated for op, b in info.delegation_by_operator.items()
               if b.non_delegated and op not in _NOT_COMPUTE}
    return {"backend": "XnnpackBackend", "delegated_nodes": info.num_delegated_nodes,
            "compute_nodes": info.num_delegated_nodes + sum(outside.values()), "portable_ops": outside,
            "delegated_subgraphs": info.num_delegated_subgraphs,
            "max_batch": MAX_BATCH if _dynamic(program) else None}


def _dynamic(program) -> bool:
    return bool(program.range_constraints)


def _lower(program: torch.export.ExportedProgram, path: Path, opts: ExportOptions) -> dict:
    """Lower to XNNPACK, refuse a partly delegated program unless allowed, write the .pte; the figures."""
    _quiet_import()
    import executorch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    try:
        with quiet("executorch", "torch.export", "torch._export"):
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            lowered = edge.exported_program()
            _restore_ranges(lowered)
            figures = _delegation(lowered)
            if figures["portable_ops"] and not opts.allow_portable:
                ops = ", ".join(f"{op} x{n}" for op, n in sorted(figures["portable_ops"].items()))
                raise ExportError(f"XNNPACK took {figures['delegated_nodes']} of {figures['compute_nodes']} compute "
                                  f"nodes; {ops} would run on ExecuTorch's portable kernels (often 100x slower). "
                                  f"Pass --allow-portable to export it anyway")
            buffer = edge.to_executorch().buffer
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001  (lowering raises many types; all are an export failure)
        raise ExportError.step_failed("ExecuTorch lowering", e) from None
    path.write_bytes(buffer)
    version = getattr(executorch, "__version__", None) or _dist_version("executorch")
    return figures | {"executorch": version}


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def write(module: torch.nn.Module, example: torch.Tensor, path: Path, opts: ExportOptions,
          metadata: dict[str, str]) -> dict | None:
    require_executorch("--format executorch")
    if opts.precision != "fp32":
        return None  # lowered by `reduce`, from the quantized graph: an fp32 program first would be wasted
    try:
        program = _export(module, example, opts)
    except Exception as e:  # noqa: BLE001
        raise ExportError.step_failed("torch.export", e) from None
    return _lower(program, path, opts)


def reduce(path: Path, precision: str, opts: ExportOptions, calibration: torch.Tensor | None,
           module: torch.nn.Module | None = None, example: torch.Tensor | None = None) -> dict:
    """int8 through XNNPACK's PT2E quantizer: observers calibrated on `calibration`, then lowered."""
    _quiet_import()
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    try:
        with quiet("torch.export", "torchao"):
            quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
            prepared = prepare_pt2e(_export(module, example, opts).module(), quantizer)
            batch = MAX_BATCH if opts.dynamic_batch else opts.batch_size
            with torch.no_grad():
                for i in range(0, len(calibration) // batch * batch or len(calibration), batch):
                    prepared(calibration[i:i + batch])
            quantized = _export(convert_pt2e(prepared), example, opts)
    except Exception as e:  # noqa: BLE001
        raise ExportError.step_failed("XNNPACK int8 quantization", e) from None
    lowering = _lower(quantized, path, opts)
    return {"quantizer": "executorch XNNPACKQuantizer (PT2E)", "per_channel": True, "symmetric": True,
            "activations": "static int8", "weights": "int8", "calibration_images": len(calibration),
            "calibration_seed": CALIBRATION_SEED, "lowering": lowering}


def embed(path: Path, metadata: dict[str, str]) -> None:
    """Nothing goes inside: a .pte has no metadata field (the sidecar <file>.json holds it)."""


def vet(path: Path) -> None:
    """A handed file must be an ExecuTorch program before its bytes reach the C++ loader."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ArtifactError(f"cannot read {printable(path)}: {e.strerror or e}") from None
    if len(head) < 8 or head[4:8] != _IDENTIFIER:
        raise ArtifactError(f"{printable(path)} is not an ExecuTorch program (no {_IDENTIFIER.decode()} flatbuffer "
                            f"identifier); export it again with `vtk export --format executorch`")


def _why(e: Exception, logs: list[str]) -> str:
    """The exception's first line (often a bare error code), and the runtime's last log line, which says why."""
    said = (str(e).strip().splitlines() or [type(e).__name__])[0]
    last = next((line.split("]", 1)[-1].strip() for line in reversed(logs) if "threadpool" not in line), "")
    return printable(f"{said}{f' ({last})' if last else ''}")[:300]


def load(path: Path, provider: str = "cpu", threads: int = 1) -> Runner:
    require_executorch("the executorch runtime")
    _quiet_import()
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime, Verification

    vet(path)
    logs: list[str] = []
    try:
        with stderr_kept(logs):
            portable_lib._unsafe_reset_threadpool(threads)
            program = Runtime.get().load_program(path, verification=Verification.InternalConsistency)
            method = program.load_method("forward")
            shape = tuple(program.metadata("forward").input_tensor_meta(0).sizes())
    except Exception as e:  # noqa: BLE001  (the C++ loader says why on stderr, and raises a bare code)
        raise ArtifactError(f"{printable(path)} is not a loadable ExecuTorch program: {_why(e, logs)}") from None
    planned = shape[0]  # the planned (largest) batch; a static program takes exactly this one

    def run(x: torch.Tensor):
        if len(x) > planned:
            raise ProviderError(f"this ExecuTorch program's memory is planned for at most {planned} images a batch, "
                                f"not {len(x)}")
        out: list[str] = []
        try:
            with stderr_kept(out):
                return method.execute([x])[0]
        except RuntimeError as e:
            raise RuntimeError(_why(e, out)) from None

    def bind(x: torch.Tensor):
        xc = x.contiguous()
        if len(xc) > planned:
            run(xc)  # the one-line reason, before any clock starts
        return lambda: method.execute([xc])

    def logits(x: torch.Tensor) -> torch.Tensor:
        return run(x.contiguous()).float()

    return Runner("executorch", provider, bind, logits, lambda: None, False,
                  [f"executorch:xnnpack, {portable_lib._threadpool_get_thread_count()} pool threads",
                   f"batch planned up to {planned}"])


FORMAT = Format("executorch", order=6, description="ExecuTorch program, XNNPACK delegate (CPU)", providers=("cpu",),
                load=load, suffix=".pte", write=write, embed=embed, read_metadata=read_sidecar, vet=vet,
                metadata_sidecar=True, reduce=reduce, reduced=("int8",), reduce_from_module=True, in_all=False)
