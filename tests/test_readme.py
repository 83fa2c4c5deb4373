"""The README stays short and true: CI runs its test command, and its Quick start commands exist as written."""

import re
import shlex
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", text, re.S)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^TEST_COMMAND='(.+)'$", ci, re.M).group(1)
    assert bash_blocks(section("Run the tests")) == [command], "Run the tests holds exactly CI's command"


def test_the_install_is_one_command_after_its_size_warning():
    install = section("Install")
    [command] = bash_blocks(install)[:1]
    assert command == "python3 -m venv .venv && .venv/bin/pip install -q -e ."
    assert "5 GB" in install.split("```bash", 1)[0], "the download size is said before the command, not after"


def test_the_quick_start_commands_parse_as_vtk_commands():
    """Each `.venv/bin/vtk ...` line of the Quick start names a real command with options it takes: parsed by
    the command line itself (nothing runs), so a renamed option fails here instead of in a new user's shell."""
    from vtk_vision.cli import cli

    lines = [ln for block in bash_blocks(section("Quick start")) for ln in block.splitlines()]
    commands = [shlex.split(ln, comments=True) for ln in lines if ln.startswith(".venv/bin/vtk ")]
    assert [c[1] for c in commands] == ["train", "export", "bench"]
    for _, name, *args in commands:
        command = cli.commands[name]
        with command.make_context(name, list(args), obj={}) as ctx:
            assert isinstance(ctx, click.Context)


def test_the_readme_stays_short_with_short_headings():
    """Under 200 lines; no heading over 60 characters, here or in the documentation site."""
    assert len(README.splitlines()) < 200
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a shell comment is not a heading
        long = [h for h in re.findall(r"^#+ (.+)$", text, re.M) if len(h) > 60]
        assert not long, f"{page.name}: {long}"


def test_the_docs_getting_started_runs_the_readme_quick_start():
    """The site's Getting started page shows the README's Quick start commands, so the two cannot drift."""
    page = (ROOT / "docs" / "getting-started.md").read_text()
    assert set(bash_blocks(section("Quick start"))) <= set(bash_blocks(page))
    assert bash_blocks(section("Install"))[0] in bash_blocks(page)
