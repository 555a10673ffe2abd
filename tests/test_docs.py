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
