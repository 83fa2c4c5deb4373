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

import ast
import copy
import functools
import hashlib
import importlib
import importlib.abc
import importlib.util
import inspect
import linecache
import logging
import sys
import textwrap
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vtk_vision.core.errors import UnknownNameError, VtkError
from vtk_vision.core.text import printable

__all__ = ["Source", "KeptCode", "helper_module_name", "is_external", "check_spec", "load_callable", "instantiate", "dry_run", "describe_object", "ModelSpecError"]

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
    # modules the file imported from its own folder (file specs) or package (module specs): relative path ->
    # SHA-256. A file spec's are kept beside the copy; a package's are only checked for changes.
    helpers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Source:
        helpers = d.get("helpers") or {}
        return cls(**{k: str(d.get(k, "")) for k in cls.__dataclass_fields__ if k != "helpers"},
                   helpers={str(k): str(v) for k, v in helpers.items()} if isinstance(helpers, dict) else {})


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


@dataclass(frozen=True)
class KeptCode:
    """A run's own copy of its model source, read and checked once (runs/sources.py), so that what runs is
    exactly what was hashed: the main file and the helper modules it imported from beside it."""

    path: Path
    data: bytes
    helpers: dict[str, tuple[Path, bytes]] = field(default_factory=dict)  # module name -> (file, bytes)


class _KeptHelpers(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves a run's helper modules from their checked bytes: nothing is imported from the run folder by
    path (where an unchecked file or a crafted __pycache__ could stand in for them)."""

    def __init__(self, helpers: dict[str, tuple[Path, bytes]]):
        self.helpers = helpers

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.helpers:
            return None
        file = self.helpers[fullname][0]
        return importlib.util.spec_from_loader(fullname, self, origin=str(file),
                                               is_package=file.name == "__init__.py")

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        file, data = self.helpers[module.__name__]
        module.__file__ = str(file)
        exec(compile(data, str(file), "exec"), module.__dict__)


def helper_module_name(relative: str) -> str | None:
    """`layers.py` -> `layers`, `utils/__init__.py` -> `utils`, `utils/ops.py` -> `utils.ops`; None if not a
    module path."""
    parts = relative.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) if relative.endswith(".py") and parts and all(p.isidentifier() for p in parts) else None


def _run_module(path: Path, data: bytes, package: str = "", search: Path | None = None,
                helpers: dict[str, tuple[Path, bytes]] | None = None) -> Any:
    """Run Python source as a module; any failure, `sys.exit` included, is one line naming the file.

    `search`: the original's folder, put on sys.path as `python file.py` would. `helpers`: a run's kept
    modules, served from their bytes while the module runs (and any older modules of those names set
    aside meanwhile)."""
    name = f"vtk_user_model_{_digest(data)[:16]}"
    module = types.ModuleType(name)
    module.__file__, module.__package__ = str(path), package or None
    saved = {n: sys.modules.pop(n) for n in list(helpers or ()) if n in sys.modules}
    finder = _KeptHelpers(helpers) if helpers else None
    sys.modules[name] = module  # dataclasses and TorchScript look their module up here
    if finder:
        sys.meta_path.insert(0, finder)
    if search is not None:
        sys.path.insert(0, str(search))
    try:
        exec(compile(data, str(path), "exec"), module.__dict__)
    except SyntaxError as e:
        sys.modules.pop(name, None)
        raise ModelSpecError(f"{printable(e.filename or path)} line {e.lineno}: SyntaxError: {e.msg}; fix the file") \
            from None
    except ModuleNotFoundError as e:
        sys.modules.pop(name, None)
        raise ModelSpecError(f"{printable(path)} imports {printable(e.name)!r}, which is not importable here; "
                             f"install it or add its folder to PYTHONPATH") from None
    except KeyboardInterrupt:
        sys.modules.pop(name, None)
        raise
    except BaseException as e:  # sys.exit() and other BaseExceptions too: the user's code, not a way to end vtk
        sys.modules.pop(name, None)
        raise ModelSpecError(f"{printable(path)} {_failure(e, importing=True)} while vtk imported it; fix the file") \
            from None
    finally:
        if search is not None:
            sys.path.remove(str(search))
        if finder:
            sys.meta_path.remove(finder)
            for n in helpers:
                sys.modules.pop(n, None)
            sys.modules.update(saved)
    return module


def _what(e: BaseException) -> str:
    """What the user's code did, for a message: `called sys.exit(3)` or `ValueError: bad size`."""
    if isinstance(e, SystemExit):
        return f"called sys.exit({printable(repr(e.code))[:60]})"
    return f"{type(e).__name__}: {printable(_first_line(e))}"


def _failure(e: BaseException, importing: bool = False) -> str:
    if isinstance(e, SystemExit):  # argparse at import time, a stray sys.exit()
        guard = " (guard script code with `if __name__ == '__main__':`)" if importing else ""
        return f"{_what(e)}{guard}"
    return f"failed ({_what(e)})"


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else "no message"


def _local_helpers(before: set[str], root: Path, origin: Path) -> dict[str, str]:
    """Modules the model's file imported from its own folder (`from layers import block`): relative path ->
    SHA-256, so the run can keep them too."""
    found = {}
    for name in set(sys.modules) - before:
        file = getattr(sys.modules.get(name), "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        resolved = Path(file).resolve()
        if root in resolved.parents and resolved != origin and helper_module_name(
                resolved.relative_to(root).as_posix()) is not None:
            found[resolved.relative_to(root).as_posix()] = _digest(resolved.read_bytes())
    return found


def _from_file(where: str, attr: str, spec: str) -> tuple[Any, Source]:
    origin = Path(where).expanduser()
    try:
        data = origin.read_bytes()
    except FileNotFoundError:
        raise ModelSpecError(f"model file {printable(origin)} does not exist; give FILE.py:NAME with a path from "
                             f"here") from None
    except OSError as e:
        raise ModelSpecError(f"model file {printable(origin)} cannot be read ({e.strerror})") from None
    root, before = origin.resolve().parent, set(sys.modules)
    module = _run_module(origin, data, search=root)
    return module, Source("file", spec, attr, str(origin.resolve()), _digest(data),
                          helpers=_local_helpers(before, root, origin.resolve()))


def _from_module(where: str, attr: str, spec: str) -> tuple[Any, Source]:
    before = set(sys.modules)
    try:
        module = importlib.import_module(where)
    except ModuleNotFoundError as e:
        hint = " (a file path needs its .py)" if "/" in where or "\\" in where else ""
        raise ModelSpecError(f"model spec {spec!r}: no module named {e.name!r}{hint}; give FILE.py:NAME or an "
                             f"importable package.module:NAME") from None
    except SyntaxError as e:
        raise ModelSpecError(f"{printable(e.filename)} line {e.lineno}: SyntaxError: {e.msg}; fix the file") from None
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        raise ModelSpecError(f"importing {where} {_failure(e, importing=True)}") from None
    file = getattr(module, "__file__", None)
    if not file:
        raise ModelSpecError(f"{where} has no source file vtk could keep with the run; put the model in a .py file")
    origin = Path(file).resolve()
    package = module.__package__ or ""
    top = sys.modules.get(package.split(".")[0]) if package else None
    root = Path(top.__file__).resolve().parent if top is not None and getattr(top, "__file__", None) else None
    return module, Source("module", spec, attr, str(origin), _digest(origin.read_bytes()), package,
                          helpers=_local_helpers(before, root, origin) if root else {})


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


def load_callable(spec: str, kept: KeptCode | None = None, source: Source | None = None
                  ) -> tuple[Callable[..., nn.Module], Source]:
    """The class or factory a spec names, and where its code came from.

    `kept` is a run folder's checked copy of the source (with `source`, what run.json recorded): when
    given, it runs instead of the original, which may have moved or changed since."""
    where, attr = _split(spec)
    if where == "torchvision":
        from vtk_vision.models.torchvision_zoo import factory

        return factory(attr), Source("torchvision", spec, attr)
    if kept is not None:  # its helpers from the kept bytes for a file spec; a package's modules stay installed
        module = _run_module(kept.path, kept.data, source.package, helpers=kept.helpers)
    elif where.endswith(".py"):
        module, source = _from_file(where, attr, spec)
    else:
        module, source = _from_module(where, attr, spec)
    fn = getattr(module, attr, None)
    if fn is None:
        found = sorted(n for n, v in vars(module).items() if not n.startswith("_") and _buildable(v)
                       and getattr(v, "__module__", None) == module.__name__)
        raise ModelSpecError(f"{printable(where)} has no {attr!r}; it defines "
                             f"{', '.join(found) if found else 'no nn.Module class or function'}")
    if not _buildable(fn):
        raise ModelSpecError(f"{printable(where)}:{attr} is {_a(type(fn).__name__)}, not an nn.Module class or a "
                             f"function that returns one")
    return fn, source


def _buildable(obj: Any) -> bool:
    if inspect.isclass(obj):
        return issubclass(obj, nn.Module)
    return inspect.isroutine(obj) or isinstance(obj, functools.partial)  # an nn.Module instance is no factory


def _accepts(fn: Callable) -> tuple[list[str], set[str], bool]:
    """Positional-only parameter names in order, keyword names, and whether `fn` takes **kwargs."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [], set(), False
    positional = [p.name for p in params if p.kind is p.POSITIONAL_ONLY]
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return positional, names, any(p.kind is p.VAR_KEYWORD for p in params)


def instantiate(fn: Callable, label: str, num_classes: int, in_channels: int, input_size: int,
                kwargs: dict[str, Any], quiet: bool = False) -> nn.Module:
    """Call the class or factory with what it takes; log once what vtk could not pass."""
    positional, names, any_kw = _accepts(fn)
    offered = {"num_classes": num_classes, "in_channels": in_channels, "input_size": input_size} | kwargs
    unknown = sorted(k for k in kwargs if k not in names and k not in positional and not any_kw)
    if unknown:
        raise ModelSpecError(f"{printable(label)} takes no {', '.join(unknown)}; it takes "
                             f"{', '.join(sorted(names | set(positional))) or 'no arguments'}")
    args = []
    for name in positional:  # `def net(num_classes, /)`: passed by position, in order, while vtk has them
        if name not in offered:
            break
        args.append(offered[name])
    passed = {k: v for k, v in offered.items() if k in names or (any_kw and k in kwargs)}
    skipped = [k for k in ("num_classes", "in_channels") if k not in names and k not in positional[:len(args)]
               and not any_kw]
    if skipped and not quiet:
        log.warning("%s takes no %s; vtk checks that it fits %s instead", printable(label), " or ".join(skipped),
                    f"{in_channels}-channel input and {num_classes} classes")
    try:
        model = fn(*args, **passed)
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in passed.items())])
        hint = "; pass it with --model-arg NAME=VALUE" if isinstance(e, TypeError) and "missing" in str(e) else ""
        raise ModelSpecError(f"{printable(label)}({printable(call)}) {_failure(e)}{hint}") from None
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{printable(label)} returned {_a(type(model).__name__)}, not an nn.Module")
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
            outputs = {"evaluation": model.eval()(torch.zeros(2, *shape))}
            # training mode too (on a copy: batch-norm statistics must not move), where auxiliary heads
            # return tuples that would otherwise fail in epoch one
            outputs["training"] = copy.deepcopy(model).train()(torch.zeros(2, *shape))
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # sys.exit(3) in forward ended vtk silently with code 3
        hint = "give --input-size or fix the model" if isinstance(e, Exception) else "fix the model"
        raise ModelSpecError(f"{printable(label)} fails on a {'x'.join(map(str, shape))} input ({_what(e)}); "
                             f"{hint}") from None
    finally:
        model.train(was_training)
    for mode, out in outputs.items():
        if not isinstance(out, torch.Tensor):
            raise ModelSpecError(f"{printable(label)} returns a {type(out).__name__} in {mode} mode; vtk needs one "
                                 f"tensor of logits")
        if tuple(out.shape) != (2, num_classes):
            raise ModelSpecError(f"{printable(label)} gives outputs of shape {list(out.shape[1:])} per image for "
                                 f"{num_classes} classes; make it take num_classes or give {num_classes} logits")



_PREAMBLE = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"


def _class_source(cls: type) -> str | None:
    """A class's own source, after the imports such code usually leans on; None when Python cannot find it.

    Found through its methods' code objects: a notebook cell's code is in `linecache` under the cell's
    file name (IPython puts it there), where `inspect.getsource(cls)` on Python 3.11 looks for the
    `__main__` module's file and fails."""
    for fn in (v for v in vars(cls).values() if inspect.isfunction(v)):
        lines = linecache.getlines(fn.__code__.co_filename)
        try:
            tree = ast.parse("".join(lines))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == cls.__name__ \
                    and node.lineno <= fn.__code__.co_firstlineno <= node.end_lineno:
                start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
                return _PREAMBLE + textwrap.dedent("".join(lines[start:node.end_lineno]))
    try:
        return _PREAMBLE + textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None


def _same_model(model: nn.Module, twin: nn.Module, shape: tuple[int, int, int]) -> bool:
    """Whether `twin`, given `model`'s weights, computes what `model` computes: constructor arguments vtk
    cannot know (an activation, a scale) would make the same tensors compute something else."""
    try:
        twin.load_state_dict(model.state_dict())
    except RuntimeError:
        return False
    x = torch.randn((4, *shape), generator=torch.Generator().manual_seed(0))
    was_training = model.training
    try:
        with torch.no_grad():
            return torch.allclose(model.eval()(x), twin.eval()(x), rtol=1e-4, atol=1e-5)
    finally:
        model.train(was_training)


def describe_object(model: nn.Module, shape: tuple[int, int, int], num_classes: int) -> tuple[Source, str | None]:
    """Where an `nn.Module` object built in Python can be rebuilt from, and the source text to keep.

    A class in an importable .py file is recorded as that file's spec. A class defined in `__main__` (a
    notebook cell, the script being run) cannot be imported without running the whole script, so its own
    source is kept instead, after the usual torch imports. Either counts only if building it again with
    what vtk passes computes the same outputs with its weights (constructor arguments vtk cannot know would
    not); otherwise the
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
    return (source, text) if _same_model(model, twin, shape) else (object_source, None)
