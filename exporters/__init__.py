"""Exporters: every format in the table (exporters/formats/), each artifact validated against eager PyTorch."""

from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.export import (artifact_name, check_precision, export_model, export_run,
                                        read_artifact_metadata)
from vtk_vision.exporters.formats import FORMATS, artifact_formats, get_format, runtimes
from vtk_vision.runs.schema import ExportResult

__all__ = ["FORMATS", "ExportOptions", "ExportResult", "artifact_formats", "artifact_name", "check_precision", "export_model",
           "export_run", "get_format", "read_artifact_metadata", "runtimes"]
