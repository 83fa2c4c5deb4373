"""Web: a folder any static host can serve, whose page classifies with onnxruntime-web; timed in headless Chromium.

    vtk export --format web          # RUN/exports/model.web/: index.html, app.js, model.onnx, metadata.json, ort/
    vtk bench --runtime onnx,web     # the same page, driven in headless Chromium, scores and times itself

One format is both the artifact and the runtime, so the bench measures exactly
what ships: the folder's page preprocesses as its metadata.json says, in
JavaScript, and its accuracy, logits and per-call times (`performance.now()`)
come from inside the page. vtk serves the folder from 127.0.0.1 with COOP/COEP
headers (exporters/static_server.py) and drives Chromium over a pipe
(exporters/browser.py). It runs only its own page code: a handed folder whose
page or runtime files differ from the ones this vtk writes is refused, so
only model.onnx and metadata.json come from the folder.

The pinned onnxruntime-web (package.json) comes from `npm ci` in vtk's
checkout, or from VTK_ORT_WEB (its dist folder); nothing is fetched at run time.
"""

from __future__ import annotations

import base64
import filecmp
import json
import os
import shutil
import weakref
from pathlib import Path

import numpy as np
import torch

from vtk_vision.core.atomic import write_text
from vtk_vision.core.errors import ArtifactError, ExportError, ProviderError
from vtk_vision.core.preprocess import Preprocess, PreprocessSpec
from vtk_vision.core.text import printable
from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.browser import WEBGPU, find_browser, shared_browser
from vtk_vision.exporters.formats import Format, onnx_format
from vtk_vision.exporters.runner import Runner
from vtk_vision.exporters.static_server import shared_server

PAGE = Path(__file__).resolve().parents[1] / "web_page"
PAGE_FILES = ("index.html", "app.js")
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")  # the WASM build
WEBGPU_FILES = ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
NPM_HINT = "run `npm ci` in vtk's checkout (package.json pins it), or set VTK_ORT_WEB to its dist folder"


def ort_dist() -> Path:
    """onnxruntime-web's dist folder: VTK_ORT_WEB, else node_modules in vtk's checkout or the current folder."""
    given = os.environ.get("VTK_ORT_WEB")
    places = [Path(given)] if given else [p / "node_modules" / "onnxruntime-web" / "dist"
                                          for p in (PAGE.parents[1], Path.cwd())]
    for dist in places:
        if all((dist / name).is_file() for name in ORT_FILES):
            return dist
    raise ProviderError(f"onnxruntime-web not found (looked in {', '.join(printable(p) for p in places)}); {NPM_HINT}")


def ort_version(dist: Path) -> str:
    try:
        return json.loads((dist.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def write(module: torch.nn.Module, example: torch.Tensor, folder: Path, opts: ExportOptions,
          metadata: dict[str, str]) -> None:
    """The model as ONNX plus the page and its runtime, into the (empty, temporary) `folder`."""
    if opts.bake_preprocess:
        raise ExportError("--format web preprocesses in the page, as its metadata.json says; leave out "
                          "--bake-preprocess")
    if not opts.dynamic_batch:
        raise ExportError("--format web takes one image at a time or the whole test split; leave out --static-batch")
    try:  # before any work: the folder is judged in a browser, with files from npm
        dist, _ = ort_dist(), find_browser()
    except ProviderError as e:
        raise ExportError(str(e)) from None
    metadata["onnxruntime_web"] = ort_version(dist)  # the caller's dict: re-embedded after validation with it
    onnx_format.write(module, example, folder / "model.onnx", opts, metadata)
    for name in PAGE_FILES:
        shutil.copyfile(PAGE / name, folder / name)
    (folder / "ort").mkdir()
    for name in ORT_FILES:
        shutil.copyfile(dist / name, folder / "ort" / name)
    embed(folder, metadata)


def reduce(folder: Path, precision: str, opts: ExportOptions, calibration: torch.Tensor | None) -> dict:
    return onnx_format.reduce(folder / "model.onnx", precision, opts, calibration)


def embed(folder: Path, metadata: dict[str, str]) -> None:
    """metadata.json, which the page reads, and the same keys inside model.onnx, which travels alone too."""
    onnx_format.embed(folder / "model.onnx", metadata)
    write_text(folder / "metadata.json", json.dumps(metadata, indent=2) + "\n")


def read_metadata(folder: Path) -> dict[str, str]:
    try:
        meta = json.loads((Path(folder) / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{printable(folder)}/metadata.json cannot be read ({type(e).__name__}); export it "
                            f"again with vtk export --format web") from None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ArtifactError(f"{printable(folder)}/metadata.json is not vtk's metadata; export it again")
    return meta


def _served(folder: Path) -> dict[str, Path]:
    """What the server may hand the page: vtk's own page and runtime files, and the folder's model and metadata.
    A folder whose page or runtime differs from this vtk's is refused: vtk runs only code it ships."""
    dist, files = ort_dist(), {"model.onnx": folder / "model.onnx", "metadata.json": folder / "metadata.json"}
    ours = {name: PAGE / name for name in PAGE_FILES} | {f"ort/{name}": dist / name for name in ORT_FILES}
    for name, path in {**files, **ours}.items():
        theirs = folder / name
        if theirs.is_symlink() or not theirs.is_file():
            raise ArtifactError(f"{printable(folder)} has no regular file {name}; export it again with "
                                f"vtk export --format web")
        if name in ours and not filecmp.cmp(theirs, path, shallow=False):
            raise ArtifactError(f"{printable(theirs)} differs from the one this vtk writes, and vtk runs only its "
                                f"own page code; export the folder again with this vtk")
    return files | ours


def _raw_pixels(x: torch.Tensor, spec: PreprocessSpec) -> np.ndarray | None:
    """The uint8 images that `x` was prepared from, when it was (then the page's own preprocessing is what
    gets checked), or None: inputs that no image makes go to the model as they are."""
    pre = Preprocess.from_spec(spec)
    (c, h, w), (left, _, top, _) = spec.image_shape, pre.pads
    raw = torch.round((x[..., top:top + h, left:left + w] * pre.std + pre.mean) * 255)
    if x.dim() != 4 or raw.numel() == 0 or raw.min() < 0 or raw.max() > 255:
        return None
    raw8 = raw.to(torch.uint8)
    return np.ascontiguousarray(raw8.numpy()) if torch.equal(pre(raw8), x) else None


def load(path: Path, provider: str = "cpu", threads: int = 1, backend: str = "wasm") -> Runner:
    """The folder's page in headless Chromium. backend="webgpu": ONNX Runtime's WebGPU build, from vtk's own
    copy, in a browser with SwiftShader's WebGPU adapter where no GPU has one: a correctness check (software
    rendering, so its times are no speed figure), not a runtime to rank."""
    folder = Path(path)
    files = _served(folder)
    if backend == "webgpu":
        dist = ort_dist()
        files |= {f"ort/{name}": dist / name for name in WEBGPU_FILES if (dist / name).is_file()}
    meta = read_metadata(folder)
    try:
        spec = PreprocessSpec(**{k: tuple(v) for k, v in json.loads(meta["vtk"])["preprocess"].items()})
        classes = json.loads(meta["classes"])
    except (KeyError, TypeError, ValueError):
        raise ArtifactError(f"{printable(folder)}/metadata.json lacks vtk's preprocessing; export it again") from None
    server, browser = shared_server(), shared_browser(WEBGPU if backend == "webgpu" else ())
    base = server.mount(files)
    page = browser.open(f"{base}index.html?threads={threads}&backend={backend}")
    weakref.finalize(page, _close_tab, browser, page.target, server, base)  # when the last call is gone
    page.wait_for("window.vtkReady || window.vtkError")
    if error := page.evaluate("window.vtkError || ''"):
        raise ProviderError(f"onnxruntime-web could not load {printable(folder)}/model.onnx: {error[:300]}")
    info = page.evaluate("vtk.info()")
    active = [f"onnxruntime-web {info['ort']} ({info['backend']})", f"{browser.version} headless",
              f"crossOriginIsolated={str(info['crossOriginIsolated']).lower()}", f"wasm threads={info['threads']}"]
    if (gpu := info.get("adapter")) is not None:
        soft = gpu["fallback"] or gpu["architecture"] == "swiftshader"
        active.append(f"WebGPU adapter {gpu['vendor']}/{gpu['architecture']}"
                      f"{' (software-rendered: correctness only, not a speed figure)' if soft else ''}")

    def send(x: torch.Tensor, call: str, batch: int, prefer_raw: bool = True):
        raw = _raw_pixels(x, spec) if prefer_raw else None
        data, kind = (raw, "raw") if raw is not None else (np.ascontiguousarray(x.numpy(), np.float32), "float")
        return page.evaluate(f"vtk.{call}({json.dumps(server.put(data.tobytes()))}, {len(x)}, {batch}, '{kind}')")

    def logits(x: torch.Tensor) -> torch.Tensor:
        out = np.frombuffer(base64.b64decode(send(x, "logits", len(x))), np.float32)
        return torch.from_numpy(out.copy()).view(len(x), len(classes))

    def bind(x: torch.Tensor):
        return lambda: send(x, "logits", len(x), prefer_raw=False)

    def samples(x: torch.Tensor, warmup_s: float, min_iters: int, min_s: float) -> list[int]:
        url = server.put(np.ascontiguousarray(x.numpy(), np.float32).tobytes())
        ms = page.evaluate(f"vtk.time({json.dumps(url)}, {len(x)}, {warmup_s}, {min_iters}, {min_s})")
        return [round(t * 1e6) for t in ms]

    def predict(x: torch.Tensor, batch: int) -> torch.Tensor:
        return torch.tensor(send(x, "predict", batch), dtype=torch.long)

    return Runner("web", provider, bind, logits, lambda: None, False, active, page.close, samples, predict,
                  elsewhere="the browser's processes")


def _close_tab(browser, target: str, server, base: str) -> None:
    browser.post("Target.closeTarget", {"targetId": target})
    server.unmount(base)


FORMAT = Format("web", order=9, description="ONNX Runtime Web (WASM) in headless Chromium", providers=("cpu",),
                load=load, suffix=".web", write=write, embed=embed, read_metadata=read_metadata, reduce=reduce,
                reduced=("int8",), folder=True, in_all=False)
