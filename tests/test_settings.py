"""Settings: typed and checked, from keywords, a TOML file and flags (flags > file >
defaults), each documented, with the seed system's knobs as defaults; and importing the
settings or the CLI never imports torch."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from bgtrain.config import LearnerSettings, TrainerSettings
from bgtrain.settings import (
    SettingsError,
    add_settings_arguments,
    build_settings,
    describe,
    read_toml,
    settings_from_args,
)


def known(cls: type) -> str:
    return ", ".join(sorted(f.name for f in dataclasses.fields(cls)))


# --------------------------------------------------------------------------- defaults, help


def test_learner_defaults_are_the_seed_systems_knobs():
    s = LearnerSettings()
    assert s.batch_files == 10
    assert s.poll_interval == 5.0
    assert s.report_interval == 30.0
    assert s.max_file_age == 3600
    assert s.max_workers == 1
    assert s.verbose is True
    # The learner's step size is its own (measured: docs/LEARNING.md); the seed's 0.001
    # stays the default of the seed API, RLAgent(learning_rate=0.001).
    assert TrainerSettings().learning_rate == 3e-4
    assert LearnerSettings().learning_rate == 3e-4


@pytest.mark.parametrize("cls", [TrainerSettings, LearnerSettings])
def test_every_setting_has_a_help_text(cls):
    described = describe(cls)
    assert [name for name, _, _ in described] == [f.name for f in dataclasses.fields(cls)]
    for name, _default, help_text in described:
        assert help_text.strip(), f"{cls.__name__}.{name} has no help text"


def test_help_text_and_default_show_in_the_flags():
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, LearnerSettings)
    text = " ".join(parser.format_help().split())  # argparse wraps lines
    assert "--batch-files" in text and "the seed's 10" in text and "(default: 10)" in text
    assert "--learning-rate" in text and "(default: 0.0003)" in text
    assert "--normalize-obs" in text and "--no-normalize-obs" in text


# --------------------------------------------------------------------------- build_settings


def test_build_settings_converts_values():
    s = build_settings(
        LearnerSettings,
        {
            "learning-rate": "0.01",
            "n_epochs": 3.0,
            "hidden_sizes": [32, "16"],
            "normalize_obs": False,
            "seed": None,
            "max_policy_lag": None,
            "poll_interval": 2,
        },
    )
    assert s.learning_rate == 0.01 and isinstance(s.learning_rate, float)
    assert s.n_epochs == 3 and isinstance(s.n_epochs, int)
    assert s.hidden_sizes == (32, 16)
    assert s.normalize_obs is False
    assert s.seed is None and s.max_policy_lag is None
    assert s.poll_interval == 2.0 and isinstance(s.poll_interval, float)
    assert s.batch_files == 10  # untouched: the default


def test_unknown_setting_is_refused_with_the_known_names():
    with pytest.raises(SettingsError) as exc:
        build_settings(TrainerSettings, {"learnin_rate": 0.1})
    assert str(exc.value) == (
        f"unknown setting 'learnin_rate' for TrainerSettings; known: {known(TrainerSettings)}"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"learning_rate": "fast"}, "setting 'learning_rate' must be float, got 'fast'"),
        ({"batch_files": "ten"}, "setting 'batch_files' must be int, got 'ten'"),
        ({"batch_files": 2.5}, "setting 'batch_files' must be a whole number, got 2.5"),
        ({"verbose": "yes"}, "setting 'verbose' must be true or false, got 'yes'"),
        ({"hidden_sizes": 64}, "setting 'hidden_sizes' must be a list, got 64"),
        ({"hidden_sizes": [64, "x"]}, "setting 'hidden_sizes' must be int, got 'x'"),
        ({"gamma": None}, "setting 'gamma' cannot be empty"),
    ],
)
def test_wrong_type_is_refused_with_its_reason(values, message):
    with pytest.raises(SettingsError) as exc:
        build_settings(LearnerSettings, values)
    assert str(exc.value) == message


@pytest.mark.parametrize("name", ["n_epochs", "learning_rate"])
def test_a_bool_is_not_a_number(name):
    with pytest.raises(SettingsError):
        build_settings(TrainerSettings, {name: True})


# --------------------------------------------------------------------------- TOML and flags


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bgtrain.toml"
    path.write_text(text, encoding="utf-8")
    return path


CONFIG = """
learning_rate = 0.5          # top-level keys are ignored when the [learner] table exists

[learner]
learning_rate = 0.005
batch_files = 3
n_epochs = 4
hidden_sizes = [32, 32]
normalize_obs = false
poll_interval = 1.5

[monitor]
refresh = 2
"""


def test_toml_learner_table_is_read(tmp_path):
    path = write_config(tmp_path, CONFIG)
    assert read_toml(path, "learner") == {
        "learning_rate": 0.005,
        "batch_files": 3,
        "n_epochs": 4,
        "hidden_sizes": [32, 32],
        "normalize_obs": False,
        "poll_interval": 1.5,
    }
    s = build_settings(LearnerSettings, read_toml(path, "learner"))
    assert (s.learning_rate, s.batch_files, s.hidden_sizes) == (0.005, 3, (32, 32))
    # A file without the table: its top-level keys.
    flat = write_config(tmp_path, "batch_files = 7\n")
    assert read_toml(flat, "learner") == {"batch_files": 7}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, LearnerSettings)
    return parser.parse_args(argv)


def test_flags_win_over_the_file_and_the_file_over_defaults(tmp_path):
    path = write_config(tmp_path, CONFIG)
    args = parse(["--learning-rate", "0.02", "--hidden-sizes", "8", "4", "--normalize-obs"])
    s = settings_from_args(LearnerSettings, args, path, "learner")
    assert s.learning_rate == 0.02  # flag over file
    assert s.hidden_sizes == (8, 4)  # flag over file
    assert s.normalize_obs is True  # flag over file (a boolean flag set to True)
    assert s.batch_files == 3  # file over default
    assert s.n_epochs == 4 and s.poll_interval == 1.5  # file over default
    assert s.report_interval == 30.0 and s.max_workers == 1  # defaults
    assert isinstance(s, LearnerSettings)

    # No flags, no file: the defaults, exactly.
    assert settings_from_args(LearnerSettings, parse([]), None, "learner") == LearnerSettings()
    # A flag set to its "off" value still wins over the file.
    s = settings_from_args(LearnerSettings, parse(["--no-verbose"]), path, "learner")
    assert s.verbose is False and s.normalize_obs is False


def test_bad_settings_file_is_a_settings_error(tmp_path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(SettingsError) as exc:
        settings_from_args(LearnerSettings, parse([]), missing, "learner")
    assert str(exc.value) == f"settings file not found: {missing}"

    broken = write_config(tmp_path, "[learner\nbatch_files = 3\n")
    with pytest.raises(SettingsError) as exc:
        settings_from_args(LearnerSettings, parse([]), broken, "learner")
    assert str(exc.value).startswith(f"settings file {broken} is not valid TOML: ")

    typo = write_config(tmp_path, "[learner]\nbatch_filez = 3\n")
    with pytest.raises(SettingsError) as exc:
        settings_from_args(LearnerSettings, parse([]), typo, "learner")
    assert str(exc.value) == (
        f"unknown setting 'batch_filez' for LearnerSettings; known: {known(LearnerSettings)}"
    )

    wrong = write_config(tmp_path, '[learner]\nbatch_files = "ten"\n')
    with pytest.raises(SettingsError) as exc:
        settings_from_args(LearnerSettings, parse([]), wrong, "learner")
    assert str(exc.value) == "setting 'batch_files' must be int, got 'ten'"


def test_bad_flag_value_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        parse(["--batch-files", "ten"])
    assert exc.value.code == 2
    assert "--batch-files: invalid int value: 'ten'" in capsys.readouterr().err


# --------------------------------------------------------------------------- no torch


@pytest.mark.parametrize("module", ["bgtrain.policy", "bgtrain.config", "bgtrain.cli"])
def test_importing_does_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "False"


def test_an_optional_setting_takes_none_from_a_flag_and_a_file(tmp_path):
    config = tmp_path / "s.toml"
    config.write_text('[learner]\ntarget_kl = "none"\n')
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, LearnerSettings)
    from_flag = settings_from_args(
        LearnerSettings, parser.parse_args(["--max-policy-lag", "none"]), None, "learner"
    )
    assert from_flag.max_policy_lag is None
    assert from_flag.target_kl == 0.02
    from_file = settings_from_args(LearnerSettings, parser.parse_args([]), config, "learner")
    assert from_file.target_kl is None
