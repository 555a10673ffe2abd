"""Pretraining from demonstrations (``bgtrain sc2 pretrain``), the learner's treatment of
demonstrations, and the seed's ``enable_replay_analysis``: on the shipped replays."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bgtrain.compat.parallel_learner import BackgroundParallelLearner
from bgtrain.game.policy import Policy
from bgtrain.integrations.sc2.bot import LearningBot
from bgtrain.integrations.sc2.replays import convert_replays, demonstrations_folder
from bgtrain.learn import algorithms
from bgtrain.learn.pipeline import DEMONSTRATION_REASON
from bgtrain.learn.pretrain import PretrainSettings, discounted_returns, pretrain
from bgtrain.store.episode import build_episode, load_episode, save_episode
from bgtrain.store.models import ModelStore

from .helpers import bgtrain_cli

REPLAYS = Path(__file__).parent / "data" / "sc2" / "replays"


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> Path:
    """A root whose data/demonstrations/ holds the 4 episodes of the two replays."""
    root = tmp_path_factory.mktemp("demos")
    convert_replays([REPLAYS], root)
    return root


def _copy_root(demos: Path, to: Path) -> Path:
    shutil.copytree(demos, to)
    return to


def own_games(n: int, seed: int = 0) -> list:
    """Games of the bot's own (15 numbers, 5 strategies, with their logp)."""
    rng = np.random.default_rng(seed)
    return [
        build_episode(
            rng.random((6, 15), dtype=np.float32),
            rng.integers(0, 5, 6),
            rng.normal(size=6).astype(np.float32),
            logp=np.full(6, np.log(0.2), dtype=np.float32),
            policy_version=1,
            meta={"env": "sc2", "outcome": "Victory"},
        )
        for _ in range(n)
    ]


def test_the_cli_pretrains_a_model_well_above_chance(demos, tmp_path):
    root = _copy_root(demos, tmp_path / "root")

    result = bgtrain_cli("sc2", "pretrain", "--root", root, "--epochs", "300", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    print(result.stdout)
    figures = re.search(
        r"greedy accuracy: ([\d.]+)% on the training states, ([\d.]+)% on 45 states of 1 "
        r"held-out episodes; chance \(the most frequent label\): ([\d.]+)%",
        result.stdout,
    )
    assert figures, result.stdout
    train, held, chance = map(float, figures.groups())
    assert chance == 71.8  # 148 of the 206 labels are ECONOMY
    assert train >= chance + 10
    assert "pretrained on 4 demonstrations (206 states)" in result.stdout
    model = ModelStore(root).load()
    assert model.version == 1
    assert model.meta.algorithm == "ppo-vtrace"
    assert (model.meta.obs_dim, model.meta.n_actions) == (15, 5)
    pretrained = model.meta.extra["pretrained"]
    assert pretrained["demonstrations"] == 4 and pretrained["samples"] == 206
    assert pretrained["train_accuracy"] == pytest.approx(train / 100, abs=0.001)
    assert pretrained["holdout_accuracy"] == pytest.approx(held / 100, abs=0.001)


def test_the_normalisation_is_fitted_on_the_demonstration_states(demos, tmp_path):
    root = _copy_root(demos, tmp_path / "root")
    report = pretrain(root, demonstrations_folder(root), PretrainSettings(epochs=5, holdout=0))

    files = sorted(demonstrations_folder(root).glob("*.npz"))
    states = np.concatenate([load_episode(f).states for f in files]).astype(np.float64)
    model = ModelStore(root).load()
    assert float(model.arrays["obs_count"]) == len(states) == report.samples
    np.testing.assert_allclose(model.arrays["obs_mean"], states.mean(axis=0), rtol=1e-5)


def test_the_value_targets_are_the_discounted_returns():
    episode = build_episode(np.zeros((3, 2)), [0, 0, 0], [1.0, 0.0, 10.0])

    assert discounted_returns(episode, 0.5).tolist() == [1.0 + 0.25 * 10.0, 5.0, 10.0]


def test_the_bot_plays_it_and_the_learner_continues_it_with_own_games(demos, tmp_path):
    root = _copy_root(demos, tmp_path / "root")
    pretrain(root, demonstrations_folder(root), PretrainSettings(epochs=20))

    bot = LearningBot(root)
    bot.load_newest_model()
    assert bot.policy_version == 1
    assert isinstance(bot._policy, Policy)

    algorithm = algorithms.continue_from(ModelStore(root).load())
    metrics = algorithm.train(own_games(3))
    assert metrics.n_episodes == 3 and metrics.n_samples == 18

    # The ordinary learner: own games train (version 2), a demonstration dropped into
    # buffer/ is set aside with its reason, untrained and not deleted.
    buffer = root / "data" / "buffer"
    buffer.mkdir(parents=True)
    for i, episode in enumerate(own_games(2, seed=1)):
        save_episode(episode, buffer / f"game_20250101_000000_00{i}_0_Victory.npz")
    demo = sorted(demonstrations_folder(root).glob("*.npz"))[0]
    shutil.copyfile(demo, buffer / demo.name)
    result = bgtrain_cli("learn", "--root", root, "--exit-when-idle", cwd=tmp_path, timeout=300)

    assert result.returncode == 0, result.stderr
    latest = ModelStore(root).load()
    assert latest.version == 2
    assert sorted(latest.meta.batch) == [
        "game_20250101_000000_000_0_Victory.npz",
        "game_20250101_000000_001_0_Victory.npz",
    ]
    quarantined = root / "data" / "quarantine" / demo.name
    assert quarantined.read_bytes() == demo.read_bytes()
    reason = (root / "data" / "quarantine" / (demo.name + ".reason.json")).read_text()
    assert DEMONSTRATION_REASON in reason.replace("\\u2019", "'")
    assert "bgtrain sc2 pretrain" in DEMONSTRATION_REASON


def test_pretrain_without_demonstrations_says_what_to_do(tmp_path):
    result = bgtrain_cli("sc2", "pretrain", "--root", tmp_path, cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: no demonstration episodes in {tmp_path / 'data' / 'demonstrations'}: "
        "convert replays first (bgtrain sc2 replays PATH... --root ROOT)"
    )


def test_enable_replay_analysis_converts_and_pretrains_the_first_model(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(REPLAYS, root / "replays")  # the default replay_folder
    lines: list[str] = []
    learner = BackgroundParallelLearner(
        enable_replay_analysis=True, verbose=False, root=root, console=lines.append
    )
    learner.start()
    learner.stop()

    assert len(list(demonstrations_folder(root).glob("*.npz"))) == 4
    model = ModelStore(root).load()
    assert model.version == 1 and "pretrained" in model.meta.extra
    assert lines[0] == (
        f"[INFO] Replay analysis: 2 replays -> 4 demonstrations in "
        f"{demonstrations_folder(root)} (0 quarantined)"
    )
    assert lines[1].startswith("[INFO] Pretrained model v1 from 4 demonstrations")

    # With a model already there, a second start converts again but does not pretrain.
    again: list[str] = []
    learner = BackgroundParallelLearner(
        enable_replay_analysis=True, verbose=False, root=root, console=again.append
    )
    learner.start()
    learner.stop()
    assert ModelStore(root).latest_version() == 1
    assert not any("Pretrained" in line for line in again)


def test_enable_replay_analysis_without_the_folder_starts_as_usual(tmp_path):
    lines: list[str] = []
    learner = BackgroundParallelLearner(
        enable_replay_analysis=True, verbose=False, root=tmp_path, console=lines.append
    )
    learner.start()
    learner.stop()

    assert lines[0] == f"[INFO] Replay analysis: no folder {tmp_path / 'replays'} (no replays)"
    assert ModelStore(tmp_path).latest_version() is None
