"""The environment block of a bench report: what the numbers were measured on, CPU features included
(VNNI, AVX-512, AMX decide whether int8 and bf16 are fast at all)."""

from __future__ import annotations

import os
import platform
import subprocess
import time

import torch
from vtk_vision.bench import calibration

__all__ = ["environment"]


def _gpu() -> dict | None:
    if not torch.cuda.is_available():
        return None
    info = {"name": torch.cuda.get_device_name(0), "capability": ".".join(map(str, torch.cuda.get_device_capability(0)))}
    try:
        info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                        capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        info["driver"] = None
    return info


def environment(threads: tuple[int, ...]) -> dict:
    """Where and with what the figures were taken; `threads` is the list of thread counts the rows used
    (files from before thread scaling hold one int here)."""
    import onnxruntime as ort
    from vtk_vision.core.cpu import cpu_features, cpu_name, describe_features
    from vtk_vision.core.versions import library_versions

    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(), "cpu": cpu_name(),
            "cpu_features": cpu_features(), "cpu_features_text": describe_features(), "cpu_count": os.cpu_count(), "threads": list(threads), "gpu": _gpu(),
            "ort_providers_available": ort.get_available_providers(), "versions": library_versions(),
            "platform": platform.platform(), "calibration": calibration.measure()}
