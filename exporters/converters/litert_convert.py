"""Convert a torch.export program to a LiteRT (.tflite) file: run by the LiteRT converter environment's python.

    <converter env>/bin/python litert_convert.py request.json

This file is not part of vtk's import package: it runs in the environment
exporters/converter_env.py builds (torch 2.13 + litert-torch), and imports only
what is installed there. The request names, all inside a private temporary
folder vtk just made:

    program      a torch.export archive vtk wrote from the model, at a fixed batch (torch.export.load runs the
                 archive's guard code: it is vtk's own file, written seconds ago, never a handed one)
    example      .npy, the example batch (numpy, read with allow_pickle=False)
    calibration  .npy or null: int8 only, the calibration images already preprocessed
    precision    "fp32" or "int8"
    out          where the .tflite goes

int8 is litert-torch's PT2E quantizer, symmetric, per-channel weights and
static int8 activations; the file's input and output are int8 tensors, and
their scale and zero point are reported back so vtk's runner (and a device
app) can quantize inputs and dequantize logits. The last line printed is a
JSON object: versions, the input/output tensors and the operator counts.
"""

import json
import sys
from importlib.metadata import version


def _tensor(d: dict) -> dict:
    scale, zero = d["quantization"]
    return {"shape": [int(s) for s in d["shape"]], "dtype": d["dtype"].__name__, "scale": float(scale),
            "zero_point": int(zero)}


def main(request_path: str) -> None:
    import numpy as np
    import torch

    req = json.loads(open(request_path).read())
    example = torch.from_numpy(np.load(req["example"], allow_pickle=False))
    module = torch.export.load(req["program"]).module()

    import litert_torch

    quant_config = None
    if req["precision"] == "int8":
        from litert_torch.quantize import pt2e_quantizer as pq
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e import quantize_pt2e

        quantizer = pq.PT2EQuantizer().set_global(
            pq.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
        prepared = quantize_pt2e.prepare_pt2e(module, quantizer)
        calibration = torch.from_numpy(np.load(req["calibration"], allow_pickle=False))
        batch = len(example)  # the program's fixed batch
        with torch.no_grad():
            for i in range(0, len(calibration) - batch + 1, batch):
                prepared(calibration[i:i + batch])
        module = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
        quant_config = QuantConfig(pt2e_quantizer=quantizer)
    edge = litert_torch.convert(module, (example,), quant_config=quant_config)
    edge.export(req["out"])

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=req["out"])
    ops = {}
    for op in interpreter._get_ops_details():
        ops[op["op_name"]] = ops.get(op["op_name"], 0) + 1
    print(json.dumps({"converter": "litert-torch", "litert_torch": version("litert-torch"),
                      "torch": torch.__version__, "ai_edge_litert": version("ai-edge-litert"),
                      "input": _tensor(interpreter.get_input_details()[0]),
                      "output": _tensor(interpreter.get_output_details()[0]), "ops": ops}))


if __name__ == "__main__":
    main(sys.argv[1])
