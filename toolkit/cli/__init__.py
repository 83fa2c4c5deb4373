"""The `vtk` command line: one function per command, whose docstring is its help.

`app.py` holds the group and the error contract; each module beside it holds
the commands of one area and only parses, calls a workflow and prints.
"""

from vtk_vision.cli import bench, compare, data, export, inspect, recommend, report, runs, train, zoo  # noqa: F401,E501  (registers the commands)
from vtk_vision.cli.app import cli, main

__all__ = ["cli", "main"]
