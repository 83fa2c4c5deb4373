"""The typed, versioned contents of a run folder: run.json and exports/export.json.

Why a schema: four commands read what `train` wrote, and a run folder can come
from an older vtk or from someone else. Parsing happens here once; a field of
the wrong type or a count that does not add up (fewer class names than the
model has outputs, a mean per channel that is not one per channel) is refused
with one line naming the file and the field, instead of a KeyError three
modules later. Everyone else gets these frozen records, never the raw dict.

Version 1 is the layout vtk wrote before the schema had a number (no
`schema` key); it carries the same fields and is read as it is. A file from a
newer vtk is refused with the version it needs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vtk_vision.core.errors import RunError
from vtk_vision.core.preprocess import PreprocessSpec
from vtk_vision.models import ModelInfo
from vtk_vision.runs.config import TrainConfig
from vtk_vision.runs.setting import TuningRecord

__all__ = ["SCHEMA_VERSION", "STATUSES", "RunRecord", "DataRecord", "EpochStats", "Provenance",
           "ExportResult", "ExportRecord", "parse_run", "parse_export"]

SCHEMA_VERSION = 2
# running -> interrupted (a resumable checkpoint) | diverged | complete; interrupted -> running (resume).
# imported: weights trained elsewhere (`vtk export --model SPEC --weights FILE`), never trained here.
STATUSES = ("running", "interrupted", "diverged", "complete", "imported")
_NEXT = {"running": {"interrupted", "diverged", "complete"}, "interrupted": {"running"},
         "diverged": set(), "complete": set(), "imported": set()}


class _Reader:
    """Typed field access into one JSON object, with errors that name the file and the field."""

    def __init__(self, data: Any, where: str, path: str = ""):
        self.where, self.path = where, path
        if not isinstance(data, dict):
            self.fail(f"should be a JSON object, not {type(data).__name__}")
        self.data = data

    def fail(self, what: str):
        field_name = f" field {self.path!r}" if self.path else ""
        raise RunError(f"{self.where}:{field_name} {what}; train the run again or restore the file")

    def at(self, key: str) -> _Reader:
        """A reader positioned at field `key`, for failing with that field's name."""
        return _Reader(self.data, self.where, f"{self.path}.{key}".lstrip("."))

    def sub(self, key: str) -> _Reader:
        return _Reader(self.get(key, dict), self.where, self.at(key).path)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is not ...:
                return default
            self.at(key).fail("is missing")
        value = self.data[key]
        if value is None and default is None:
            return None
        ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _tuple(kind))
        if not ok:
            self.at(key).fail(
                f"should be {_kind_name(kind)}, not {type(value).__name__}")
        return value

    def numbers(self, key: str, n: int | None = None, positive: bool = False) -> tuple[float, ...]:
        values = self.get(key, list)
        bad = [v for v in values if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
               or (positive and v <= 0)]
        if bad or (n is not None and len(values) != n):
            want = f"{n} " if n is not None else ""
            self.at(key).fail(
                f"should be a list of {want}{'positive ' if positive else ''}finite numbers, got {values!r:.80}")
        return tuple(float(v) for v in values)

    def shape(self, key: str) -> tuple[int, int, int]:
        """(C, H, W): three positive whole numbers."""
        values = self.numbers(key, 3, positive=True)
        if any(v != int(v) for v in values):
            self.at(key).fail(
                f"should be three positive whole numbers, got {list(values)}")
        return tuple(int(v) for v in values)

    def fraction(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            self.at(key).fail(
                f"should be a number from 0 to 1, got {value!r:.40}")
        return float(value)


def _tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind) -> str:
    names = {dict: "an object", list: "a list", str: "text", int: "an integer", float: "a number", bool: "true or false"}
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))


@dataclass(frozen=True)
class DataRecord:
    """The data a run trained on, and how its images become model inputs."""

    name: str
    source: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]   # (C, H, W) of the dataset's images, before padding
    preprocess: PreprocessSpec


@dataclass(frozen=True)
class EpochStats:
    """One row of a run's history (and of metrics.csv)."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_s: float


@dataclass(frozen=True)
class Provenance:
    """What an exported artifact's metadata says about where it came from."""

    model: ModelInfo
    classes: tuple[str, ...]
    preprocess: PreprocessSpec
    dataset: str | None = None
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    """run.json: everything a later command needs to rebuild, feed and judge the model."""

    status: str
    created: str
    model: ModelInfo
    data: DataRecord
    config: TrainConfig
    device: str
    amp: str
    versions: dict[str, str]
    history: tuple[EpochStats, ...] = ()
    accuracy: dict[str, float] | None = None     # per split: train, val, test
    best_epoch: int | None = None
    epochs_run: int | None = None
    wall_s: float | None = None
    # data-parallel runs: {"world_size", "per_rank_batch", "backend", "nodes"}; None for one process
    distributed: dict | None = None
    # how it trained (precision, threads, kernels, layout) and the probe's figures; None before vtk measured it
    tuning: TuningRecord | None = None
    warnings: tuple[str, ...] = ()   # inspection/sanity.py: collapsed predictions, chance accuracy, tiny input
    schema: int = SCHEMA_VERSION

    def moved_to(self, status: str, **changes) -> RunRecord:
        """This record in `status`; a transition the life of a run does not allow is a bug, not a user error."""
        if status != self.status and status not in _NEXT[self.status]:
            raise RuntimeError(f"a run cannot go from {self.status!r} to {status!r}")
        return replace(self, status=status, **changes)

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.model, self.data.classes, self.data.preprocess, self.data.name, dict(self.versions))

    def to_json(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["config"] = self.config.to_dict()
        d["data"]["preprocess"] = self.data.preprocess.to_dict()
        return {"schema": self.schema, **{k: v for k, v in d.items() if k != "schema"}}


def _model(r: _Reader) -> ModelInfo:
    shape = r.shape("input_shape")
    num_classes = r.get("num_classes", int)
    if num_classes < 1:
        r.fail(f"'num_classes' should be at least 1, got {num_classes}")
    kwargs = r.get("kwargs", dict)
    if {"source", "kept"} & set(kwargs):  # create_model's own arguments: a record never sets them
        r.at("kwargs").fail("names 'source' or 'kept', which are not model arguments")
    if "input_size" in kwargs and kwargs["input_size"] != shape[1]:
        r.fail(f"'kwargs.input_size' {kwargs['input_size']!r} disagrees with 'input_shape' {list(shape)}")
    source = r.get("source", dict, None)
    if source is not None:
        src = r.sub("source")
        for key in ("kind", "spec", "attr"):
            src.get(key, str)
        if src.data["kind"] not in ("file", "module", "torchvision", "object"):
            src.at("kind").fail(f"should be file, module, torchvision or object, got {src.data['kind']!r}")
        if src.data["spec"] != r.data["name"]:
            src.at("spec").fail(f"{src.data['spec']!r} is not the model {r.data['name']!r}")
        if (src.data["kind"] == "torchvision") != str(r.data["name"]).startswith("torchvision:"):
            src.at("kind").fail(f"{src.data['kind']!r} does not fit the model {r.data['name']!r}")
        helpers = src.get("helpers", dict, {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in helpers.items()):
            src.at("helpers").fail("should map file names to SHA-256 digests")
        source = {k: v for k, v in source.items() if isinstance(v, str)} | {"helpers": dict(helpers)}
    return ModelInfo(r.get("name", str), shape, num_classes, r.get("default_dataset", str, ""), kwargs, source)


def _preprocess(r: _Reader, channels: int) -> PreprocessSpec:
    image, model = r.shape("image_shape"), r.shape("model_shape")
    return PreprocessSpec(r.numbers("mean", channels), r.numbers("std", channels, positive=True), image, model)


def _version(r: _Reader) -> int:
    version = r.get("schema", int, 1)
    if version < 1:
        r.fail(f"'schema' should be 1 or more, got {version}")
    if version > SCHEMA_VERSION:
        r.fail(f"was written by a newer vtk (schema {version}; this vtk reads up to {SCHEMA_VERSION}): upgrade vtk")
    return version


def parse_run(data: Any, where: str) -> RunRecord:
    """A RunRecord from run.json's parsed JSON, checked field by field; `where` names the file in errors."""
    r = _Reader(data, where)
    version = _version(r)
    model = _model(r.sub("model"))
    d = r.sub("data")
    classes = tuple(d.get("classes", list))
    if not all(isinstance(c, str) for c in classes):
        d.at("classes").fail("should be a list of names (text)")
    if len(classes) != model.num_classes:
        d.at("classes").fail(f"should be {model.num_classes} names, one per model output, got {len(classes)}")
    prep = _preprocess(d.sub("preprocess"), model.input_shape[0])
    image_shape = d.shape("image_shape")
    if prep.model_shape != model.input_shape or prep.image_shape != image_shape:
        d.at("preprocess").fail(f"shapes {prep.image_shape} -> {prep.model_shape} do not match the data "
                                f"{image_shape} and the model {model.input_shape}")
    status = r.get("status", str)
    if status not in STATUSES:
        r.fail(f"'status' should be one of {', '.join(STATUSES)}, got {status!r}")
    config_data = dict(r.get("config", dict))
    if version == 1 and "flip" not in config_data and str(config_data.get("dataset", "")).startswith("imagefolder:"):
        config_data["flip"] = True  # before schema 2, vtk flipped every dataset not named mnist* or fashion-mnist*
    try:
        config = TrainConfig.from_dict(config_data)
    except (TypeError, ValueError) as e:
        r.sub("config").fail(f"does not describe a training run: {e}")
    if config.model != model.name:
        r.fail(f"'config.model' {config.model!r} is not the model {model.name!r}")
    history = []
    for row in r.get("history", list, []):
        h = _Reader(row, where, "history[]")
        values = {k: h.get(k, (int, float)) for k in EpochStats.__dataclass_fields__}
        if values["epoch"] != int(values["epoch"]) or not all(math.isfinite(v) for v in values.values()):
            h.fail(f"should hold finite numbers and a whole epoch number, got {values}")
        history.append(EpochStats(**values | {"epoch": int(values["epoch"])}))
    accuracy = r.get("accuracy", dict, None)
    if accuracy is not None:
        acc = r.sub("accuracy")
        accuracy = {str(k): acc.fraction(str(k), v) for k, v in accuracy.items()}
    if status == "complete" and not (accuracy or {}).keys() >= {"train", "val", "test"}:
        r.fail("says the run is complete but holds no train/val/test 'accuracy'")
    best_epoch, epochs_run = r.get("best_epoch", int, None), r.get("epochs_run", int, None)
    if best_epoch is not None and epochs_run is not None and not 0 <= best_epoch <= epochs_run:
        r.fail(f"'best_epoch' {best_epoch} is outside the {epochs_run} epochs run")
    tuning = r.get("tuning", dict, None)
    if tuning is not None:
        try:
            tuning = TuningRecord.from_dict(tuning)
        except ValueError as e:
            r.at("tuning").fail(str(e))
    warnings = tuple(r.get("warnings", list, []))
    if not all(isinstance(w, str) for w in warnings):
        r.at("warnings").fail("should be a list of lines (text)")
    wall_s = r.get("wall_s", (int, float), None)
    if wall_s is not None and not (math.isfinite(wall_s) and wall_s >= 0):
        r.fail(f"'wall_s' should be a finite number of seconds, got {wall_s}")
    return RunRecord(status, r.get("created", str, ""), model,
                     DataRecord(d.get("name", str), d.get("source", str, ""), classes, image_shape, prep),
                     config, r.get("device", str, "cpu"), r.get("amp", str, "None"),
                     {str(k): str(v) for k, v in r.get("versions", dict, {}).items()}, tuple(history), accuracy,
                     best_epoch, epochs_run, wall_s, r.get("distributed", dict, None), tuning, warnings)


@dataclass
class ExportResult:
    """One artifact and the evidence that it matches eager PyTorch: a row of export.json."""

    format: str
    path: str
    size_bytes: int = 0
    input_shape: list = field(default_factory=list)
    input_dtype: str = ""
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    agreement: float | None = None
    accuracy: float | None = None
    eager_accuracy: float | None = None
    checks: list[dict] = field(default_factory=list)
    passed: bool = False
    seconds: float = 0.0
    error: str | None = None
    options: dict = field(default_factory=dict)
    written_by: str = "vtk export"
    sidecars: list[str] = field(default_factory=list)   # files beside the artifact that belong to it
    precision: str = "fp32"
    # reduced precision only: what it lost against fp32 eager on the whole test split, and how it was made
    accuracy_delta: float | None = None
    flipped: int | None = None             # predictions that differ from fp32 eager
    worst_class: dict | None = None        # {"class", "delta", "images"}: the class that lost most
    reduction: dict = field(default_factory=dict)  # quantizer / converter settings
    lowering: dict = field(default_factory=dict)   # how the writer lowered the graph (ExecuTorch: its delegation)
    warnings: list[str] = field(default_factory=list)  # inspection/sanity.py, on the artifact's own predictions

    def to_dict(self) -> dict:
        return asdict(self)

    def validation(self) -> dict:
        """The validation results that go inside the artifact's own metadata."""
        keep = ("max_abs_diff", "max_rel_diff", "agreement", "accuracy", "eager_accuracy", "checks", "passed",
                "precision", "accuracy_delta", "flipped", "worst_class", "reduction", "lowering", "warnings")
        return {k: getattr(self, k) for k in keep}


@dataclass(frozen=True)
class ExportRecord:
    """exports/export.json: every artifact in the folder, keyed by file name, whoever wrote it."""

    artifacts: dict[str, ExportResult] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    def to_json(self) -> dict:
        return {"schema": self.schema, "artifacts": {k: v.to_dict() for k, v in sorted(self.artifacts.items())}}


_EXPORT_FIELDS = {"format": str, "path": str, "size_bytes": int, "input_shape": list, "input_dtype": str,
                  "max_abs_diff": (int, float), "max_rel_diff": (int, float), "agreement": (int, float),
                  "accuracy": (int, float), "eager_accuracy": (int, float), "checks": list, "passed": bool,
                  "seconds": (int, float), "error": str, "options": dict, "written_by": str, "sidecars": list,
                  "precision": str, "accuracy_delta": (int, float), "flipped": int, "worst_class": dict,
                  "reduction": dict, "lowering": dict, "warnings": list}


def parse_export(data: Any, where: str) -> ExportRecord:
    r = _Reader(data, where)
    _version(r)
    artifacts = {}
    for name, row in r.get("artifacts", dict).items():
        a = _Reader(row, where, f"artifacts.{name}")
        values = {k: a.get(k, kind, None) for k, kind in _EXPORT_FIELDS.items() if k in row}
        if Path(values.get("path") or "").name != name:
            a.fail(f"'path' {values.get('path')!r} does not name the file {name!r}")
        artifacts[name] = ExportResult(**{k: v for k, v in values.items() if v is not None})
    return ExportRecord(artifacts)
