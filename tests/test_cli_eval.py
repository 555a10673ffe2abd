"""``bgtrain eval`` as a subprocess: its text and JSON reports, greedy or sampled actions,
a version from the history, the game taken from the model, and exact error messages."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bgtrain import LearnerLock, ModelStore, TrainingRoot

from .helpers import bgtrain_cli

JSON_KEYS = {"version", "episodes", "greedy", "mean", "std", "min", "max", "win_rate", "returns"}


def publish_untrained(root: TrainingRoot, obs_dim: int, n_actions: int, env: str, n: int) -> None:
    """Publish ``n`` versions of a freshly initialised network, as the learner would."""
    from bgtrain.learn import algorithms
    from bgtrain.learn.settings import PPOSettings

    trainer = algorithms.create(None, obs_dim, n_actions, PPOSettings(seed=0, hidden_sizes=(16,)))
    store = ModelStore(root.path)
    with LearnerLock(root.path):
        for _ in range(n):
            store.publish(trainer.export(), trainer.meta(extra={"env": env}))


@pytest.fixture(scope="module")
def cartpole_root(tmp_path_factory) -> TrainingRoot:
    """A root with versions 1 and 2 of a CartPole-v1 model."""
    root = TrainingRoot(tmp_path_factory.mktemp("eval") / "root")
    publish_untrained(root, 4, 2, "CartPole-v1", 2)
    return root


def eval_json(root: TrainingRoot, *args: str) -> dict:
    result = bgtrain_cli("eval", "--root", root.path, "--json", *args, cwd=root.path.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # one JSON object, nothing else
    return json.loads(lines[0])


def test_eval_prints_mean_min_max_and_win_rate(cartpole_root):
    result = bgtrain_cli(
        "eval", "--root", cartpole_root.path, "--episodes", "3", "--seed", "0",
        cwd=cartpole_root.path.parent,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Model v2 on CartPole-v1, 3 games, greedy actions"
    assert lines[1].startswith("  mean return: ")
    assert lines[2].startswith("  min / max:   ")
    assert lines[3].startswith("  win rate:    ") and lines[3].endswith("%")
    assert result.stderr == ""


def test_eval_json_is_one_object_whose_numbers_agree_with_its_returns(cartpole_root):
    report = eval_json(cartpole_root, "--episodes", "3", "--seed", "0")

    assert set(report) >= JSON_KEYS
    assert report["env"] == "CartPole-v1"
    assert report["version"] == 2
    assert report["episodes"] == 3
    assert report["greedy"] is True
    returns = report["returns"]
    assert len(returns) == 3
    assert all(r >= 1 for r in returns)  # a CartPole game lasts at least one step
    mean = sum(returns) / 3
    assert report["mean"] == pytest.approx(mean)
    assert report["std"] == pytest.approx(math.sqrt(sum((r - mean) ** 2 for r in returns) / 3))
    assert (report["min"], report["max"]) == (min(returns), max(returns))
    assert 0.0 <= report["win_rate"] <= 1.0
    # The same seed plays the same games: two evaluations can be compared.
    assert eval_json(cartpole_root, "--episodes", "3", "--seed", "0")["returns"] == returns


def test_eval_sample_plays_sampled_actions_of_the_version_asked(cartpole_root):
    report = eval_json(
        cartpole_root, "--episodes", "3", "--seed", "0", "--sample", "--version", "1"
    )

    assert report["greedy"] is False
    assert report["version"] == 1
    assert len(report["returns"]) == 3


def test_eval_of_a_missing_version_names_the_available_ones(cartpole_root):
    result = bgtrain_cli(
        "eval", "--root", cartpole_root.path, "--version", "7", "--episodes", "1",
        cwd=cartpole_root.path.parent,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: version 7 is not in {cartpole_root.history} (available: 1-2)\n"
    )


def test_eval_on_a_root_without_a_model_says_so(tmp_path):
    root = TrainingRoot(tmp_path / "empty")

    result = bgtrain_cli("eval", "--root", root.path, "--episodes", "1", cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr == (
        f"error: no model published yet in {root.models}; the learner publishes one after "
        "its first batch\n"
    )
    assert "Traceback" not in result.stderr


def test_eval_plays_the_game_the_model_was_trained_on(tmp_path):
    root = TrainingRoot(tmp_path / "root")
    publish_untrained(root, 6, 3, "Acrobot-v1", 1)

    report = eval_json(root, "--episodes", "1", "--seed", "0")

    assert report["env"] == "Acrobot-v1"
    assert report["returns"][0] <= 0  # Acrobot's rewards are -1 per step until it swings up


def test_eval_of_a_game_the_model_does_not_fit_is_refused_in_one_line(cartpole_root):
    result = bgtrain_cli(
        "eval", "--root", cartpole_root.path, "--env", "Acrobot-v1", "--episodes", "1",
        cwd=cartpole_root.path.parent,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: the model in --root {cartpole_root.path} (v2) was made for CartPole-v1 "
        "(4 observations, 2 actions); Acrobot-v1 has 6 observations, 3 actions. Use another "
        "--root for Acrobot-v1, or --env CartPole-v1\n"
    )


def test_eval_of_a_game_that_never_ends_returns_with_its_games_cut_short(cartpole_root):
    repo = Path(__file__).resolve().parent.parent  # ``tests`` is importable from here
    env = "tests.games_for_tests:endless_fast"
    args = ("eval", "--root", cartpole_root.path, "--env", env, "--episodes", "2")

    text = bgtrain_cli(*args, "--max-steps", "40", cwd=repo)
    report = json.loads(bgtrain_cli(*args, "--max-steps", "40", "--json", cwd=repo).stdout)

    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[-1] == (
        "  cut short:   2 of 2 games still going at the 40-step cap (--max-steps)"
    )
    assert (report["cut_short"], report["step_limit"], report["episodes"]) == (2, 40, 2)


def test_eval_json_says_no_game_was_cut_short_for_a_game_that_ends(cartpole_root):
    report = eval_json(cartpole_root, "--episodes", "2", "--seed", "0")

    assert (report["cut_short"], report["step_limit"]) == (0, 500)  # CartPole-v1's own limit
