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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bgtrain.integrations.sc2.bot import (
        GameNotStartedError,
        LearningBot,
        RewardSettings,
        Strategy,
    )
    from bgtrain.integrations.sc2.state import STATE_FIELDS, sc2_state

__all__ = [
    "STATE_FIELDS",
    "GameNotStartedError",
    "LearningBot",
    "RewardSettings",
    "Strategy",
    "sc2_state",
]

#: The module of each name above, imported on first use: the package itself must import
#: without burnysc2, for its ``settings`` (the CLI builds ``--game sc2``'s flags always).
_HOMES = {
    "GameNotStartedError": "bot",
    "LearningBot": "bot",
    "RewardSettings": "bot",
    "Strategy": "bot",
    "STATE_FIELDS": "state",
    "sc2_state": "state",
}


def require_burnysc2() -> None:
    """Raise an :class:`ImportError` saying how to install burnysc2 when it is missing."""
    try:
        import sc2  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "bgtrain's StarCraft II integration needs burnysc2: "
            'python -m pip install -e ".[sc2]"  (or: pip install burnysc2)'
        ) from exc


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    require_burnysc2()
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
