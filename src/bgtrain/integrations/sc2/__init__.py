"""StarCraft II bots on burnysc2 that learn between games (install the ``[sc2]`` extra).

    from bgtrain.integrations.sc2 import LearningBot, Strategy

    class MyZerg(LearningBot):
        async def play(self, strategy: Strategy) -> None:
            ...  # turn the chosen strategy into your own play

The bot records one decision every ``decision_interval`` game seconds (the state of
:func:`sc2_state`, the strategy the newest model chose, the shaped reward since the last
decision); ``bgtrain learn`` (or ``bgtrain run --game sc2``) trains on those games. One bot
object may play many games; a subclass that overrides ``on_start`` must call
``await super().on_start()`` (else :class:`GameNotStartedError` at the next game).
"""

from __future__ import annotations

try:
    import sc2  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError(
        "bgtrain's StarCraft II integration needs burnysc2: "
        'python -m pip install -e ".[sc2]"  (or: pip install burnysc2)'
    ) from exc

from bgtrain.integrations.sc2.bot import GameNotStartedError, LearningBot, RewardSettings, Strategy
from bgtrain.integrations.sc2.state import STATE_FIELDS, sc2_state

__all__ = [
    "STATE_FIELDS",
    "GameNotStartedError",
    "LearningBot",
    "RewardSettings",
    "Strategy",
    "sc2_state",
]
