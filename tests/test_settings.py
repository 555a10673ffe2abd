"""Settings: typed and checked, from keywords, a TOML file and flags (flags > file >
defaults), each documented, with the seed system's knobs as defaults; and importing the
settings or the CLI never imports torch."""

from __future__ import annotations

import argparse
import dataclasses
import math
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from bgtrain.common.settings import (
    Allowed,
    add_settings_arguments,
    allowed_text,
    allowed_values,
    build_settings,
    documented_settings,
    flat_settings,
    flat_values,
    held,
    read_toml,
    replace_settings,
    setting,
    setting_names,
    settings_from_args,
)
from bgtrain.errors import SettingsError
from bgtrain.learn.settings import LearnerSettings, PPOSettings

#: Every learner setting as a person names it: the algorithm's first, then the learner's
#: own (the order of the flags and of the README's table).
LEARNER_NAMES = [f.name for f in dataclasses.fields(PPOSettings)] + [
    f.name for f in dataclasses.fields(LearnerSettings) if f.name != "ppo"
]
#: The type of each of them.
LEARNER_TYPES = {
    name: tp
    for cls in (PPOSettings, LearnerSettings)
    for name, tp in typing.get_type_hints(cls).items()
    if name != "ppo"
}


def known(cls: type) -> str:
    return ", ".join(sorted(setting_names(cls)))


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
    assert PPOSettings().learning_rate == 3e-4
    assert LearnerSettings().learning_rate == 3e-4


@pytest.mark.parametrize(
    ("cls", "names"),
    [
        (PPOSettings, [f.name for f in dataclasses.fields(PPOSettings)]),
        (LearnerSettings, LEARNER_NAMES),
    ],
)
def test_every_setting_has_a_help_text(cls, names):
    described = documented_settings(cls)
    assert [name for name, _, _ in described] == names
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
        build_settings(PPOSettings, {"learnin_rate": 0.1})
    assert str(exc.value) == (
        "unknown setting 'learnin_rate' for PPOSettings (did you mean 'learning_rate'?); "
        f"known: {known(PPOSettings)}"
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
        build_settings(PPOSettings, {name: True})


# --------------------------------------------------------------------------- TOML and flags


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bgtrain.toml"
    path.write_text(text, encoding="utf-8")
    return path


CONFIG = """
[learner]
learning_rate = 0.005
batch_files = 3
n_epochs = 4
hidden_sizes = [32, 32]
normalize_obs = false
poll_interval = 1.5

[run]
games = 2
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
    assert read_toml(path, "run") == {"games": 2}
    # A file without tables: its keys are the learner's (and the run has none).
    flat = write_config(tmp_path, "batch_files = 7\n")
    assert read_toml(flat, "learner") == {"batch_files": 7}
    assert read_toml(flat, "run") == {}


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

    # A misspelled setting of the learner's own, and one of the algorithm's it holds.
    for typo_name, meant in (("batch_filez", "batch_files"), ("gamme", "gamma")):
        typo = write_config(tmp_path, f"[learner]\n{typo_name} = 3\n")
        with pytest.raises(SettingsError) as exc:
            settings_from_args(LearnerSettings, parse([]), typo, "learner")
        assert str(exc.value) == (
            f"unknown setting {typo_name!r} for LearnerSettings (did you mean {meant!r}?); "
            f"known: {known(LearnerSettings)}"
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


@pytest.mark.parametrize("module", ["bgtrain.game.policy", "bgtrain.learn.settings", "bgtrain.cli"])
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


# --------------------------------------------------------------------------- allowed ranges
#
# Every setting declares its allowed values once (learn/settings.py, RunConfig); the same
# check refuses a bad value from a keyword argument, a TOML file or a flag, before
# anything starts. One row per setting: a value just outside its range, and the exact
# message.

BAD_LEARNER_VALUES = [
    ("learning_rate", 0.0, "greater than 0 and at most 1"),
    ("gamma", 1.5, "from 0 to 1"),
    ("gae_lambda", -0.1, "from 0 to 1"),
    ("clip_range", 0.0, "greater than 0"),
    ("ent_coef", -0.01, "at least 0"),
    ("vf_coef", -1.0, "at least 0"),
    ("max_grad_norm", 0.0, "greater than 0"),
    ("n_epochs", 0, "at least 1"),
    ("target_kl", -0.02, "greater than 0 (or none)"),
    ("minibatch_size", 0, "at least 1"),
    ("rho_bar", -1.0, "greater than 0"),
    ("hidden_sizes", (64, 0), "a list of numbers each at least 1"),
    ("activation", "sigmoid", "one of tanh, relu"),
    ("normalize_obs", "yes", "true or false"),
    ("seed", -1, "from 0 to 4294967295 (or none)"),
    ("max_piece_steps", 0, "at least 1"),
    ("batch_files", 0, "at least 1"),
    ("batch_steps", 0, "at least 1 (or none)"),
    ("poll_interval", 0.0, "greater than 0 and at most 3600"),
    ("report_interval", -5.0, "greater than 0"),
    ("max_file_age", 0.0, "greater than 0"),
    ("max_policy_lag", -1, "at least 0 (or none)"),
    ("replay_passes", -1, "at least 0"),
    ("replay_max_lag", -1, "at least 0"),
    ("replay_max_steps", 0, "at least 1"),
    ("guard_games", 0, "at least 1 (or none)"),
    ("guard_drop", 0.0, "from 0.01 to 1"),
    ("settle_time", -1.0, "from 0 to 3600"),
    ("stale_temp_age", 0.0, "greater than 0"),
    ("max_workers", 0, "at least 1"),
    ("n_actions", 0, "at least 1 (or none)"),
    ("history_size", 0, "at least 1"),
    ("max_file_mb", 0, "at least 1"),
    ("max_unpacked_mb", 0, "at least 1"),
    ("torch_threads", 0, "at least 1 (or none)"),
    ("verbose", "no", "true or false"),
]


def run_config_cls() -> type:
    from bgtrain.runner.session import RunConfig

    return RunConfig


BAD_RUN_VALUES = [
    ("env", "", "a non-empty text"),
    ("actors", 0, "at least 1 (or none)"),
    ("root", 5, "a path"),
    ("games", 0, "at least 1 (or none)"),
    ("minutes", -1.0, "greater than 0 (or none)"),
    ("until_solved", "yes", "true or false"),
    ("eval_episodes", 0, "at least 1"),
    ("eval_every_steps", 0, "at least 1 (or none)"),
    ("seed", 2**32, "from 0 to 4294967295 (or none)"),
    ("max_waiting", -3, "at least 0 (or none)"),
    ("max_game_steps", 0, "at least 1 (or none)"),
    ("spare_actor", "yes", "true or false"),
    ("engine", "dask", "one of local, ray"),
    ("address", "", "a non-empty text (or none)"),
    ("game_cpus", 0.0, "greater than 0"),
    ("game_resource", "", "a non-empty text (or none)"),
    ("learner", {"gamma": 0.9}, "LearnerSettings"),
]


def shown(value: object) -> str:
    return repr(list(value) if isinstance(value, tuple) else value)


def message(name: str, value: object, allowed: str) -> str:
    return f"setting {name!r} must be {allowed}, got {shown(value)}"


def test_the_tables_hold_one_bad_value_for_every_setting():
    """A setting added without a row here (and so perhaps without a range) fails."""
    assert [row[0] for row in BAD_LEARNER_VALUES] == LEARNER_NAMES == setting_names(LearnerSettings)
    assert [row[0] for row in BAD_RUN_VALUES] == [
        f.name for f in dataclasses.fields(run_config_cls())
    ]


@pytest.mark.parametrize(
    "cls", [PPOSettings, LearnerSettings, run_config_cls()], ids=lambda c: c.__name__
)
def test_every_setting_declares_its_allowed_values(cls):
    """Only a yes/no, a path or a nested settings object may go without a range."""
    types_ = typing.get_type_hints(cls)
    nested = (LearnerSettings, PPOSettings)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if allowed_values(f) is None and types_[f.name] not in (bool, Path, *nested)
    ]
    assert missing == []


@pytest.mark.parametrize(("name", "value", "allowed"), BAD_LEARNER_VALUES)
def test_a_bad_keyword_argument_is_refused_by_the_settings_class(name, value, allowed):
    for cls in (PPOSettings, LearnerSettings):
        if name not in setting_names(cls):
            continue
        with pytest.raises(SettingsError) as exc:
            cls(**{name: value})
        assert str(exc.value) == message(name, value, allowed)
    # ... and by replace_settings (how BackgroundLearner applies its keywords) and
    # dataclasses.replace.
    for replace in (replace_settings, dataclasses.replace):
        with pytest.raises(SettingsError) as exc:
            replace(LearnerSettings(), **{name: value})
        assert str(exc.value) == message(name, value, allowed)


@pytest.mark.parametrize(("name", "value", "allowed"), BAD_RUN_VALUES)
def test_a_bad_run_setting_is_refused_by_run_config(name, value, allowed):
    with pytest.raises(SettingsError) as exc:
        run_config_cls()(**{name: value})
    assert str(exc.value) == message(name, value, allowed)


def toml_value(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value)


@pytest.mark.parametrize(("name", "value", "allowed"), BAD_LEARNER_VALUES)
def test_a_bad_value_in_a_settings_file_is_refused(tmp_path, name, value, allowed):
    path = write_config(tmp_path, f"[learner]\n{name} = {toml_value(value)}\n")
    with pytest.raises(SettingsError) as exc:
        settings_from_args(LearnerSettings, parse([]), path, "learner")
    assert str(exc.value) == message(name, value, allowed)


FLAG_ROWS = [row for row in BAD_LEARNER_VALUES if not isinstance(row[1], (tuple, dict))]


@pytest.mark.parametrize(("name", "value", "allowed"), FLAG_ROWS)
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(capsys, name, value, allowed):
    flag = "--" + name.replace("_", "-")
    if allowed == "true or false":  # a yes/no flag takes no value: --verbose / --no-verbose
        argv, expected = [flag, str(value)], f"error: unrecognized arguments: {value}"
    else:
        argv = [flag, str(value)]
        expected = f"error: argument {flag}: must be {allowed}, got {value!r}"
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(expected)


def test_a_bad_list_item_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        parse(["--hidden-sizes", "64", "0"])
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith("error: argument --hidden-sizes: must be at least 1, got 0")
    )


FLOAT_SETTINGS = [name for name, tp in LEARNER_TYPES.items() if tp in (float, float | None)]


@pytest.mark.parametrize("name", FLOAT_SETTINGS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_no_setting_takes_nan_or_infinity(name, value):
    with pytest.raises(SettingsError, match=f"^setting '{name}' must be .*, got {value}$"):
        LearnerSettings(**{name: value})


def test_the_defaults_and_the_edges_of_every_range_are_allowed():
    LearnerSettings()
    run_config_cls()()
    edges = LearnerSettings(
        learning_rate=1.0,
        gamma=0.0,
        gae_lambda=1.0,
        ent_coef=0.0,
        vf_coef=0.0,
        target_kl=None,
        seed=2**32 - 1,
        batch_steps=None,
        poll_interval=3600.0,
        max_policy_lag=0,
        settle_time=0.0,
        torch_threads=None,
        hidden_sizes=[8],  # a list from Python is kept as a tuple (hashable)
        activation="relu",
    )
    assert edges.hidden_sizes == (8,)
    hash(edges)
    run_config_cls()(max_waiting=0, seed=0, minutes=0.01, root="somewhere")


def test_the_issue_examples_are_refused_with_setting_value_and_range():
    """Issue 11, item 14: each taken silently, or failing only in the learner process."""
    cases = [
        (
            lambda: LearnerSettings(activation="foo"),
            "setting 'activation' must be one of tanh, relu, got 'foo'",
        ),
        (
            lambda: LearnerSettings(learning_rate=-1),
            "setting 'learning_rate' must be greater than 0 and at most 1, got -1",
        ),
        (
            lambda: LearnerSettings(minibatch_size=0),
            "setting 'minibatch_size' must be at least 1, got 0",
        ),
        (lambda: LearnerSettings(gamma=2), "setting 'gamma' must be from 0 to 1, got 2"),
        (
            lambda: run_config_cls()(max_waiting=-3),
            "setting 'max_waiting' must be at least 0 (or none), got -3",
        ),
        (
            lambda: run_config_cls()(minutes=-1.0),
            "setting 'minutes' must be greater than 0 (or none), got -1.0",
        ),
    ]
    for make, text in cases:
        with pytest.raises(SettingsError) as exc:
            make()
        assert str(exc.value) == text


def test_a_near_miss_of_a_choice_gets_a_did_you_mean():
    with pytest.raises(SettingsError) as exc:
        PPOSettings(activation="rleu")
    assert str(exc.value) == (
        "setting 'activation' must be one of tanh, relu, got 'rleu' (did you mean 'relu'?)"
    )


def test_a_wrong_type_from_python_is_refused():
    with pytest.raises(SettingsError) as exc:
        LearnerSettings(batch_files="10")
    assert str(exc.value) == "setting 'batch_files' must be int, got '10'"
    with pytest.raises(SettingsError) as exc:
        LearnerSettings(n_epochs=True)
    assert str(exc.value) == "setting 'n_epochs' must be int, got True"


def test_the_learner_and_the_agent_refuse_bad_keywords_before_starting(tmp_path):
    from bgtrain.compat.agent import RLAgent
    from bgtrain.learn.learner import BackgroundLearner

    with pytest.raises(SettingsError) as exc:
        BackgroundLearner(tmp_path / "root", learning_rate=-1)
    assert str(exc.value) == (
        "setting 'learning_rate' must be greater than 0 and at most 1, got -1"
    )
    assert not (tmp_path / "root").exists()  # nothing made, nothing started
    with pytest.raises(SettingsError) as exc:
        RLAgent(learning_rate=0.001, gamma=2, model_path=tmp_path / "m.npz")
    assert str(exc.value) == "setting 'gamma' must be from 0 to 1, got 2"


def test_replace_settings_refuses_a_misspelled_keyword_with_a_did_you_mean():
    with pytest.raises(SettingsError) as exc:
        replace_settings(LearnerSettings(), learnig_rate=0.1)
    assert str(exc.value) == (
        "unknown setting 'learnig_rate' for LearnerSettings (did you mean 'learning_rate'?); "
        f"known: {known(LearnerSettings)}"
    )
    assert replace_settings(LearnerSettings(), gamma=0.5).gamma == 0.5


# --------------------------------------------------------------------------- misspelled tables


def test_a_misspelled_table_is_refused_with_a_did_you_mean(tmp_path):
    path = write_config(tmp_path, "[learnr]\nlearning_rate = 0.01\n")
    for section in ("learner", "run"):
        with pytest.raises(SettingsError) as exc:
            read_toml(path, section)
        assert str(exc.value) == (
            f"settings file {path}: unknown table [learnr] (did you mean [learner]?); "
            "known tables: [learner], [run]"
        )
    far = write_config(tmp_path, "[monitor]\nrefresh = 2\n")
    with pytest.raises(SettingsError) as exc:
        read_toml(far, "learner")
    assert str(exc.value) == (
        f"settings file {far}: unknown table [monitor]; known tables: [learner], [run]"
    )


def test_keys_outside_the_tables_of_a_file_with_tables_are_refused(tmp_path):
    """They were ignored in silence: the learner ran with its defaults."""
    path = write_config(tmp_path, "learning_rate = 0.5\n\n[learner]\nbatch_files = 3\n")
    with pytest.raises(SettingsError) as exc:
        read_toml(path, "learner")
    assert str(exc.value) == (
        f"settings file {path}: learning_rate outside any table while the file has tables: "
        "move it into one of [learner], [run]"
    )


def test_a_misspelled_key_of_the_run_table_is_refused_with_a_did_you_mean(tmp_path):
    path = write_config(tmp_path, "[run]\nmax_waitng = 2\n")
    with pytest.raises(SettingsError) as exc:
        build_settings(run_config_cls(), read_toml(path, "run"))
    assert str(exc.value).startswith(
        "unknown setting 'max_waitng' for RunConfig (did you mean 'max_waiting'?); known: "
    )


def test_the_allowed_values_read_as_in_the_errors():
    assert allowed_text(LearnerSettings, "learning_rate") == "greater than 0 and at most 1"
    assert allowed_text(LearnerSettings, "batch_steps") == "at least 1 (or none)"
    assert allowed_text(LearnerSettings, "verbose") == "true or false"
    assert Allowed().describe() == "any value"


def test_a_run_root_in_the_config_file_is_used_unless_root_is_given(tmp_path):
    """The file's [run] root was silently replaced by --root's default."""
    from bgtrain.cli import build_parser
    from bgtrain.cli.run import config_from_args

    config = tmp_path / "bgtrain.toml"
    config.write_text('[run]\nroot = "from_the_file"\n', encoding="utf-8")

    def root_of(*flags: str) -> Path:
        return config_from_args(build_parser().parse_args(["run", *flags])).root

    assert root_of("--config", str(config)) == Path("from_the_file")
    assert root_of("--config", str(config), "--root", "local_training") == Path("local_training")
    assert root_of() == Path("local_training")


# --------------------------------------------------------------------------- held settings
#
# LearnerSettings holds the algorithm's settings (PPOSettings: the model's
# hyperparameters); a person still names each of them flat, as before they were held.


def test_the_learner_holds_the_algorithms_settings_and_not_the_other_way_round():
    s = LearnerSettings(learning_rate=1e-3, gamma=0.9, batch_files=3)
    assert s.ppo == PPOSettings(learning_rate=1e-3, gamma=0.9)
    assert (s.learning_rate, s.gamma, s.batch_files) == (1e-3, 0.9, 3)  # read flat too
    assert "poll_interval" not in {f.name for f in dataclasses.fields(PPOSettings)}
    assert "verbose" not in dataclasses.asdict(s.ppo)
    assert LearnerSettings(ppo=PPOSettings(gamma=0.5), gamma=0.7).ppo.gamma == 0.7
    with pytest.raises(AttributeError, match="'LearnerSettings' object has no attribute 'gama'"):
        _ = s.gama


def test_the_piece_length_is_the_learners_own_setting():
    """The learner's pipeline splits long games by it, so it cannot be one algorithm's
    (another algorithm's settings would lack it); it keeps its place among the flags."""
    assert "max_piece_steps" in {f.name for f in dataclasses.fields(LearnerSettings)}
    assert "max_piece_steps" not in {f.name for f in dataclasses.fields(PPOSettings)}
    s = LearnerSettings(max_piece_steps=7, gamma=0.5)
    assert (s.max_piece_steps, s.ppo) == (7, PPOSettings(gamma=0.5))
    names = setting_names(LearnerSettings)
    assert names[names.index("seed") + 1] == "max_piece_steps"  # right after PPO's


def test_replacing_a_held_setting_keeps_the_others():
    s = LearnerSettings(gamma=0.9, n_epochs=3, batch_files=4)
    for replaced in (
        replace_settings(s, learning_rate=0.01),
        dataclasses.replace(s, learning_rate=0.01),
    ):
        assert replaced.ppo == PPOSettings(gamma=0.9, n_epochs=3, learning_rate=0.01)
        assert replaced.batch_files == 4
    whole = replace_settings(s, ppo=PPOSettings(seed=3))
    assert whole.ppo == PPOSettings(seed=3)
    assert flat_values(whole)["seed"] == 3 and flat_values(whole)["batch_files"] == 4


def test_flags_and_toml_name_held_settings_flat(tmp_path):
    path = write_config(tmp_path, "[learner]\ngamma = 0.8\nbatch_files = 2\n")
    s = settings_from_args(LearnerSettings, parse(["--n-epochs", "3"]), path, "learner")
    assert s.ppo == PPOSettings(gamma=0.8, n_epochs=3)
    assert s.batch_files == 2
    with pytest.raises(SystemExit):
        parse(["--ppo", "x"])  # the holding field is no flag of its own


def test_learner_settings_cross_a_process_boundary_whole():
    """``bgtrain run`` sends them to the learner process (spawn: pickled)."""
    import pickle

    s = LearnerSettings(gamma=0.9, seed=4, poll_interval=1.0)
    again = pickle.loads(pickle.dumps(s))
    assert again == s and again.seed == 4 and hash(again) == hash(s)


@dataclasses.dataclass(frozen=True)
class _Inner:
    seed: int = setting(0, "a seed")


@flat_settings
@dataclasses.dataclass(frozen=True)
class _Outer:
    inner: _Inner = held(_Inner, "held")  # noqa: RUF009
    seed: int = setting(1, "another seed")


def test_two_held_settings_of_one_name_are_refused():
    with pytest.raises(TypeError, match="_Outer has two settings named 'seed'"):
        setting_names(_Outer)
