"""vtk: train, export and benchmark small vision models (import package `vtk_vision`).

The repository's folders are the parts of this one package: `toolkit/` is
`vtk_vision` itself (command line, run folder, training, data, inspection,
presentation, core), and `models/`, `exporters/` and `bench/` are
`vtk_vision.models`, `.exporters` and `.bench`. Only `vtk_vision.cli` prints;
the rest returns data and raises `vtk_vision.core.errors.VtkError`.
"""

__version__ = "0.1.0"

_API = ("train", "load", "export", "benchmark", "recommend", "BenchReport")  # `benchmark`: vtk_vision.bench is the package
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """`vtk_vision.train` and friends (toolkit/api.py), imported on first use so that `import vtk_vision`
    and `vtk --help` stay free of torch."""
    if name in _API:
        from vtk_vision.core.install import missing_stack

        if (missing := missing_stack()) is not None:
            raise ImportError(missing)
        from vtk_vision import api

        return getattr(api, name)
    raise AttributeError(f"module 'vtk_vision' has no attribute {name!r}")
