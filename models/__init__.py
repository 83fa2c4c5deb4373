"""The model zoo, and the door for models from outside it: `create_model(name_or_spec, ...)`, `list_models()`."""

from vtk_vision.models.registry import ModelInfo, adopt_model, create_model, list_models, min_input_size, model_spec

__all__ = ["ModelInfo", "adopt_model", "create_model", "list_models", "min_input_size", "model_spec"]
