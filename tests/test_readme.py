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


def test_the_first_two_commands_are_the_main_job_and_the_tests():
    """A new user (and ../shared/tools/fresh-clone-trial) runs the README's first two bash blocks: the
    CPU-only install with the whole path, then the tests; sizes are said before the commands."""
    blocks = bash_blocks(README)
    quick = section("Quick start")
    assert blocks[0] == bash_blocks(quick)[0] and '-e ".[cpu]"' in blocks[0]
    assert blocks[1] == bash_blocks(section("Run the tests"))[0]
    before = quick.split("```bash", 1)[0]
    assert "1.5 GB" in before and "6 GB" in quick and '".[full]"' in quick


def _vtk_commands(blocks: list[str]) -> list[list[str]]:
    parts = [p.strip() for block in blocks for line in block.splitlines() for p in line.split("&&")]
    return [shlex.split(p, comments=True) for p in parts if p.startswith(".venv/bin/vtk ")]


def test_the_quick_start_commands_parse_as_vtk_commands():
    """Each `.venv/bin/vtk ...` of the Quick start, and of its step-by-step account, names a real command with
    options it takes: parsed by the command line itself (nothing runs), so a renamed option fails here
    instead of in a new user's shell. The steps are the one-line command's steps, as written there."""
    from vtk_vision.cli import cli

    main = _vtk_commands(bash_blocks(section("Quick start"))[:1])
    steps = _vtk_commands(bash_blocks(section("What the Quick start did")))
    assert [c[1] for c in main] == ["train", "export", "bench"] and steps == main
    for _, name, *args in main:
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
    """The site's Getting started page shows the README's Quick start steps and its CPU-only install, so the
    two cannot drift."""
    page = (ROOT / "docs" / "getting-started.md").read_text()
    assert set(bash_blocks(section("What the Quick start did"))) <= set(bash_blocks(page))
    install = bash_blocks(section("Quick start"))[0].split(" && { ", 1)[0]
    assert install in bash_blocks(page)
