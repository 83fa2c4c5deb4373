"""One import package: vtk installs `vtk_vision` and nothing else, so it never claims `models` or `bench`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    # -I: isolated mode, so neither the current folder nor PYTHONPATH lands on sys.path by accident
    return subprocess.run([sys.executable, "-I", "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("bare", ["models", "bench", "exporters", "toolkit"])
def test_bare_folder_names_do_not_import(bare, tmp_path):
    res = _python(f"import {bare}", tmp_path)
    assert res.returncode != 0 and f"No module named '{bare}'" in res.stderr


def test_library_and_command_work_beside_a_project_with_its_own_packages(tmp_path):
    for name in ("models", "bench", "exporters"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"WHO = 'the user project {name}'\n")
    code = ("import sys; sys.path.insert(0, '.')\n"
            "import models, bench\n"
            "from vtk_vision.models import create_model\n"
            "from vtk_vision.cli import main\n"
            "print(models.WHO, bench.WHO, sum(p.numel() for p in create_model('lenet5').parameters()))")
    res = _python(code, tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-1] == "61990" and "the user project models" in res.stdout
    vtk = Path(sys.executable).with_name("vtk")
    out = subprocess.run([str(vtk), "models", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert '"lenet5"' in out.stdout


def test_every_package_folder_is_installed():
    """A folder with an __init__.py that pyproject does not list would be missing from a wheel install."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join([package, *init.parent.relative_to(ROOT / folder).parts])
             for package, folder in config["package-dir"].items() for init in (ROOT / folder).rglob("__init__.py")}
    assert found == listed
