"""The README says what the code does: its settings table and its CI commands."""

from __future__ import annotations

from pathlib import Path

from bgtrain.common.settings import markdown_table
from bgtrain.learn.settings import LearnerSettings

REPO = Path(__file__).resolve().parent.parent


def test_readme_settings_table_is_the_settings():
    assert markdown_table(LearnerSettings) in (REPO / "README.md").read_text("utf-8")


def test_ci_runs_exactly_the_readme_setup_and_test_commands():
    readme = (REPO / "README.md").read_text("utf-8")
    ci = (REPO / ".ci" / "run").read_text("utf-8")
    commands = [
        line.strip()
        for line in ci.splitlines()
        if line.strip().startswith(("python -m pip", "python -m pytest"))
    ]
    assert commands == ['python -m pip install torch==2.13.0 -e ".[dev]"', "python -m pytest"]
    for command in commands:
        assert f"\n{command}\n" in readme


def _requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_game_machine_requirements_are_bgtrains_without_torch_plus_ray():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    expected = [
        *(dep for dep in project["dependencies"] if not dep.startswith("torch")),
        *project["optional-dependencies"]["ray"],
    ]
    listed = _requirement_lines((REPO / "requirements-game-machine.txt").read_text("utf-8"))
    assert listed == expected
    assert not any(line.startswith("torch") for line in listed)
