"""The model zoo: `create_model(name, input_size=..., **kwargs)` and `list_models()`."""

from vtk_vision.models.registry import ModelInfo, create_model, list_models, min_input_size, model_spec

__all__ = ["ModelInfo", "create_model", "list_models", "min_input_size", "model_spec"]
