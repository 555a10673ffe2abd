"""Learning algorithms, by the name a model file records (``ModelMeta.algorithm``).

The learner, :class:`~bgtrain.compat.agent.RLAgent` and the benchmarks make an algorithm
here, never by naming an implementation class (only the tests of an implementation, and
of the learner's fault handling, name :class:`~bgtrain.learn.algorithms.ppo.PPOVTrace`):

* :func:`create` — a new model, of the named algorithm (default: :data:`DEFAULT_ALGORITHM`);
* :func:`continue_from` — a published model, by the algorithm its meta names (an empty
  name is a model from before names were read: today's ``ppo-vtrace``).

Both take the algorithm's settings, or a ``LearnerSettings`` that holds them: from that
one the algorithm also gets the learner's ``max_piece_steps`` (see
:class:`~bgtrain.learn.algorithms.base.AlgorithmFactory`); from anything else, the default
:data:`~bgtrain.learn.settings.MAX_PIECE_STEPS`.

An unknown name is refused with :class:`~bgtrain.errors.UnknownAlgorithmError`. This
module is torch-free: an implementation is imported when it is first made.

Adding an algorithm: a class following :class:`~bgtrain.learn.algorithms.base.Algorithm`
(made as :class:`~bgtrain.learn.algorithms.base.AlgorithmFactory` says), its settings
dataclass in :mod:`bgtrain.learn.settings` held by ``LearnerSettings``, and an
:class:`AlgorithmSpec` in :data:`ALGORITHMS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bgtrain.common.imports import imported
from bgtrain.errors import UnknownAlgorithmError
from bgtrain.learn.algorithms.base import Algorithm, AlgorithmFactory, TrainMetrics
from bgtrain.learn.settings import MAX_PIECE_STEPS, LearnerSettings, PPOSettings
from bgtrain.store.model_layout import DEFAULT_ALGORITHM, PPO_VTRACE
from bgtrain.store.models import LoadedModel

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "Algorithm",
    "AlgorithmSpec",
    "TrainMetrics",
    "continue_from",
    "create",
    "known_algorithms",
    "resolve",
]


@dataclass(frozen=True)
class AlgorithmSpec:
    """One algorithm of the registry."""

    #: The name model files record in ``meta.algorithm``.
    name: str
    #: ``module:Class`` of the implementation (imported on first use: it imports torch).
    implementation: str
    #: Its settings dataclass (torch-free), and the field of ``LearnerSettings`` that holds it.
    settings_type: type
    settings_field: str

    def factory(self) -> AlgorithmFactory:
        return imported(self.implementation)

    def settings_from(self, settings: Any) -> Any:
        """Its settings: ``settings`` itself, the ones a ``LearnerSettings`` holds for it,
        or (``None``) the defaults. :class:`TypeError` for anything else."""
        if settings is None:
            return self.settings_type()
        if isinstance(settings, self.settings_type):
            return settings
        held = getattr(settings, self.settings_field, None)
        if isinstance(held, self.settings_type):
            return held
        raise TypeError(
            f"algorithm {self.name!r} takes {self.settings_type.__name__} (or settings "
            f"that hold it as {self.settings_field!r}), got {type(settings).__name__}"
        )


# DEFAULT_ALGORITHM (from the model layout): what a new model is, and what a model whose
# meta names no algorithm was trained by: PPO with V-trace.

ALGORITHMS: dict[str, AlgorithmSpec] = {
    spec.name: spec
    for spec in (
        AlgorithmSpec(
            name=PPO_VTRACE,
            implementation="bgtrain.learn.algorithms.ppo:PPOVTrace",
            settings_type=PPOSettings,
            settings_field="ppo",
        ),
    )
}


def known_algorithms() -> tuple[str, ...]:
    """The names this bgtrain knows, sorted."""
    return tuple(sorted(ALGORITHMS))


def resolve(name: str | None) -> AlgorithmSpec:
    """The algorithm called ``name`` (``None`` or ``""``: :data:`DEFAULT_ALGORITHM`).
    Raises :class:`~bgtrain.errors.UnknownAlgorithmError` for a name it does not know."""
    spec = ALGORITHMS.get(name or DEFAULT_ALGORITHM)
    if spec is None:
        known = known_algorithms()
        raise UnknownAlgorithmError(
            f"unknown algorithm {name!r}: this bgtrain knows {', '.join(known)}; "
            "name one of them (or none, for the default)",
            str(name),
            known,
        )
    return spec


def _max_piece_steps(settings: Any) -> int:
    """The learner's piece length when ``settings`` are a learner's, else the default."""
    if isinstance(settings, LearnerSettings):
        return settings.max_piece_steps
    return MAX_PIECE_STEPS


def create(name: str | None, obs_dim: int, n_actions: int, settings: Any = None) -> Algorithm:
    """A new model of algorithm ``name`` (``None``: the default) for states of ``obs_dim``
    numbers and ``n_actions`` actions. ``settings``: the algorithm's settings, or a
    ``LearnerSettings`` holding them (and ``max_piece_steps``), or ``None`` (its
    defaults). :class:`TypeError` for settings of another algorithm."""
    spec = resolve(name)
    return spec.factory()(
        obs_dim, n_actions, spec.settings_from(settings), _max_piece_steps(settings)
    )


def continue_from(model: LoadedModel, settings: Any = None) -> Algorithm:
    """``model``'s algorithm, continuing it (settings as :func:`create` takes them; the
    model's own shape wins over them). A model of an algorithm this bgtrain does not know
    is refused with :class:`~bgtrain.errors.UnknownAlgorithmError` saying what to do."""
    name = model.meta.algorithm
    try:
        spec = resolve(name)
    except UnknownAlgorithmError as exc:
        raise UnknownAlgorithmError(
            f"model v{model.version} in {model.path} was trained by algorithm {name!r}, which "
            f"this bgtrain does not know (it knows {', '.join(exc.known)}): continue it with a "
            "bgtrain that does, or roll back to a version it knows (bgtrain rollback VERSION)",
            exc.algorithm,
            exc.known,
        ) from None
    return spec.factory().from_model(
        model, spec.settings_from(settings), _max_piece_steps(settings)
    )
