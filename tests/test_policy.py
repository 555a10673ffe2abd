"""The numpy policy games play with: sampling, greedy choice, refusing broken models, and
no torch in a game process."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bgtrain.errors import InvalidModelError
from bgtrain.game.policy import Policy, UniformPolicy
from bgtrain.store.models import ModelMeta, ModelStore

OBS, HIDDEN, N_ACTIONS = 3, 6, 4


def model_arrays(seed: int = 0, obs_dim: int = OBS, n_actions: int = N_ACTIONS):
    """A small actor-critic in format-1 arrays, with non-trivial normalisation statistics."""
    rng = np.random.default_rng(seed)

    def layer(a: int, b: int, scale: float = 1.0):
        return (
            rng.normal(0, scale, size=(a, b)).astype(np.float32),
            rng.normal(0, 0.1, size=b).astype(np.float32),
        )

    arrays = {
        "obs_mean": rng.normal(size=obs_dim).astype(np.float32),
        "obs_var": rng.uniform(0.5, 3.0, size=obs_dim).astype(np.float32),
    }
    for prefix, out in (("pi", n_actions), ("vf", 1)):
        for i, (a, b) in enumerate(((obs_dim, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, out))):
            arrays[f"{prefix}.w{i}"], arrays[f"{prefix}.b{i}"] = layer(a, b)
    return arrays


def meta(obs_dim: int = OBS, n_actions: int = N_ACTIONS, **kw) -> ModelMeta:
    return ModelMeta(version=kw.pop("version", 1), obs_dim=obs_dim, n_actions=n_actions, **kw)


@pytest.fixture
def policy() -> Policy:
    p = Policy(model_arrays(), meta(activation="tanh"))
    p.seed(1234)
    return p


def reference_probs(arrays, states, activation=np.tanh):
    x = (states - arrays["obs_mean"]) / np.sqrt(arrays["obs_var"].astype(np.float64) + 1e-8)
    x = np.clip(x, -10, 10)
    for i in range(2):
        x = activation(x @ arrays[f"pi.w{i}"] + arrays[f"pi.b{i}"])
    logits = x @ arrays["pi.w2"] + arrays["pi.b2"]
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- forward pass


@pytest.mark.parametrize(("activation", "fn"), [("tanh", np.tanh), ("relu", None)])
def test_probs_are_the_softmax_of_the_mlp(activation, fn):
    arrays = model_arrays(seed=2)
    p = Policy(arrays, meta(activation=activation))
    states = np.random.default_rng(3).normal(0, 2, size=(30, OBS)).astype(np.float32)
    want = reference_probs(arrays, states, fn or (lambda x: np.maximum(x, 0)))
    np.testing.assert_allclose(p.probs(states), want, atol=1e-6)
    np.testing.assert_allclose(p.probs(states).sum(axis=-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(p.probs(states[4]), want[4], atol=1e-6)
    assert p.value(states).shape == (30,)
    assert p.value(states[0]).shape == ()


# --------------------------------------------------------------------------- acting


def test_act_returns_the_log_probability_of_its_action(policy):
    states = np.random.default_rng(4).normal(size=(50, OBS)).astype(np.float32)
    for state in states:
        action, logp = policy.act(state)
        assert isinstance(action, int) and 0 <= action < N_ACTIONS
        assert isinstance(logp, float)
        assert logp == pytest.approx(math.log(policy.probs(state)[action]), abs=1e-9)


def test_act_greedy_takes_the_most_likely_action(policy):
    states = np.random.default_rng(5).normal(0, 3, size=(50, OBS)).astype(np.float32)
    greedy = [policy.act_greedy(s) for s in states]
    assert greedy == list(np.argmax(policy.probs(states), axis=-1))
    assert len(set(greedy)) > 1  # the states really disagree: not a constant answer


def test_act_samples_with_the_policy_probabilities(policy):
    state = np.array([0.2, -0.4, 0.9], dtype=np.float32)
    probs = policy.probs(state)
    assert probs.min() > 0.02  # every action has a fair chance of being checked
    n = 5000
    counts = np.bincount([policy.act(state)[0] for _ in range(n)], minlength=N_ACTIONS)
    sigma = np.sqrt(n * probs * (1 - probs))
    assert np.all(np.abs(counts - n * probs) <= 3 * sigma), (counts, n * probs)


def test_seed_makes_sampling_repeatable(policy):
    state = np.zeros(OBS, dtype=np.float32)
    policy.seed(7)
    first = [policy.act(state) for _ in range(30)]
    policy.seed(7)
    assert [policy.act(state) for _ in range(30)] == first


@pytest.mark.parametrize("bad", [np.nan, -np.nan])
def test_a_nan_state_is_refused_not_answered_with_the_last_action(policy, bad):
    state = np.array([0.2, bad, 0.9], dtype=np.float32)
    # Before: NaN probabilities made act() return the last action and act_greedy the first.
    with pytest.raises(ValueError, match=r"^state\[1\] is nan: no action can be chosen for it$"):
        policy.act(state)
    with pytest.raises(ValueError, match=r"^state\[1\] is nan: no action can be chosen for it$"):
        policy.act_greedy(state)


def test_a_state_of_another_size_is_refused_not_broadcast(policy):
    with pytest.raises(ValueError, match=r"^state has shape \(1,\); model v1 takes \(3,\)$"):
        policy.act(np.array([0.5], dtype=np.float32))  # numpy would broadcast it
    with pytest.raises(ValueError, match=r"^state has shape \(4,\); model v1 takes \(3,\)$"):
        policy.act_greedy(np.zeros(4, dtype=np.float32))


def test_a_model_with_nan_weights_says_so_instead_of_choosing(policy):
    arrays = model_arrays()
    arrays["pi.b2"][:] = np.nan
    broken = Policy(arrays, meta(version=7))
    with pytest.raises(ValueError, match=r"^model v7 gives non-finite action probabilities"):
        broken.act(np.zeros(OBS, dtype=np.float32))


def test_an_infinite_state_is_clipped_like_any_large_one(policy):
    state = np.array([np.inf, 0.0, -np.inf], dtype=np.float32)
    big = np.array([1e30, 0.0, -1e30], dtype=np.float32)
    assert policy.act_greedy(state) == policy.act_greedy(big)


def test_uniform_policy_before_the_first_model():
    uniform = UniformPolicy(5, seed=0)
    state = np.zeros(3, dtype=np.float32)
    actions = set()
    for _ in range(200):
        action, logp = uniform.act(state)
        assert logp == pytest.approx(-math.log(5), abs=1e-12)
        actions.add(action)
    assert actions == set(range(5))
    assert 0 <= uniform.act_greedy(state) < 5
    np.testing.assert_allclose(uniform.probs(np.zeros((2, 3))), np.full((2, 5), 0.2))
    assert uniform.version is None


# --------------------------------------------------------------------------- refusing models


@pytest.mark.parametrize("key", ["obs_mean", "obs_var"])
def test_model_without_normalisation_statistics_is_refused(key):
    arrays = model_arrays()
    del arrays[key]
    with pytest.raises(InvalidModelError) as exc:
        Policy(arrays, meta())
    assert str(exc.value) == f"model has no {key!r} array"


def test_model_without_layers_is_refused():
    arrays = {k: v for k, v in model_arrays().items() if not k.startswith("vf.")}
    with pytest.raises(InvalidModelError) as exc:
        Policy(arrays, meta())
    assert str(exc.value) == "model has no 'pi.w0'/'vf.w0' layers: not an actor-critic"


def test_model_whose_layers_disagree_with_its_meta_is_refused():
    arrays = model_arrays(obs_dim=OBS, n_actions=N_ACTIONS)
    with pytest.raises(InvalidModelError) as exc:
        Policy(arrays, meta(obs_dim=5))
    assert str(exc.value) == "policy layers are 3 -> 4, meta says obs_dim 5, n_actions 4"
    with pytest.raises(InvalidModelError) as exc:
        Policy(arrays, meta(n_actions=2))
    assert str(exc.value) == "policy layers are 3 -> 4, meta says obs_dim 3, n_actions 2"


def test_unknown_activation_is_refused():
    with pytest.raises(InvalidModelError) as exc:
        Policy(model_arrays(), meta(activation="gelu"))
    assert str(exc.value) == "unknown activation 'gelu'"


def test_a_model_of_another_algorithm_is_refused_not_read_as_this_mlp():
    """Before, the policy ignored meta.algorithm: a future algorithm's model whose arrays
    happened to fit was played as a PPO MLP, in silence."""
    with pytest.raises(InvalidModelError) as exc:
        Policy(model_arrays(), meta(version=7, algorithm="sac"))
    assert str(exc.value) == (
        "model v7 was trained by algorithm 'sac', which the numpy policy cannot play (it "
        "plays ppo-vtrace): play it with a bgtrain that knows it, or roll back to a version "
        "it knows (bgtrain rollback VERSION)"
    )


@pytest.mark.parametrize("algorithm", ["", "ppo-vtrace"])
def test_a_model_of_ppo_vtrace_or_of_no_named_algorithm_is_played(algorithm):
    """Older files name no algorithm: they are ppo-vtrace models."""
    arrays = model_arrays(seed=4)
    state = np.random.default_rng(4).normal(size=OBS).astype(np.float32)
    p = Policy(arrays, meta(algorithm=algorithm))
    np.testing.assert_allclose(p.probs(state), reference_probs(arrays, state), atol=1e-6)


def _corrupt(kind: str) -> dict[str, np.ndarray]:
    arrays = model_arrays()
    if kind == "pi inner layer":
        arrays["pi.w1"] = np.zeros((HIDDEN + 2, HIDDEN), np.float32)
    elif kind == "vf input":
        arrays["vf.w0"] = np.zeros((OBS + 1, HIDDEN), np.float32)
    elif kind == "vf output":
        arrays["vf.w2"] = np.zeros((HIDDEN, 3), np.float32)
        arrays["vf.b2"] = np.zeros(3, np.float32)
    elif kind == "bias length":
        arrays["pi.b0"] = np.zeros(HIDDEN + 1, np.float32)
    return arrays


@pytest.mark.parametrize("kind", ["pi inner layer", "vf input", "vf output", "bias length"])
def test_model_with_inconsistent_layer_shapes_is_refused_on_load(kind):
    with pytest.raises(InvalidModelError):
        Policy(_corrupt(kind), meta())


# --------------------------------------------------------------------------- no torch


def test_a_game_process_loads_and_plays_without_importing_torch(tmp_path):
    ModelStore(tmp_path).publish(model_arrays(), meta())
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import bgtrain.game.policy
        from bgtrain.game.policy import Policy
        policy = Policy.load({str(tmp_path)!r})
        action, logp = policy.act(np.zeros({OBS}, dtype=np.float32))
        print(policy.version, 'torch' in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["1", "False"]
