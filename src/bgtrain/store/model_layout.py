"""The arrays of a model file (format 1, DESIGN.md): their names, in one place.

A model of the algorithms in :data:`ALGORITHMS` (its meta's ``algorithm``; an empty name
is :data:`DEFAULT_ALGORITHM`, as the first files have it) is an MLP actor-critic, two
separate networks, with the observation normalisation it was trained with:

    obs_mean, obs_var          float32 [obs_dim]: inputs are (x - mean) / sqrt(var + OBS_EPS),
                               clipped to +-OBS_CLIP
    obs_count                  float64 scalar: states the statistics were taken from
    pi.w{i}, pi.b{i}           policy layers, weights float32 [in, out] and biases [out];
                               the last gives one logit per action
    vf.w{i}, vf.b{i}           value layers; the last gives one value

The torch algorithm writes and reads these names and normalises its inputs with
:class:`ObsNormalization`, the numpy policy reads them and normalises alike: both ask
this module, which imports neither torch nor anything of the learner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from bgtrain.errors import InvalidModelError

#: Normalisation statistics (their meaning is in the module's docstring).
OBS_MEAN = "obs_mean"
OBS_VAR = "obs_var"
OBS_COUNT = "obs_count"
#: Added to the variance before its square root: a constant input does not divide by 0.
OBS_EPS = 1e-8
#: Normalised inputs are clipped to +-this: one wild observation cannot swamp a layer.
OBS_CLIP = 10.0

#: The two networks, by prefix.
POLICY = "pi"
VALUE = "vf"

#: PPO with V-trace: the algorithm of every model bgtrain has written so far.
PPO_VTRACE = "ppo-vtrace"
#: The algorithms (``ModelMeta.algorithm``) whose models have this layout: the only ones
#: the numpy policy can play.
ALGORITHMS = (PPO_VTRACE,)
#: What a model whose meta names no algorithm was trained by (older files name none).
DEFAULT_ALGORITHM = PPO_VTRACE

#: Hidden activations the networks (torch and numpy alike) know: each side maps these
#: names, and no others, to its functions.
TANH = "tanh"
RELU = "relu"
ACTIVATIONS = (TANH, RELU)
#: What a model whose meta names no activation uses (the first models did not name it).
DEFAULT_ACTIVATION = TANH

Layer = tuple[np.ndarray, np.ndarray]


def weight_name(network: str, i: int) -> str:
    """``pi.w0``: the weights ``[in, out]`` of layer ``i`` (from 0) of ``network``."""
    return f"{network}.w{i}"


def bias_name(network: str, i: int) -> str:
    """``pi.b0``: the biases ``[out]`` of layer ``i`` of ``network``."""
    return f"{network}.b{i}"


def layer_count(arrays: Mapping[str, object], network: str) -> int:
    """How many layers ``network`` has: its weights numbered 0, 1, ... without a gap."""
    n = 0
    while weight_name(network, n) in arrays:
        n += 1
    return n


def layers(arrays: Mapping[str, np.ndarray], network: str) -> list[Layer]:
    """The ``(weights, biases)`` of each layer of ``network``, float32 and contiguous (the
    form a numpy forward pass wants). Shapes are not checked here (:func:`check_layers`).
    Raises :class:`InvalidModelError` when a layer has weights but no biases."""
    out = []
    for i in range(layer_count(arrays, network)):
        try:
            bias = arrays[bias_name(network, i)]
        except KeyError:
            raise InvalidModelError(
                f"model has {weight_name(network, i)!r} but no {bias_name(network, i)!r}"
            ) from None
        out.append(
            (
                np.ascontiguousarray(arrays[weight_name(network, i)], dtype=np.float32),
                np.ascontiguousarray(bias, dtype=np.float32),
            )
        )
    return out


def check_layers(
    found: Sequence[Layer],
    network: str,
    n_in: int,
    n_out: int,
    hidden: Sequence[int] | None = None,
) -> None:
    """Each layer takes the previous one's width, the first takes ``n_in`` and the last
    gives ``n_out`` (and, if ``hidden`` is given, the layers between are that wide); else
    :class:`InvalidModelError` naming the array and both shapes."""
    if hidden is not None and [w.shape[-1] for w, _ in found[:-1]] != list(hidden):
        widths = [w.shape[-1] for w, _ in found[:-1]]
        raise InvalidModelError(
            f"{network!r} network has hidden layers {widths}; expected {list(hidden)}"
        )
    width = n_in
    for i, (w, b) in enumerate(found):
        if w.ndim != 2 or w.shape[0] != width:
            raise InvalidModelError(
                f"{weight_name(network, i)!r} has shape {w.shape}; expected ({width}, N)"
            )
        if b.shape != (w.shape[1],):
            raise InvalidModelError(
                f"{bias_name(network, i)!r} has shape {b.shape}; expected ({w.shape[1]},)"
            )
        width = w.shape[1]
    if width != n_out:
        raise InvalidModelError(f"{network!r} network gives {width} outputs; expected {n_out}")


def hidden_sizes(arrays: Mapping[str, np.ndarray]) -> tuple[int, ...]:
    """The policy network's hidden widths, read from its weights (what the model is, whatever
    its meta says): the output width of every layer but the last."""
    n = layer_count(arrays, POLICY)
    return tuple(int(np.shape(arrays[weight_name(POLICY, i)])[1]) for i in range(n - 1))


def obs_statistics(arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
    """The normalisation's mean and variance (float64 ``[obs_dim]``) and the number of
    states they were taken from (0 if the model does not say). Raises
    :class:`InvalidModelError` when the mean or the variance is missing."""
    try:
        mean = np.asarray(arrays[OBS_MEAN], dtype=np.float64)
        var = np.asarray(arrays[OBS_VAR], dtype=np.float64)
    except KeyError as exc:
        raise InvalidModelError(f"model has no {exc.args[0]!r} array") from None
    return mean, var, float(arrays.get(OBS_COUNT, np.array(0.0)))


class ObsNormalization(NamedTuple):
    """How states become network inputs: ``clip((x - mean) / sqrt(var + OBS_EPS),
    -OBS_CLIP, OBS_CLIP)``, in float32, the same on the torch and the numpy side."""

    mean: np.ndarray  # float32 [obs_dim]
    inv_std: np.ndarray  # float32 [obs_dim]: 1 / sqrt(var + OBS_EPS)

    @classmethod
    def of(cls, mean: np.ndarray, var: np.ndarray) -> ObsNormalization:
        """From the statistics (``[obs_dim]``, any float dtype: computed in theirs, then
        stored as float32)."""
        return cls(
            np.asarray(mean).astype(np.float32),
            (1.0 / np.sqrt(var + OBS_EPS)).astype(np.float32),
        )

    def apply(self, states: np.ndarray) -> np.ndarray:
        """``states`` (``[obs_dim]`` or ``[B, obs_dim]``, any number dtype) normalised:
        float32 of the same shape."""
        x = (np.asarray(states, dtype=np.float32) - self.mean) * self.inv_std
        return np.clip(x, -OBS_CLIP, OBS_CLIP)


def network_arrays(network: str, found: Sequence[Layer]) -> dict[str, np.ndarray]:
    """The arrays of ``network``'s layers under their names, in order."""
    arrays = {}
    for i, (w, b) in enumerate(found):
        arrays[weight_name(network, i)] = w
        arrays[bias_name(network, i)] = b
    return arrays
