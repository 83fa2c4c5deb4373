"""vtk: train, export and benchmark small vision models (import package `vtk_vision`).

The repository's folders are the parts of this one package: `toolkit/` is
`vtk_vision` itself (command line, run folder, training, data, inspection,
presentation, core), and `models/`, `exporters/` and `bench/` are
`vtk_vision.models`, `.exporters` and `.bench`. Only `vtk_vision.cli` prints;
the rest returns data and raises `vtk_vision.core.errors.VtkError`.
"""

__version__ = "0.1.0"
