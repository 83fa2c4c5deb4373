"""Where and how a model can run: devices, ONNX Runtime execution providers and precisions, named once.

Kept free of heavy imports, so the command line can offer these as choices
without loading torch.
"""

PROVIDERS = ("cpu", "cuda", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
# ONNX Runtime 1.31's quantize_static runs its entropy calibrator with 128 histogram bins for 128 quantized
# levels: the only candidate threshold is the full range, so "entropy" gives the minmax model (identical
# scales, checked on LeNet-5) and is not offered.
CALIBRATION_METHODS = ("minmax", "percentile")

__all__ = ["PROVIDERS", "PRECISIONS", "CALIBRATION_METHODS"]
