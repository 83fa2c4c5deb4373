"""Where a model can run: PyTorch devices and ONNX Runtime execution providers, named once.

Kept free of heavy imports, so the command line can offer these as choices
without loading torch.
"""

PROVIDERS = ("cpu", "cuda", "tensorrt")

__all__ = ["PROVIDERS"]
