"""Models from outside the zoo: `path/to/file.py:NAME`, `package.module:NAME`, `torchvision:NAME`.

A practitioner's own network is the common case, not the exception, so every
door that takes a zoo name takes one of these too. NAME is an `nn.Module`
class or a factory returning one; vtk passes `num_classes`, `in_channels` and
`input_size` where the callable takes them and says once what it could not
pass. Each model is tried on one batch at its input shape before any work,
so a shape mistake is one line here, not a traceback in epoch one.

The code behind a spec is recorded as a `Source` (kind, spec, file, SHA-256):
the run folder keeps a copy of the file, so the run still rebuilds after the
original moved or changed (runs/sources.py decides when that copy may run).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import logging
import sys
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vtk_vision.core.errors import UnknownNameError, VtkError
from vtk_vision.core.text import printable

__all__ = ["Source", "is_external", "check_spec", "load_callable", "instantiate", "dry_run", "describe_object", "ModelSpecError"]

log = logging.getLogger("vtk")


class ModelSpecError(VtkError):
    """A model spec that names nothing buildable: a missing file or NAME, a syntax error, a factory that raised."""


@dataclass(frozen=True)
class Source:
    """Where a model's code came from: enough to find it again and to notice that it changed."""

    kind: str                 # file | module | torchvision | object
    spec: str                 # what the user typed, e.g. "nets/mynet.py:MyNet"
    attr: str                 # NAME inside the file or module
    origin: str = ""          # the file's absolute path when the run was made ("" for torchvision)
    sha256: str = ""          # of that file's bytes
    package: str = ""         # module specs: the package relative imports resolve against
    copy: str = ""            # the copy inside the run folder, relative to it ("" until recorded)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Source:
        return cls(**{k: str(d.get(k, "")) for k in cls.__dataclass_fields__})


def is_external(name: str) -> bool:
    """A spec with a colon (`file.py:Net`, `pkg.mod:Net`, `torchvision:resnet18`) rather than a zoo name."""
    return ":" in name


def _split(spec: str) -> tuple[str, str]:
    where, _, attr = spec.rpartition(":")
    if not where or not attr.isidentifier():
        raise ModelSpecError(f"model spec {spec!r} should be FILE.py:NAME, package.module:NAME or torchvision:NAME "
                             f"(NAME an nn.Module class or a function returning one)")
    return where, attr


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _exec_file(path: Path, module_name: str, package: str = "") -> Any:
    """Run a Python file as a module; a syntax error or a failing import is one line naming the file."""
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    if package:
        module.__package__ = package  # so `from .layers import X` resolves against the installed package
    sys.modules[module_name] = module  # dataclasses and TorchScript look their module up here
    added = str(path.parent) not in sys.path
    if added:
        sys.path.insert(0, str(path.parent))  # as `python file.py` would: sibling helper modules import
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(module_name, None)
        raise ModelSpecError(f"{printable(path)} line {e.lineno}: SyntaxError: {e.msg}; fix the file") from None
    except ModuleNotFoundError as e:
        sys.modules.pop(module_name, None)
        raise ModelSpecError(f"{printable(path)} imports {printable(e.name)!r}, which is not importable here; "
                             f"install it or add its folder to PYTHONPATH") from None
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise ModelSpecError(f"{printable(path)} failed while vtk imported it ({type(e).__name__}: "
                             f"{printable(_first_line(e))}); fix the file") from None
    finally:
        if added:
            sys.path.remove(str(path.parent))
    return module


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else "no message"


def _from_file(where: str, attr: str, spec: str, run_copy: Path | None) -> tuple[Any, Source]:
    origin = Path(where).expanduser()
    path = run_copy or origin
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelSpecError(f"model file {printable(path)} does not exist; give FILE.py:NAME with a path from "
                             f"here") from None
    except OSError as e:
        raise ModelSpecError(f"model file {printable(path)} cannot be read ({e.strerror})") from None
    sha = _digest(data)
    module = _exec_file(path, f"vtk_user_model_{sha[:16]}")
    return module, Source("file", spec, attr, str(origin.resolve()), sha)


def _from_module(where: str, attr: str, spec: str, run_copy: Path | None, package: str) -> tuple[Any, Source]:
    if run_copy is not None:
        sha = _digest(run_copy.read_bytes())
        return _exec_file(run_copy, f"vtk_user_model_{sha[:16]}", package), Source(
            "module", spec, attr, "", sha, package)
    try:
        module = importlib.import_module(where)
    except ModuleNotFoundError as e:
        hint = " (a file path needs its .py)" if "/" in where or "\\" in where else ""
        raise ModelSpecError(f"model spec {spec!r}: no module named {e.name!r}{hint}; give FILE.py:NAME or an "
                             f"importable package.module:NAME") from None
    except SyntaxError as e:
        raise ModelSpecError(f"{printable(e.filename)} line {e.lineno}: SyntaxError: {e.msg}; fix the file") from None
    except Exception as e:
        raise ModelSpecError(f"importing {where} failed ({type(e).__name__}: {printable(_first_line(e))})") from None
    file = getattr(module, "__file__", None)
    if not file:
        raise ModelSpecError(f"{where} has no source file vtk could keep with the run; put the model in a .py file")
    origin = Path(file).resolve()
    return module, Source("module", spec, attr, str(origin), _digest(origin.read_bytes()),
                          module.__package__ or "")


def check_spec(spec: str) -> None:
    """What can be refused without running any of the spec's code: its form, a torchvision name, a missing
    file. Called before the data loads, so these mistakes cost nothing."""
    where, attr = _split(spec)
    if where == "torchvision":
        from vtk_vision.models.torchvision_zoo import names

        if attr not in names():
            raise UnknownNameError("torchvision model", attr, names())
    elif where.endswith(".py") and not Path(where).expanduser().is_file():
        raise ModelSpecError(f"model file {printable(where)} does not exist; give FILE.py:NAME with a path from here")


def load_callable(spec: str, run_copy: Path | None = None, package: str = "") -> tuple[Callable[..., nn.Module],
                                                                                       Source]:
    """The class or factory a spec names, and where its code came from.

    `run_copy` is the run folder's copy of the source: when given, that file runs instead of the original
    (which may have moved or changed since)."""
    where, attr = _split(spec)
    if where == "torchvision":
        from vtk_vision.models.torchvision_zoo import factory

        return factory(attr), Source("torchvision", spec, attr)
    if where.endswith(".py"):
        module, source = _from_file(where, attr, spec, run_copy)
    else:
        module, source = _from_module(where, attr, spec, run_copy, package)
    fn = getattr(module, attr, None)
    if fn is None:
        found = sorted(n for n, v in vars(module).items() if not n.startswith("_") and _buildable(v)
                       and getattr(v, "__module__", None) == module.__name__)
        raise ModelSpecError(f"{printable(where)} has no {attr!r}; it defines "
                             f"{', '.join(found) if found else 'no nn.Module class or function'}")
    if not _buildable(fn):
        raise ModelSpecError(f"{printable(where)}:{attr} is a {type(fn).__name__}, not an nn.Module class or a "
                             f"function that returns one")
    return fn, source


def _buildable(obj: Any) -> bool:
    if inspect.isclass(obj):
        return issubclass(obj, nn.Module)
    return inspect.isroutine(obj) or isinstance(obj, functools.partial)  # an nn.Module instance is no factory


def _accepts(fn: Callable) -> tuple[set[str], bool]:
    """Keyword names `fn` takes, and whether it takes **kwargs."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set(), False
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def instantiate(fn: Callable, label: str, num_classes: int, in_channels: int, input_size: int,
                kwargs: dict[str, Any], quiet: bool = False) -> nn.Module:
    """Call the class or factory with what it takes; log once what vtk could not pass."""
    names, any_kw = _accepts(fn)
    offered = {"num_classes": num_classes, "in_channels": in_channels, "input_size": input_size}
    unknown = sorted(k for k in kwargs if k not in names and not any_kw)
    if unknown:
        raise ModelSpecError(f"{printable(label)} takes no {', '.join(unknown)}; it takes "
                             f"{', '.join(sorted(names)) or 'no arguments'}")
    passed = {k: v for k, v in offered.items() if k in names} | kwargs
    skipped = [k for k in ("num_classes", "in_channels") if k not in names and not any_kw]
    if skipped and not quiet:
        log.warning("%s takes no %s; vtk checks that it fits %s instead", printable(label), " or ".join(skipped),
                    f"{in_channels}-channel input and {num_classes} classes")
    try:
        model = fn(**passed)
    except Exception as e:
        raise ModelSpecError(f"{printable(label)}({', '.join(f'{k}={v!r}' for k, v in passed.items())}) raised "
                             f"{type(e).__name__}: {printable(_first_line(e))}") from None
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{printable(label)} returned a {type(model).__name__}, not an nn.Module")
    return model


def dry_run(model: nn.Module, label: str, shape: tuple[int, int, int], num_classes: int) -> None:
    """One batch of two zero images through the model: it must take one input of `shape` and give
    `num_classes` logits per image. Refused in one line otherwise, before any training or export."""
    forward = inspect.signature(model.forward).parameters.values()
    required = [p.name for p in forward if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                                                p.POSITIONAL_OR_KEYWORD)]
    if len(required) > 1:
        raise ModelSpecError(f"{printable(label)}.forward takes {len(required)} inputs ({', '.join(required)}); "
                             f"vtk feeds one batch of images")
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, *shape))
    except Exception as e:
        raise ModelSpecError(f"{printable(label)} fails on a {'x'.join(map(str, shape))} input ({type(e).__name__}: "
                             f"{printable(_first_line(e))}); give --input-size or fix the model") from None
    finally:
        model.train(was_training)
    if isinstance(out, (tuple, list)) or not isinstance(out, torch.Tensor):
        raise ModelSpecError(f"{printable(label)} returns a {type(out).__name__}; vtk needs one tensor of logits")
    if tuple(out.shape) != (2, num_classes):
        raise ModelSpecError(f"{printable(label)} gives outputs of shape {list(out.shape[1:])} per image for "
                             f"{num_classes} classes; make it take num_classes or give {num_classes} logits")



_PREAMBLE = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"


def _class_source(cls: type) -> str | None:
    """A class's own source, as Python can find it (a notebook cell, a script), after the imports such code
    usually leans on; None when Python cannot find it."""
    try:
        return _PREAMBLE + textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None


def _same_tensors(a: nn.Module, b: nn.Module) -> bool:
    return {k: tuple(v.shape) for k, v in a.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in b.state_dict().items()}


def describe_object(model: nn.Module, shape: tuple[int, int, int], num_classes: int) -> tuple[Source, str | None]:
    """Where an `nn.Module` object built in Python can be rebuilt from, and the source text to keep.

    A class in an importable .py file is recorded as that file's spec. A class defined in `__main__` (a
    notebook cell, the script being run) cannot be imported without running the whole script, so its own
    source is kept instead, after the usual torch imports. Either counts only if building it again with
    what vtk passes gives the same tensors (constructor arguments vtk cannot know would not); otherwise the
    run keeps kind "object" and later steps need the object passed again."""
    cls = type(model)
    label, object_source = f"object:{cls.__qualname__}", Source("object", f"object:{cls.__qualname__}",
                                                                cls.__qualname__)
    if "." in cls.__qualname__:  # a class inside a function: nothing to import it by
        return object_source, None
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None) if cls.__module__ != "__main__" else None
    text = None if file else _class_source(cls)
    if text is None and not (file and file.endswith(".py")):
        return object_source, None
    try:
        if file:
            spec = f"{Path(file).resolve()}:{cls.__name__}"
            fn, source = load_callable(spec)
        else:
            module_name = f"vtk_user_model_{_digest(text.encode())[:16]}"
            namespace = {"__name__": module_name}
            exec(compile(text, f"<{label}>", "exec"), namespace)  # the user's own class, in their own process
            fn, source = namespace[cls.__name__], Source("file", label, cls.__name__, "", _digest(text.encode()))
        twin = instantiate(fn, label, num_classes, shape[0], shape[1], {}, quiet=True)
        dry_run(twin, label, shape, num_classes)  # lazy layers take their shapes here
    except Exception:  # any failure means the same thing: this class cannot be rebuilt from source
        return object_source, None
    return (source, text) if _same_tensors(model, twin) else (object_source, None)
