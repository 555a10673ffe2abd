"""Per-game presets: ``bgtrain run --env ID`` starts from the package's ``ID.toml``;
``--config`` and flags override it; a game without a preset keeps the defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bgtrain.cli import build_parser
from bgtrain.cli.run import config_from_args
from bgtrain.learn.settings import LearnerSettings
from bgtrain.presets import known_presets, preset_path, preset_settings


def run_config(*flags: str):
    return config_from_args(build_parser().parse_args(["run", *flags]))


def test_every_known_game_has_a_preset_whose_values_are_valid_settings():
    assert {"CartPole-v1", "Acrobot-v1", "LunarLander-v3"} <= set(known_presets())
    for env in known_presets():
        LearnerSettings(**preset_settings(env))  # raises SettingsError if a value is wrong


@pytest.mark.parametrize("env", ["CartPole-v1", "Acrobot-v1", "LunarLander-v3"])
def test_a_run_of_a_known_game_starts_from_its_preset(env):
    preset = preset_settings(env)
    assert preset, f"{env}'s preset sets nothing"
    learner = run_config("--env", env).learner
    for name, value in preset.items():
        got = getattr(learner, name)
        assert got == (tuple(value) if isinstance(value, list) else value), name


def test_flags_and_config_override_the_preset(tmp_path: Path):
    preset = preset_settings("CartPole-v1")
    assert "n_epochs" in preset
    config = tmp_path / "c.toml"
    config.write_text("[learner]\nn_epochs = 3\ngamma = 0.5\n")
    learner = run_config("--env", "CartPole-v1", "--config", str(config), "--gamma", "0.7").learner
    assert (learner.n_epochs, learner.gamma) == (3, 0.7)


def test_the_env_of_the_config_file_chooses_the_preset(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[run]\nenv = "LunarLander-v3"\n')
    learner = run_config("--config", str(config)).learner
    assert learner.gamma == preset_settings("LunarLander-v3")["gamma"]


def test_a_game_without_a_preset_uses_the_defaults():
    assert preset_path("MountainCarContinuous-v0") is None
    assert preset_path("mygames:factory") is None
    learner = run_config("--env", "tests.games_for_tests:endless").learner
    defaults = dataclasses.replace(LearnerSettings(), verbose=False)
    assert learner == defaults


def test_the_run_says_which_preset_values_are_in_effect(tmp_path: Path):
    from bgtrain.runner.session import Run

    lines: list[str] = []
    config = run_config("--env", "CartPole-v1", "--root", str(tmp_path), "--gamma", "0.5")
    Run(config, console=lines.append).announce_preset()
    preset = {k: v for k, v in preset_settings("CartPole-v1").items() if k != "gamma"}
    shown = ", ".join(f"{k}={v}" for k, v in preset.items())
    assert lines == [
        f"[INFO] Settings preset for CartPole-v1: {shown} (src/bgtrain/presets/CartPole-v1.toml;"
        " --config and flags override it)"
    ]
