"""``RLAgent``, the seed system's agent API: it learns, saves (published or as one file),
loads back the same policy, and refuses bad experiences with their exact reason."""

from __future__ import annotations

import numpy as np
import pytest

from bgtrain.compat.agent import RLAgent
from bgtrain.errors import InvalidEpisodeError
from bgtrain.game.policy import Policy
from bgtrain.learn.settings import PPOSettings
from bgtrain.store.models import ModelStore, history_name, read_model_file

STATE = np.array([0.3, -1.0, 2.0], dtype=np.float32)
SMALL = PPOSettings(seed=0, hidden_sizes=(16,), n_epochs=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """The agent's default model path is relative (./local_training): keep it in tmp_path."""
    monkeypatch.chdir(tmp_path)


def agent_probs(agent: RLAgent, states: np.ndarray) -> np.ndarray:
    assert agent.algorithm is not None
    return Policy(agent.algorithm.export(), agent.algorithm.meta(version=1)).probs(states)


def experiences(rng: np.random.Generator, n: int = 4, steps: int = 5, obs_dim: int = 3):
    return [
        {
            "states": rng.normal(size=(steps + i, obs_dim)).astype(np.float32),
            "actions": rng.integers(2, size=steps + i),
            "rewards": rng.normal(size=steps + i),
        }
        for i in range(n)
    ]


def test_agent_learns_the_bandit():
    agent = RLAgent(learning_rate=0.001, n_actions=2, settings=PPOSettings(seed=0))
    rng = np.random.default_rng(0)
    for _ in range(10):
        batch = []
        for _ in range(20):
            action = int(rng.integers(2))
            reward = 1.0 if action == 0 else -1.0
            batch.append({"states": STATE[None], "actions": [action], "rewards": [reward]})
        agent.train_from_batch(batch)
    assert agent_probs(agent, STATE)[0] > 0.9
    chosen = [agent.get_action(STATE) for _ in range(200)]
    assert chosen.count(0) >= 180


def test_learning_rate_reaches_the_optimiser():
    agent = RLAgent(learning_rate=0.0123, n_actions=2)
    agent.get_action(STATE)
    assert agent.algorithm is not None
    assert agent.algorithm.optimizer.param_groups[0]["lr"] == 0.0123
    assert RLAgent().settings.learning_rate == 0.001  # the seed's default


def test_get_action_makes_the_network_from_the_state():
    agent = RLAgent(settings=SMALL)
    assert agent.algorithm is None
    actions = {agent.get_action(list(STATE)) for _ in range(100)}
    assert actions <= set(range(5)) and len(actions) > 1  # the seed bot's five strategies
    assert all(isinstance(a, int) for a in actions)
    assert agent.algorithm is not None and agent.algorithm.obs_dim == 3


def test_train_from_batch_reports_loss_steps_and_games():
    agent = RLAgent(settings=SMALL)
    batch = experiences(np.random.default_rng(1))
    result = agent.train_from_batch(batch)
    assert set(result) == {"loss", "steps", "games"}
    assert result["steps"] == sum(len(e["states"]) for e in batch) == 26
    assert result["games"] == 4
    assert np.isfinite(result["loss"])
    assert agent.train_from_batch([]) == {"loss": 0.0, "steps": 0, "games": 0}


def test_bad_experience_raises_with_its_reason_and_trains_nothing():
    agent = RLAgent(settings=SMALL)
    rng = np.random.default_rng(2)
    agent.train_from_batch(experiences(rng))
    before = agent_probs(agent, STATE)

    batch = experiences(rng)
    batch[2]["rewards"] = np.array([0.0, float("nan"), 1.0, 0.0, 0.0, 0.0, 0.0])
    with pytest.raises(InvalidEpisodeError) as exc:
        agent.train_from_batch(batch)
    assert exc.value.reason == "'rewards' has NaN at [1]"
    assert str(exc.value) == "'rewards' has NaN at [1]"

    batch = experiences(rng)
    batch[0]["actions"] = np.array([0, 7, 0, 0, 0])
    with pytest.raises(InvalidEpisodeError) as exc:
        agent.train_from_batch(batch)
    assert exc.value.reason == "'actions'[1] = 7 is out of range: this root has 5 actions (0..4)"
    np.testing.assert_array_equal(agent_probs(agent, STATE), before)


def test_experience_of_the_wrong_width_is_a_bad_experience():
    agent = RLAgent(settings=SMALL)
    agent.train_from_batch(experiences(np.random.default_rng(3), obs_dim=3))
    wrong = experiences(np.random.default_rng(4), n=1, obs_dim=4)
    with pytest.raises(InvalidEpisodeError) as exc:
        agent.train_from_batch(wrong)
    assert exc.value.reason == "obs_dim is 4, but this root's model expects 3"


# --------------------------------------------------------------------------- saving


def test_save_model_before_any_state_saves_nothing(tmp_path):
    agent = RLAgent()
    assert agent.save_model() is False
    assert not (tmp_path / "local_training").exists()


def test_save_model_into_a_root_publishes_versions(tmp_path):
    agent = RLAgent(settings=SMALL)
    rng = np.random.default_rng(5)
    agent.train_from_batch(experiences(rng))
    assert agent.save_model() is True  # the default: ./local_training/models/
    agent.train_from_batch(experiences(rng))
    assert agent.save_model() is True

    root = tmp_path / "local_training"
    store = ModelStore(root)
    assert store.versions() == [1, 2]
    assert (root / "models" / "history" / history_name(1)).is_file()
    assert (root / "models" / "history" / history_name(2)).is_file()
    latest = store.load()
    assert latest.version == agent.version == 2
    assert latest.meta.counters == {"games": 8, "samples": 52}

    # Another root given explicitly: its own version sequence.
    other = tmp_path / "elsewhere"
    assert agent.save_model(other / "models" / "rl_agent_model.npz") is True
    assert ModelStore(other).versions() == [1]

    reloaded = RLAgent(model_path=root / "models" / "rl_agent_model.npz", settings=SMALL)
    assert reloaded.version == 2


def test_save_model_elsewhere_writes_one_whole_file_that_loads_back(tmp_path):
    agent = RLAgent(n_actions=3, settings=SMALL)
    rng = np.random.default_rng(6)
    agent.train_from_batch(experiences(rng))
    path = tmp_path / "exports" / "bot.npz"
    assert agent.save_model(path) is True
    assert sorted(p.name for p in path.parent.iterdir()) == ["bot.npz"]  # no history, no temp

    model = read_model_file(path)
    assert model.version == 1
    assert (model.meta.obs_dim, model.meta.n_actions) == (3, 3)
    assert model.meta.layer_sizes == (16,)

    states = np.random.default_rng(7).normal(size=(20, 3)).astype(np.float32)
    want = agent_probs(agent, states)
    np.testing.assert_allclose(Policy.from_model(model).probs(states), want, atol=1e-6)

    loaded = RLAgent(model_path=path)  # default settings: the file's sizes win
    assert loaded.n_actions == 3
    assert loaded.version == 1
    np.testing.assert_allclose(agent_probs(loaded, states), want, atol=1e-6)
    assert 0 <= loaded.get_action(states[0]) < 3

    agent.train_from_batch(experiences(rng))
    agent.save_model(path)
    assert read_model_file(path).version == 2


def test_save_model_into_a_root_keeps_the_history_size_of_its_learner(tmp_path):
    """It pruned models/history/ to the default 50 versions whatever the learner kept."""
    root = tmp_path / "local_training"
    learners = ModelStore(root, history_size=3)  # as a learner with history_size=3 publishes
    agent = RLAgent(settings=SMALL)
    rng = np.random.default_rng(8)
    agent.train_from_batch(experiences(rng))
    learners.publish(agent.algorithm.export(), agent.algorithm.meta())
    for _ in range(4):
        agent.train_from_batch(experiences(rng))
        assert agent.save_model() is True
    assert ModelStore(root).versions() == [3, 4, 5]
