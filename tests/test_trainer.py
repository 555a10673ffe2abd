"""The torch learning step: the gradient's sign, the off-policy correction and its clip,
V-trace, bootstrapping, observation statistics, numpy/torch parity, continuing a model."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from bgtrain.game.policy import Policy
from bgtrain.learn.algorithms.ppo import PPOVTrace, vtrace
from bgtrain.learn.settings import PPOSettings
from bgtrain.store.episode import build_episode
from bgtrain.store.models import ModelMeta, ModelStore

LOG_HALF = math.log(0.5)
SMALL = {"hidden_sizes": (16, 16), "n_epochs": 2}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def numpy_policy(trainer: PPOVTrace, version: int = 1) -> Policy:
    return Policy(trainer.export(), trainer.meta(version=version))


def torch_probs_values(trainer: PPOVTrace, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        logits, values = trainer.net(trainer.normalize(states))
    return torch.softmax(logits.double(), dim=-1).numpy(), values.numpy()


def bandit_batch(rng: np.random.Generator, state: np.ndarray, n: int = 20):
    """One-step episodes of one state: action 0 earns +1, action 1 earns -1, chosen 50/50."""
    episodes = []
    for _ in range(n):
        action = int(rng.integers(2))
        episodes.append(
            build_episode(state[None], [action], [1.0 if action == 0 else -1.0], logp=[LOG_HALF])
        )
    return episodes


def random_episodes(rng, n_episodes=6, steps=7, obs_dim=4, n_actions=3, loc=0.0, scale=1.0, **kw):
    return [
        build_episode(
            rng.normal(loc, scale, size=(steps, obs_dim)).astype(np.float32),
            rng.integers(n_actions, size=steps),
            rng.normal(size=steps).astype(np.float32),
            **kw,
        )
        for _ in range(n_episodes)
    ]


# --------------------------------------------------------------------------- the sign


def test_bandit_learns_to_prefer_the_rewarded_action():
    """The seed system's learner had the gradient's sign wrong: this catches it.

    At the seed's step size (RLAgent's 0.001): a few batches are enough to show it.
    """
    trainer = PPOVTrace(3, 2, PPOSettings(seed=0, learning_rate=1e-3))
    rng = np.random.default_rng(0)
    state = np.array([0.3, -1.0, 2.0], dtype=np.float32)
    start = numpy_policy(trainer).probs(state)[0]
    assert abs(start - 0.5) < 0.05
    for _ in range(10):
        trainer.train(bandit_batch(rng, state))
    assert numpy_policy(trainer).probs(state)[0] > 0.9


# --------------------------------------------------------------------------- off-policy


def test_episodes_without_logp_are_on_policy_ratio_one():
    trainer = PPOVTrace(4, 3, PPOSettings(seed=1, **SMALL))
    rng = np.random.default_rng(1)
    for _ in range(2):
        metrics = trainer.train(random_episodes(rng))
        assert metrics.ratio_mean == pytest.approx(1.0, abs=1e-5)


def test_logp_recorded_by_the_current_policy_gives_ratio_one():
    # Fixed normalisation: the policy a game plays is then exactly the trainer's policy.
    trainer = PPOVTrace(4, 3, PPOSettings(seed=2, normalize_obs=False, **SMALL))
    rng = np.random.default_rng(2)
    trainer.train(random_episodes(rng))  # move away from the initial, near-uniform policy
    policy = numpy_policy(trainer)
    policy.seed(2)
    episodes = []
    for _ in range(5):
        states = rng.normal(size=(6, 4)).astype(np.float32)
        acted = [policy.act(s) for s in states]
        episodes.append(
            build_episode(
                states,
                [a for a, _ in acted],
                rng.normal(size=6).astype(np.float32),
                logp=[lp for _, lp in acted],
            )
        )
    assert not np.allclose(policy.probs(episodes[0].states), 1 / 3, atol=1e-3)
    metrics = trainer.train(episodes)
    assert metrics.ratio_mean == pytest.approx(1.0, abs=1e-5)


def _old_policy_batch(seed: int, n: int = 512, n_states: int = 16, obs_dim: int = 4):
    """One-step episodes played by an old policy that chose the bad action 1 90% of the time
    (behaviour logp log 0.9 / log 0.1), while the current policy is near 50/50."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_states, obs_dim)).astype(np.float32)
    mu = np.array([0.1, 0.9])
    actions = (rng.random(n) < mu[1]).astype(np.int64)
    episodes = [
        build_episode(
            base[i % n_states][None],
            [actions[i]],
            [1.0 if actions[i] == 0 else -1.0],
            logp=[math.log(mu[actions[i]])],
        )
        for i in range(n)
    ]
    return base, episodes


def _policy_change(clip_range: float, seed: int = 0):
    """log pi_new - log pi_old at the batch's states (every action) after one train()."""
    base, episodes = _old_policy_batch(seed)
    # normalize_obs off, so that the only change to the policy is the training step.
    # target_kl off: this measures what the clip alone bounds (over 8 minibatches x 10
    # epochs, enough updates for an unclipped step to run far).
    settings = PPOSettings(
        seed=seed,
        clip_range=clip_range,
        normalize_obs=False,
        target_kl=None,
        minibatch_size=64,
        learning_rate=1e-3,
    )
    trainer = PPOVTrace(4, 2, settings)
    before = numpy_policy(trainer).log_probs(base)
    behaviour = np.array([ep.logp[0] for ep in episodes[: len(base)]])
    current = before[np.arange(len(base)), [ep.actions[0] for ep in episodes[: len(base)]]]
    metrics = trainer.train(episodes)
    after = numpy_policy(trainer).log_probs(base)
    kl = (np.exp(before) * (before - after)).sum(axis=-1).mean()
    return after - before, kl, np.abs(behaviour - current).mean(), metrics


@pytest.mark.parametrize("seed", [0, 7])
def test_batch_from_a_much_older_policy_moves_the_policy_a_bounded_amount(seed):
    change, kl, behaviour_gap, metrics = _policy_change(clip_range=0.2, seed=seed)
    assert behaviour_gap > 0.5  # the games' policy really was far from the current one
    # The clip removes a sample's gradient once its ratio leaves [0.8, 1.2] (|log| ~ 0.2);
    # after that only Adam's momentum (beta1 0.9: a tail of ~10 shrinking steps) moves it
    # on, whatever the number of updates (here 8 minibatches x 10 epochs). Bound: the clip
    # edge plus that tail, 1.5 in log-probability at every state and action; mean KL 0.15.
    bound, kl_bound = 1.5, 0.15
    assert np.abs(change).max() < bound
    assert kl < kl_bound
    assert metrics.clip_fraction > 0
    # ...and it still learns from the old games: action 0 (rewarded) became more likely.
    assert change[:, 0].mean() > 0.05

    unclipped, unclipped_kl, _, unclipped_metrics = _policy_change(clip_range=1e6, seed=seed)
    assert unclipped_metrics.clip_fraction == 0
    # Without the clip the very same batch moves the policy far more: the clip is the bound.
    assert np.abs(unclipped).max() > 3 * bound
    assert unclipped_kl > 5 * kl_bound


def test_target_kl_stops_a_batch_early():
    """Many epochs at a large step size would move the policy far; target_kl stops them."""
    rng = np.random.default_rng(0)
    batch = random_episodes(rng, n_episodes=8, steps=16, obs_dim=3, n_actions=2)
    common = dict(seed=0, learning_rate=0.01, n_epochs=50, clip_range=1e6, normalize_obs=False)
    stopped = PPOVTrace(3, 2, PPOSettings(**common, target_kl=0.01)).train(batch)
    full = PPOVTrace(3, 2, PPOSettings(**common, target_kl=None)).train(batch)
    assert full.approx_kl > 0.015  # without the stop the policy does move that far
    assert stopped.n_updates < full.n_updates
    # Every applied minibatch started below 1.5 x target_kl; the one above was not applied.
    assert stopped.approx_kl <= 0.015


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize(
    ("obs_dim", "n_actions", "activation", "hidden"),
    [(1, 2, "tanh", (8,)), (4, 3, "relu", (16, 8)), (7, 5, "tanh", (12, 12)), (3, 4, "relu", (9,))],
)
def test_numpy_policy_equals_the_torch_network(tmp_path, obs_dim, n_actions, activation, hidden):
    settings = PPOSettings(seed=3, activation=activation, hidden_sizes=hidden, n_epochs=2)
    trainer = PPOVTrace(obs_dim, n_actions, settings)
    rng = np.random.default_rng(obs_dim * 10 + n_actions)
    scale = rng.uniform(0.1, 5.0, size=obs_dim)
    trainer.train(random_episodes(rng, obs_dim=obs_dim, n_actions=n_actions, loc=3.0, scale=scale))
    assert not np.allclose(trainer.obs_rms.mean, 0.0)  # non-trivial statistics
    assert not np.allclose(trainer.obs_rms.var, 1.0)

    states = rng.normal(3.0, 4.0 * scale, size=(50, obs_dim)).astype(np.float32)
    states[0] = 1e4  # far outside: exercises the +-10 clip of normalised inputs
    states[1] = -1e4
    want_probs, want_values = torch_probs_values(trainer, states)

    policy = numpy_policy(trainer)
    np.testing.assert_allclose(policy.probs(states), want_probs, atol=1e-5)
    np.testing.assert_allclose(policy.value(states), want_values, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(policy.probs(states[5]), want_probs[5], atol=1e-5)

    ModelStore(tmp_path).publish(trainer.export(), trainer.meta())
    loaded = Policy.load(tmp_path)
    assert loaded.version == 1
    np.testing.assert_allclose(loaded.probs(states), want_probs, atol=1e-5)
    np.testing.assert_allclose(loaded.value(states), want_values, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- vtrace


def gae_reference(rewards, values, bootstrap, gamma, lam):
    """GAE(lambda), written out step by step."""
    t_max = len(rewards)
    advantages = np.zeros(t_max)
    for t in range(t_max):
        total = 0.0
        for k in range(t, t_max):
            next_value = values[k + 1] if k + 1 < t_max else bootstrap
            delta = rewards[k] + gamma * next_value - values[k]
            total += (gamma * lam) ** (k - t) * delta
        advantages[t] = total
    return advantages + values, advantages


@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 0.5), (1.0, 0.0), (0.7, 1.0)])
def test_vtrace_on_policy_is_gae(gamma, lam):
    rng = np.random.default_rng(4)
    rewards, values = rng.normal(size=9), rng.normal(size=9)
    targets, advantages = vtrace(rewards, values, 0.7, np.zeros(9), gamma, lam)
    want_targets, want_adv = gae_reference(rewards, values, 0.7, gamma, lam)
    np.testing.assert_allclose(advantages, want_adv, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(targets, want_targets, rtol=1e-10, atol=1e-12)
    # Behaviour less likely than pi: weights truncated at rho_bar = 1, so still GAE.
    targets_hi, adv_hi = vtrace(rewards, values, 0.7, np.full(9, 3.0), gamma, lam)
    np.testing.assert_allclose(adv_hi, want_adv, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(targets_hi, want_targets, rtol=1e-10, atol=1e-12)


def test_vtrace_lambda_one_gamma_one_is_reward_to_go_plus_bootstrap():
    rewards = np.array([1.0, -2.0, 0.5, 3.0])
    values = np.array([10.0, -4.0, 0.25, 7.0])
    targets, advantages = vtrace(rewards, values, 5.0, np.zeros(4), 1.0, 1.0)
    np.testing.assert_allclose(targets, [7.5, 6.5, 8.5, 8.0])
    np.testing.assert_allclose(advantages, targets - values)


def test_vtrace_scales_td_errors_down_when_the_behaviour_was_more_likely():
    rewards = np.array([1.0, 2.0])
    values = np.array([0.5, 1.0])
    # pi/mu = 0.25 and 0.5: weights 0.25, 0.5; traces lam * 0.25, lam * 0.5.
    targets, advantages = vtrace(rewards, values, 3.0, np.log([0.25, 0.5]), gamma=0.9, lam=0.8)
    delta1 = 0.5 * (2.0 + 0.9 * 3.0 - 1.0)  # 1.85
    delta0 = 0.25 * (1.0 + 0.9 * 1.0 - 0.5)  # 0.35
    want = [delta0 + 0.9 * (0.8 * 0.25) * delta1, delta1]  # 0.683, 1.85
    np.testing.assert_allclose(advantages, want, rtol=1e-12)
    np.testing.assert_allclose(targets, np.array(want) + values, rtol=1e-12)
    # Far more likely under the behaviour: the targets shrink to the current values.
    targets_far, adv_far = vtrace(rewards, values, 3.0, np.full(2, -30.0), 0.9, 0.8)
    np.testing.assert_allclose(adv_far, 0.0, atol=1e-10)
    np.testing.assert_allclose(targets_far, values, atol=1e-10)


# --------------------------------------------------------------------------- bootstrap


def test_cut_short_episode_bootstraps_from_its_last_state():
    settings = PPOSettings(seed=5, gamma=0.9, **SMALL)
    trainer = PPOVTrace(3, 2, settings)
    rng = np.random.default_rng(5)
    trainer.train(random_episodes(rng, obs_dim=3, n_actions=2))  # a non-trivial critic
    states = rng.normal(size=(4, 3)).astype(np.float32)
    last_state = np.array([2.0, -1.0, 0.5], dtype=np.float32)
    rewards = np.array([0.1, 0.2, 0.3, 1.5], dtype=np.float32)
    cut = build_episode(states, [0, 1, 0, 1], rewards, terminated=False, last_state=last_state)
    ended = build_episode(states, [0, 1, 0, 1], rewards, terminated=True, last_state=last_state)

    with torch.no_grad():
        v_last = float(trainer.net(trainer.normalize(last_state[None]))[1][0])
    assert abs(v_last) > 1e-3
    targets = trainer._prepare([cut, ended]).targets.numpy()
    assert targets[3] == pytest.approx(1.5 + 0.9 * v_last, abs=1e-5)
    assert targets[7] == pytest.approx(1.5, abs=1e-6)


# --------------------------------------------------------------------------- obs statistics


def test_observation_statistics_are_those_of_every_state_seen(tmp_path):
    settings = PPOSettings(seed=6, hidden_sizes=(8,), n_epochs=1)
    trainer = PPOVTrace(3, 2, settings)
    rng = np.random.default_rng(6)
    seen = []
    for i in range(4):  # batches of different sizes and distributions: the parallel merge
        batch = random_episodes(
            rng,
            n_episodes=2 + i,
            steps=3 + 2 * i,
            obs_dim=3,
            n_actions=2,
            loc=[5.0 * i, -2.0, 100.0],
            scale=[1.0 + i, 0.01, 30.0],
        )
        seen.extend(ep.states for ep in batch)
        trainer.train(batch)
        arrays = trainer.export()
        everything = np.concatenate(seen).astype(np.float64)
        np.testing.assert_allclose(arrays["obs_mean"], everything.mean(axis=0), rtol=1e-4)
        np.testing.assert_allclose(arrays["obs_var"], everything.var(axis=0), rtol=1e-4)

    # A learner restarted from the published model carries on with the same statistics.
    ModelStore(tmp_path).publish(trainer.export(), trainer.meta())
    resumed = PPOVTrace.from_model(ModelStore(tmp_path).load(), settings)
    batch = random_episodes(rng, n_episodes=3, steps=4, obs_dim=3, n_actions=2, loc=-7.0)
    seen.extend(ep.states for ep in batch)
    resumed.train(batch)
    everything = np.concatenate(seen).astype(np.float64)
    np.testing.assert_allclose(resumed.export()["obs_mean"], everything.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(resumed.export()["obs_var"], everything.var(axis=0), rtol=1e-4)


# --------------------------------------------------------------------------- from_model


def test_from_model_continues_the_published_model(tmp_path):
    settings = PPOSettings(seed=7, hidden_sizes=(12, 6), activation="relu", n_epochs=2)
    trainer = PPOVTrace(5, 3, settings)
    rng = np.random.default_rng(7)
    trainer.train(random_episodes(rng, obs_dim=5, loc=2.0))
    store = ModelStore(tmp_path)
    store.publish(trainer.export(), trainer.meta())

    # The learner's own settings say (64, 64) tanh: the model's meta wins.
    resumed = PPOVTrace.from_model(store.load(), PPOSettings(seed=8))
    assert resumed.net.hidden == (12, 6)
    assert resumed.net.activation == "relu"
    assert resumed.meta().layer_sizes == (12, 6)
    assert resumed.settings.hidden_sizes == (12, 6)

    states = rng.normal(2.0, 3.0, size=(20, 5)).astype(np.float32)
    want, _ = torch_probs_values(trainer, states)
    got, _ = torch_probs_values(resumed, states)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(Policy.load(tmp_path).probs(states), want, atol=1e-5)
    # It trains on from there.
    metrics = resumed.train(random_episodes(rng, obs_dim=5, loc=2.0))
    assert metrics.n_samples == 42 and metrics.n_episodes == 6
    assert metrics.n_updates == resumed.settings.n_epochs  # 42 samples: one minibatch
    assert not np.allclose(torch_probs_values(resumed, states)[0], want, atol=1e-6)


def test_from_model_without_settings_or_layer_sizes_in_meta(tmp_path):
    trainer = PPOVTrace(3, 2, PPOSettings(seed=9, n_epochs=1))  # default (64, 64) tanh
    meta = ModelMeta(version=0, obs_dim=3, n_actions=2)  # a hand-made model: sizes unstated
    ModelStore(tmp_path).publish(trainer.export(), meta)
    resumed = PPOVTrace.from_model(ModelStore(tmp_path).load())
    states = np.random.default_rng(9).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(
        torch_probs_values(resumed, states)[0], torch_probs_values(trainer, states)[0], atol=1e-6
    )


def test_meta_records_the_network_and_hyperparameters():
    settings = dataclasses.replace(PPOSettings(), hidden_sizes=(10,), activation="relu")
    meta = PPOVTrace(6, 4, settings).meta(version=3)
    assert (meta.version, meta.obs_dim, meta.n_actions) == (3, 6, 4)
    assert meta.layer_sizes == (10,) and meta.activation == "relu"
    assert meta.hyperparameters["learning_rate"] == 3e-4
    assert meta.hyperparameters["hidden_sizes"] == [10]


# --------------------------------------------------------------------------- sample reuse


def test_replayed_episodes_train_but_are_counted_apart_and_not_in_the_statistics_again():
    rng = np.random.default_rng(3)
    new = random_episodes(rng, n_episodes=2, steps=5, loc=5.0)
    replayed = random_episodes(rng, n_episodes=3, steps=4, loc=-5.0)
    trainer = PPOVTrace(4, 3, PPOSettings(seed=0))
    before = trainer.net.export()
    metrics = trainer.train(new, replay=replayed)
    assert (metrics.n_samples, metrics.n_replayed_samples, metrics.n_episodes) == (10, 12, 2)
    # The replayed states were counted when they were new: only the 10 new ones count now.
    assert trainer.obs_rms.count == 10
    np.testing.assert_allclose(
        trainer.obs_rms.mean, np.concatenate([ep.states for ep in new]).mean(axis=0), rtol=1e-6
    )
    assert any(not np.array_equal(before[k], v) for k, v in trainer.net.export().items())


def test_a_batch_of_one_step_trains_without_a_nan(recwarn):
    """A one-step game alone in a batch (a game cut short at its first step when a run
    stops) made the advantage's std NaN: torch warned and the batch was not finite."""
    trainer = PPOVTrace(3, 2, PPOSettings(seed=0))
    before = [p.detach().clone() for p in trainer.net.parameters()]
    state = np.array([0.3, -1.0, 2.0], dtype=np.float32)

    metrics = trainer.train([build_episode(state[None], [0], [1.0], logp=[LOG_HALF])])

    assert metrics.n_samples == 1
    assert all(math.isfinite(v) for v in (metrics.loss, metrics.value_loss, metrics.entropy))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.net.parameters(), strict=True))
    assert [str(w.message) for w in recwarn] == []
