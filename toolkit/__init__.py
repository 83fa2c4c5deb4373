"""vtk: train, export and benchmark small vision models.

The package is split by stage: `toolkit` (CLI, data, trainer), `models`,
`exporters` and `bench`. Only `toolkit.cli` prints; the rest returns data and
raises `toolkit.errors.VtkError`.
"""

__version__ = "0.1.0"
