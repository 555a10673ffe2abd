"""The model's array names in one module: what the torch trainer writes is what the
numpy policy reads, and both refuse arrays that do not fit with the same messages."""

from __future__ import annotations

import numpy as np
import pytest

from bgtrain.errors import InvalidModelError
from bgtrain.game.policy import NUMPY_ACTIVATIONS, Policy
from bgtrain.learn import algorithms
from bgtrain.learn.algorithms.ppo.network import TORCH_ACTIVATIONS, ActorCritic
from bgtrain.learn.settings import PPOSettings
from bgtrain.store import model_layout as layout
from bgtrain.store.models import ModelMeta

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def trainer(hidden: tuple[int, ...] = (5, 4), obs_dim: int = 3, n_actions: int = 2):
    return algorithms.create(None, obs_dim, n_actions, PPOSettings(seed=1, hidden_sizes=hidden))


def test_the_names_of_a_models_arrays():
    assert layout.weight_name(layout.POLICY, 2) == "pi.w2"
    assert layout.bias_name(layout.VALUE, 0) == "vf.b0"
    arrays = trainer().export()
    assert sorted(arrays) == sorted(
        [layout.OBS_MEAN, layout.OBS_VAR, layout.OBS_COUNT]
        + [f"{net}.{kind}{i}" for net in ("pi", "vf") for kind in "wb" for i in range(3)]
    )
    assert layout.layer_count(arrays, "pi") == layout.layer_count(arrays, "vf") == 3
    assert layout.hidden_sizes(arrays) == (5, 4)
    assert [w.shape for w, _ in layout.layers(arrays, "pi")] == [(3, 5), (5, 4), (4, 2)]
    assert all(w.dtype == np.float32 for w, _ in layout.layers(arrays, "vf"))


def test_what_the_torch_side_writes_the_numpy_policy_reads():
    made = trainer()
    arrays = made.export()
    policy = Policy(arrays, made.meta(version=1))
    assert policy.probs(np.zeros(3, np.float32)).shape == (2,)
    again = algorithms.create(None, 3, 2, PPOSettings(seed=2, hidden_sizes=(5, 4)))
    again.load_weights(arrays)
    for name, values in again.export().items():
        np.testing.assert_array_equal(values, arrays[name], err_msg=name)


def test_a_layer_without_its_biases_is_an_invalid_model_not_a_key_error():
    arrays = trainer().export()
    del arrays["pi.b1"]
    with pytest.raises(InvalidModelError) as exc:
        Policy(arrays, ModelMeta(version=1, obs_dim=3, n_actions=2))
    assert str(exc.value) == "model has 'pi.w1' but no 'pi.b1'"


def test_the_torch_side_refuses_weights_of_another_shape_with_the_layouts_message():
    arrays = trainer(hidden=(6,)).export()
    with pytest.raises(InvalidModelError) as exc:
        trainer(hidden=(5, 4)).load_weights(arrays)
    assert str(exc.value) == "'pi' network has hidden layers [6]; expected [5, 4]"
    wider = trainer(obs_dim=4).export()
    with pytest.raises(InvalidModelError) as exc:
        trainer().load_weights(wider)
    assert str(exc.value) == "'pi.w0' has shape (4, 5); expected (3, N)"


def test_missing_normalisation_statistics_are_named():
    arrays = trainer().export()
    del arrays[layout.OBS_VAR]
    with pytest.raises(InvalidModelError) as exc:
        layout.obs_statistics(arrays)
    assert str(exc.value) == "model has no 'obs_var' array"
    del arrays[layout.OBS_COUNT]
    arrays[layout.OBS_VAR] = np.ones(3, np.float32)
    mean, var, count = layout.obs_statistics(arrays)
    assert (mean.dtype, var.dtype, count) == (np.float64, np.float64, 0.0)


def test_both_sides_know_the_layouts_activations_and_no_other():
    assert tuple(NUMPY_ACTIVATIONS) == tuple(TORCH_ACTIVATIONS) == layout.ACTIVATIONS
    with pytest.raises(ValueError, match=r"^activation must be tanh or relu, got 'gelu'$"):
        ActorCritic(3, 2, (4,), "gelu")


def test_both_sides_normalise_states_with_the_layouts_one_function():
    made = trainer()
    rng = np.random.default_rng(3)
    states = rng.normal([5.0, -2.0, 100.0], [1.0, 0.01, 30.0], size=(8, 3))
    made.obs_rms.update(states)  # non-trivial statistics, as training would leave them
    states[0, 1] = 1e6  # far outside: clipped
    policy = Policy(made.export(), made.meta(version=1))
    on_torch_side = made.normalize(states).numpy()
    np.testing.assert_array_equal(policy.normalize(states), on_torch_side)
    assert on_torch_side.dtype == np.float32 and on_torch_side[0, 1] == layout.OBS_CLIP
    mean, var = made.obs_rms.mean, made.obs_rms.var
    want = np.clip((states - mean) / np.sqrt(var + layout.OBS_EPS), -10, 10)
    # float32 arithmetic: a state near its mean, over a std of 0.01, is good to ~2e-5.
    np.testing.assert_allclose(on_torch_side, want, rtol=1e-5, atol=1e-4)
