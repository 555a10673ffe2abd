"""Pretraining from demonstrations (``bgtrain sc2 pretrain``): a first model before any game.

Demonstration episodes (``meta["source"] == "demonstration"``: replays of people or other
bots, see DESIGN.md) are not trained on by the PPO learner: their actions are labels, not
a behaviour policy's choices. Here they train a new network of the learner's own
algorithm (``ppo-vtrace``, the learner's settings: layers, activation, seed):

* behaviour cloning: cross-entropy between the policy's logits and the labels;
* value pretraining: the value head regresses on each step's discounted return (the
  episode's rewards, its end reward included, discounted by the learner's ``gamma``; a
  cut-short episode is not bootstrapped: its return ends with it);
* the observation normalisation statistics are those of the training states.

Whole episodes are held out (every ``1 / holdout``-th by name, at least one when there
are two or more), so the held-out accuracy is measured on games the network never saw.
The model is published as the root's next version (under the learner lock) with
``meta.pretrained`` saying from how many demonstrations and how well it matches them;
the bot plays it at its next game and the learner continues it with the bot's own games.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from bgtrain.errors import BgtrainError, InvalidEpisodeError
from bgtrain.game.policy import Policy
from bgtrain.learn import algorithms
from bgtrain.learn.settings import LearnerSettings
from bgtrain.store.episode import Episode, load_episode
from bgtrain.store.lock import LearnerLock
from bgtrain.store.models import LoadedModel, ModelMeta, ModelStore

logger = logging.getLogger(__name__)


class NoDemonstrationsError(BgtrainError):
    """There is nothing to pretrain on."""


@dataclass(frozen=True)
class PretrainSettings:
    """How long and how hard to pretrain (the network itself is the learner's)."""

    #: Passes over the training states.
    epochs: int = 300
    learning_rate: float = 1e-3
    minibatch_size: int = 64
    #: The share of whole episodes held out to measure the accuracy on unseen games.
    holdout: float = 0.25
    #: Weight of the value regression beside the cross-entropy.
    value_coef: float = 0.5


class PretrainReport(NamedTuple):
    """What pretraining gave: the figures and the published model's meta."""

    episodes: int
    samples: int
    holdout_episodes: int
    holdout_samples: int
    train_accuracy: float
    holdout_accuracy: float | None
    #: The share of the most frequent label over all samples: what always guessing it gets.
    chance: float
    value_loss: float
    seconds: float
    published: ModelMeta


def load_demonstrations(folder: Path) -> list[tuple[Path, Episode]]:
    """The demonstration episodes of ``folder`` (sorted by name); other files are skipped
    with a warning, never moved: the folder is the user's."""
    found = []
    for path in sorted(Path(folder).glob("*.npz")):
        try:
            episode = load_episode(path)
        except InvalidEpisodeError as exc:
            logger.warning("%s skipped: %s", path.name, exc.reason)
            continue
        if not episode.is_demonstration:
            logger.warning("%s skipped: not a demonstration (a game of a policy)", path.name)
            continue
        found.append((path, episode))
    return found


def discounted_returns(episode: Episode, gamma: float) -> np.ndarray:
    """Each step's return: its reward plus ``gamma`` times the next step's return."""
    returns = np.zeros(episode.length, dtype=np.float64)
    following = 0.0
    for t in range(episode.length - 1, -1, -1):
        following = float(episode.rewards[t]) + gamma * following
        returns[t] = following
    return returns.astype(np.float32)


def split_holdout(
    episodes: Sequence[Episode], holdout: float
) -> tuple[list[Episode], list[Episode]]:
    """(train, held out): every ``round(1 / holdout)``-th episode is held out, starting
    with the second, at least one when there are two or more; none for ``holdout`` 0."""
    if holdout <= 0 or len(episodes) < 2:
        return list(episodes), []
    every = max(2, round(1 / holdout))
    held = [ep for i, ep in enumerate(episodes) if i % every == 1]
    kept = [ep for i, ep in enumerate(episodes) if i % every != 1]
    return kept, held


def _shapes(episodes: Sequence[Episode]) -> tuple[int, int]:
    """``obs_dim`` and ``n_actions`` of the demonstrations (``meta.n_actions`` when they
    say it, else the largest label + 1); :class:`BgtrainError` when they disagree."""
    dims = {ep.obs_dim for ep in episodes}
    if len(dims) > 1:
        raise BgtrainError(f"the demonstrations have different state sizes: {sorted(dims)}")
    said = [ep.meta.get("n_actions") for ep in episodes]
    largest = max(int(ep.actions.max()) for ep in episodes) + 1
    n_actions = max([largest, *(n for n in said if isinstance(n, int))])
    return dims.pop(), n_actions


def _accuracy(policy: Policy, episodes: Sequence[Episode]) -> float | None:
    """The share of states whose greedy choice is the label (the game's numpy policy)."""
    if not episodes:
        return None
    states = np.concatenate([ep.states for ep in episodes])
    labels = np.concatenate([ep.actions for ep in episodes])
    return float((policy.logits(states).argmax(axis=1) == labels).mean())


def _chance(episodes: Sequence[Episode]) -> float:
    labels = np.concatenate([ep.actions for ep in episodes])
    return float(np.bincount(labels).max() / labels.size)


def _fit(
    algorithm: Any, episodes: Sequence[Episode], settings: PretrainSettings, gamma: float
) -> float:
    """Cross-entropy on the labels plus the value regression; the last epoch's value loss."""
    states = np.concatenate([ep.states for ep in episodes]).astype(np.float64)
    algorithm.obs_rms.update(states)
    obs = algorithm.normalize(states)
    labels = torch.from_numpy(np.concatenate([ep.actions for ep in episodes]))
    returns = torch.from_numpy(np.concatenate([discounted_returns(ep, gamma) for ep in episodes]))
    net = algorithm.net
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(0)
    value_loss = float("nan")
    for _ in range(settings.epochs):
        order = torch.randperm(obs.shape[0], generator=generator)
        for start in range(0, obs.shape[0], settings.minibatch_size):
            idx = order[start : start + settings.minibatch_size]
            logits, values = net(obs[idx])
            policy_loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            v_loss = (values - returns[idx]).pow(2).mean()
            optimizer.zero_grad()
            (policy_loss + settings.value_coef * v_loss).backward()
            optimizer.step()
            value_loss = float(v_loss.item())
    return value_loss


def pretrain(
    root: str | Path,
    demonstrations: Path,
    settings: PretrainSettings = PretrainSettings(),
    learner: LearnerSettings | None = None,
) -> PretrainReport:
    """Pretrain a new model on the demonstrations of ``demonstrations`` and publish it as
    ``root``'s next version; :class:`NoDemonstrationsError` if the folder has none."""
    started = time.perf_counter()
    found = load_demonstrations(demonstrations)
    if not found:
        raise NoDemonstrationsError(
            f"no demonstration episodes in {demonstrations}: convert replays first "
            "(bgtrain sc2 replays PATH... --root ROOT)"
        )
    episodes = [ep for _, ep in found]
    learner = learner or LearnerSettings()
    obs_dim, n_actions = _shapes(episodes)
    train, held = split_holdout(episodes, settings.holdout)
    algorithm = algorithms.create(None, obs_dim, n_actions, learner)
    value_loss = _fit(algorithm, train, settings, learner.ppo.gamma)
    arrays = algorithm.export()
    policy = Policy(arrays, algorithm.meta())
    report = {
        "demonstrations": len(episodes),
        "samples": int(sum(ep.length for ep in episodes)),
        "holdout_episodes": len(held),
        "train_accuracy": _accuracy(policy, train),
        "holdout_accuracy": _accuracy(policy, held),
        "chance": _chance(episodes),
        "value_loss": value_loss,
        "epochs": settings.epochs,
        "from": str(demonstrations),
    }
    meta = algorithm.meta(extra={"pretrained": report})
    with LearnerLock(root, role="pretrain"):
        published = ModelStore(root, learner.history_size).publish(arrays, meta)
    logger.info("pretrained model v%d published: %s", published.version, report)
    return PretrainReport(
        len(episodes),
        report["samples"],
        len(held),
        int(sum(ep.length for ep in held)),
        float(report["train_accuracy"] or 0.0),
        report["holdout_accuracy"],
        report["chance"],
        value_loss,
        time.perf_counter() - started,
        published,
    )


def is_pretrained(model: LoadedModel) -> bool:
    """Whether ``model`` was published by :func:`pretrain`."""
    return "pretrained" in model.meta.extra
