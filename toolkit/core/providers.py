"""Where and how a model can run: devices, ONNX Runtime execution providers and precisions, named once.

Kept free of heavy imports, so the command line can offer these as choices
without loading torch.
"""

PROVIDERS = ("cpu", "cuda", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
# entropy: ORT's calibrator run with a 2048-bin histogram (exporters/formats/onnx_format.py), since through
# quantize_static it gets 128 bins for 128 levels and returns the minmax ranges
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")

__all__ = ["PROVIDERS", "PRECISIONS", "CALIBRATION_METHODS"]
