"""A Python environment of its own for a converter that cannot be installed beside vtk.

LiteRT's converter, litert-torch 0.10.0, requires torch<2.15 (and, through
xdsl, a typing-extensions older than torch 2.15 accepts), while vtk runs torch
2.15. Forcing both into one environment produced byte-identical files here but
is unsupported, and onnx2tf pins older onnx and onnxruntime. So the converter
gets a virtual environment of its own: built on first use from the registry,
pinned by a constraints file shipped with vtk (every package, as resolved
when it was last tested), cached per user, and run as a subprocess that
receives a `torch.export` program and writes a file; nothing from it is
imported into vtk's process. The runtime (ai-edge-litert) is a normal vtk
dependency.

    python = converter_python(LITERT, progress)   # builds it once (~2 GB, minutes)
    result = run_converter(LITERT, request, timeout_s=1800)

The environment is built in a temporary folder and renamed into place only
once every package installed and imports, so an interrupted or failed build
leaves nothing that looks ready. `VTK_CONVERTER_DIR` moves it (tests, CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from vtk_vision.core.errors import ExportError
from vtk_vision.core.text import printable

__all__ = ["ConverterEnv", "LITERT", "converter_dir", "converter_python", "is_ready", "run_converter"]

_HERE = Path(__file__).parent / "converters"
_READY = "vtk-ready.json"   # written last: its presence means the environment installed and imports


@dataclass(frozen=True)
class ConverterEnv:
    name: str                       # folder name, versioned: a new pin builds a new environment
    packages: tuple[str, ...]       # what pip is asked for
    constraints: str                # file in exporters/converters/ pinning everything else
    script: str                     # the converter script in exporters/converters/, run by the environment
    imports: str                    # a module whose import proves the environment works
    about: str                      # for the progress line


LITERT = ConverterEnv("litert-torch-0.10.0", ("torch==2.13.0", "litert-torch==0.10.0"),
                      "litert-torch-constraints.txt", "litert_convert.py", "litert_torch",
                      "torch 2.13 CPU + litert-torch 0.10.0, about 2 GB")


def converter_dir(env: ConverterEnv) -> Path:
    """$VTK_CONVERTER_DIR/<name>, else the per-user cache's converters/<name>: not under $VTK_CACHE_DIR, which
    tests point at a fresh folder (a 2 GB environment is built once per user, not once per cache)."""
    base = os.environ.get("VTK_CONVERTER_DIR")
    return (Path(base).expanduser() if base else Path(platformdirs.user_cache_dir("vtk")) / "converters") / env.name


def _python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def is_ready(env: ConverterEnv) -> bool:
    folder = converter_dir(env)
    return (folder / _READY).is_file() and _python(folder).exists()


def _said(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "is ignored: it is neither" not in ln]
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    return printable(errors[0] if errors else (lines or ["no output"])[-1])[:300]  # pip's first error says what


def _build(env: ConverterEnv, folder: Path, progress: Callable[[str], None]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    progress(f"building the converter environment for {env.name} ({env.about}) once, in {folder}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{env.name}-", dir=folder.parent))
    try:
        steps = [[sys.executable, "-m", "venv", str(tmp)],
                 [str(_python(tmp)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                  "-c", str(_HERE / env.constraints), *env.packages],
                 [str(_python(tmp)), "-c", f"import {env.imports}"]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise ExportError(f"could not build the converter environment for {env.name} "
                                  f"({' '.join(step[2:4])} failed: {_said(done.stderr + done.stdout)}); it "
                                  f"installs {', '.join(env.packages)} from the package registry, so it needs "
                                  f"that registry reachable once")
        freeze = subprocess.run([str(_python(tmp)), "-m", "pip", "freeze", "--disable-pip-version-check"],
                                capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout.split()
        (tmp / _READY).write_text(json.dumps({"packages": freeze, "python": sys.version.split()[0]}, indent=1))
        if folder.exists():  # a broken or half-built one from before: replaced whole
            shutil.rmtree(folder)
        os.replace(tmp, folder)  # a venv runs from any folder when started by its python, as vtk does
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def converter_python(env: ConverterEnv, progress: Callable[[str], None] = lambda msg: None) -> Path:
    """The environment's python, built first if it is not there."""
    folder = converter_dir(env)
    if not is_ready(env):
        _build(env, folder, progress)
    return _python(folder)


def run_converter(env: ConverterEnv, request: dict, timeout_s: float,
                  progress: Callable[[str], None] = lambda msg: None) -> dict:
    """Run the environment's converter script on `request` (a JSON object of paths and settings); the JSON
    object it prints last. Its own logs (many, from the converter's C++ and JAX) are kept unless it fails."""
    python = converter_python(env, progress)
    with tempfile.TemporaryDirectory(prefix="vtk-convert-") as d:
        req = Path(d) / "request.json"
        req.write_text(json.dumps(request))
        try:
            done = subprocess.run([str(python), str(_HERE / env.script), str(req)], capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=timeout_s, cwd=d,
                                  env=os.environ | {"PYTHONNOUSERSITE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
        except subprocess.TimeoutExpired:
            raise ExportError(f"the {env.name} converter ran past {timeout_s:.0f} s and was stopped") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ExportError(f"the {env.name} converter failed: {_said(done.stderr + done.stdout)}")
    try:
        return json.loads(lines[-1])
    except ValueError:
        raise ExportError(f"the {env.name} converter's answer was not JSON: {printable(lines[-1])[:200]}") from None
