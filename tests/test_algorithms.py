"""The algorithm seam: the registry keyed by ``ModelMeta.algorithm`` (an empty name is
today's ``ppo-vtrace``, an unknown one is refused with what to do), the learner and
RLAgent continuing a model by the algorithm it names, and the model's hyperparameters
holding the algorithm's settings only."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from bgtrain.compat.agent import RLAgent
from bgtrain.errors import UnknownAlgorithmError
from bgtrain.game.policy import Policy
from bgtrain.learn import algorithms
from bgtrain.learn.algorithms.ppo import PPOVTrace
from bgtrain.learn.learner import BackgroundLearner
from bgtrain.learn.settings import LearnerSettings, PPOSettings
from bgtrain.store.episode import build_episode
from bgtrain.store.lock import LearnerLock
from bgtrain.store.models import ModelStore

from .helpers import wait_until, write_episode

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = PPOSettings(seed=0, hidden_sizes=(8,), n_epochs=1)
STATES = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)


def publish(root, algorithm: str, settings: PPOSettings = SMALL) -> PPOVTrace:
    """A model of 3 inputs and 2 actions, published with ``meta.algorithm = algorithm``."""
    trainer = algorithms.create(None, 3, 2, settings)
    ModelStore(root).publish(trainer.export(), trainer.meta(algorithm=algorithm))
    return trainer


def one_game(steps: int = 6) -> list:
    rng = np.random.default_rng(steps)
    return [
        build_episode(
            rng.normal(size=(steps, 3)).astype(np.float32),
            rng.integers(2, size=steps),
            rng.normal(size=steps),
        )
    ]


# --------------------------------------------------------------------------- the registry


@pytest.mark.parametrize("name", ["", None, "ppo-vtrace"])
def test_the_registry_resolves_the_empty_name_and_ppo_vtrace_to_ppo(name):
    spec = algorithms.resolve(name)
    assert spec.name == "ppo-vtrace" == algorithms.DEFAULT_ALGORITHM
    assert spec.factory() is PPOVTrace
    assert spec.settings_type is PPOSettings
    made = algorithms.create(name, 3, 2, SMALL)
    assert isinstance(made, PPOVTrace)
    assert made.meta().algorithm == "ppo-vtrace"
    assert algorithms.known_algorithms() == ("ppo-vtrace",)


def test_an_unknown_algorithm_is_refused_with_the_known_ones_and_what_to_do():
    with pytest.raises(UnknownAlgorithmError) as exc:
        algorithms.create("sac", 3, 2)
    assert str(exc.value) == (
        "unknown algorithm 'sac': this bgtrain knows ppo-vtrace; name one of them "
        "(or none, for the default)"
    )
    assert (exc.value.algorithm, exc.value.known) == ("sac", ("ppo-vtrace",))


def test_a_model_of_an_unknown_algorithm_is_refused_naming_the_model(tmp_path):
    publish(tmp_path, "sac")
    model = ModelStore(tmp_path).load()
    with pytest.raises(UnknownAlgorithmError) as exc:
        algorithms.continue_from(model)
    assert str(exc.value) == (
        f"model v1 in {model.path} was trained by algorithm 'sac', which this bgtrain does "
        "not know (it knows ppo-vtrace): continue it with a bgtrain that does, or roll back "
        "to a version it knows (bgtrain rollback VERSION)"
    )
    assert "\n" not in str(exc.value)


def test_settings_are_the_algorithms_or_a_learners_that_holds_them():
    learner = LearnerSettings(gamma=0.5, hidden_sizes=(4,), poll_interval=1.0)
    made = algorithms.create(None, 3, 2, learner)
    assert made.settings == learner.ppo
    with pytest.raises(TypeError) as exc:
        algorithms.create(None, 3, 2, {"gamma": 0.5})
    assert str(exc.value) == (
        "algorithm 'ppo-vtrace' takes PPOSettings (or settings that hold it as 'ppo'), got dict"
    )


def test_the_class_takes_its_own_settings_only_the_registry_unpacks_a_learners():
    """Given a learner's settings, the class would miss their max_piece_steps: refused."""
    with pytest.raises(TypeError) as exc:
        PPOVTrace(3, 2, LearnerSettings())
    assert str(exc.value) == (
        "PPOVTrace takes PPOSettings, got LearnerSettings (make it with "
        "bgtrain.learn.algorithms.create to pass a learner's settings)"
    )
    with pytest.raises(ValueError, match=r"^max_piece_steps must be at least 1, got 0$"):
        PPOVTrace(3, 2, SMALL, max_piece_steps=0)


def test_the_algorithm_gets_the_learners_piece_length(tmp_path):
    """max_piece_steps is the learner's setting (its pipeline splits longer games); the
    registry hands it to the algorithm, new or continued; other settings get the default."""
    learner = LearnerSettings(max_piece_steps=4, hidden_sizes=(8,), seed=0)
    made = algorithms.create(None, 3, 2, learner)
    assert made.max_piece_steps == 4
    assert algorithms.create(None, 3, 2, SMALL).max_piece_steps == 4096
    assert algorithms.create(None, 3, 2).max_piece_steps == 4096
    ModelStore(tmp_path).publish(made.export(), made.meta())
    model = ModelStore(tmp_path).load()
    assert algorithms.continue_from(model, learner).max_piece_steps == 4
    assert algorithms.continue_from(model, SMALL).max_piece_steps == 4096
    # It cuts a 10-step game where the learner said: step 3 bootstraps from step 4.
    episode = build_episode(np.ones((10, 3)), [0] * 10, [0.0] * 10, terminated=True)
    prepared = made._prepare([episode])
    v4 = made.net.vf(prepared.obs[4:5]).detach()[0, 0].item()
    assert prepared.targets[3].item() == pytest.approx(made.settings.gamma * v4, abs=1e-6)


def test_the_model_records_the_algorithms_settings_not_the_learners():
    """LearnerSettings inherited the hyperparameters: models carried poll_interval, verbose.
    The piece length, which shapes PPO's numbers, is recorded as it always was."""
    made = algorithms.create(
        None, 3, 2, LearnerSettings(poll_interval=1.0, gamma=0.9, max_piece_steps=100)
    )
    hyper = made.meta().hyperparameters
    assert list(hyper) == [f.name for f in dataclasses.fields(PPOSettings)] + ["max_piece_steps"]
    assert (hyper["gamma"], hyper["max_piece_steps"]) == (0.9, 100)


def test_the_registry_imports_no_torch():
    code = (
        "import sys\n"
        "from bgtrain.errors import UnknownAlgorithmError\n"
        "from bgtrain.learn import algorithms\n"
        "spec = algorithms.resolve('')\n"
        "try:\n"
        "    algorithms.resolve('sac')\n"
        "except UnknownAlgorithmError:\n"
        "    pass\n"
        "print(spec.name, 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["ppo-vtrace", "False"]


# --------------------------------------------------------------------------- old files


def test_a_model_saved_with_an_empty_algorithm_loads_and_continues(tmp_path):
    """Models written before the name was read: ``algorithm`` empty (or absent)."""
    trainer = publish(tmp_path, "")
    model = ModelStore(tmp_path).load()
    assert model.meta.algorithm == ""

    resumed = algorithms.continue_from(model, SMALL)
    assert isinstance(resumed, PPOVTrace)
    want = Policy(trainer.export(), trainer.meta()).probs(STATES)
    np.testing.assert_allclose(Policy(resumed.export(), resumed.meta()).probs(STATES), want)
    metrics = resumed.train(one_game())
    assert metrics.n_samples == 6
    assert resumed.meta().algorithm == "ppo-vtrace"  # what it publishes next says it


def test_the_learner_and_the_agent_continue_a_model_with_an_empty_algorithm(tmp_path):
    publish(tmp_path, "")
    write_episode(tmp_path / "data" / "buffer", "game_a.npz", steps=5, obs_dim=3)
    store = ModelStore(tmp_path)
    learner = BackgroundLearner(tmp_path, verbose=False, n_epochs=1)
    learner.start()
    try:
        wait_until(lambda: store.latest_version() == 2, what="the continued model's v2")
    finally:
        learner.stop()
    latest = ModelStore(tmp_path).load()
    assert (latest.version, latest.meta.algorithm) == (2, "ppo-vtrace")

    agent = RLAgent(model_path=tmp_path / "models" / "rl_agent_model.npz")
    assert (agent.version, agent.n_actions) == (2, 2)
    assert agent.train_from_batch([{"states": STATES, "actions": [0] * 10, "rewards": [1] * 10}])


def test_the_learner_does_not_start_over_a_model_of_an_unknown_algorithm(tmp_path):
    """Starting a new PPO model there would bury the root's own model under it."""
    publish(tmp_path, "sac")
    learner = BackgroundLearner(tmp_path, verbose=False)
    with pytest.raises(UnknownAlgorithmError, match="was trained by algorithm 'sac'"):
        learner.start()
    assert not learner.running
    assert ModelStore(tmp_path).latest_version() == 1
    with LearnerLock(tmp_path):  # the refused start let the lock go
        pass
