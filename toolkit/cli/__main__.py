"""`python -m vtk_vision.cli`: the same as the `vtk` command."""

from vtk_vision.cli import main

main()
