"""Exporters: TorchScript, ONNX and torch.export artifacts, each validated against eager PyTorch."""

from vtk_vision.exporters.base import ExportOptions, ExportResult
from vtk_vision.exporters.export import FORMATS, artifact_name, export_model, export_run, read_artifact_metadata, run_info

__all__ = ["FORMATS", "ExportOptions", "ExportResult", "artifact_name", "export_model", "export_run",
           "read_artifact_metadata", "run_info"]
