"""Per-game learner settings shipped with bgtrain, one TOML file per game.

rl-baselines3-zoo keeps one tuned entry per game; bgtrain does the same for the games it
knows: ``bgtrain run --env ID`` starts from ``presets/ID.toml`` (its ``[learner]`` table),
then ``--config FILE`` and flags override it. A game without a preset uses the
settings' own defaults. How each preset was chosen is written in the file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from bgtrain.common.settings import read_toml

#: The file name of a game's preset: Gymnasium ids have no characters a file name refuses.
SUFFIX = ".toml"


def preset_path(env: str) -> Path | None:
    """The preset file of ``env`` (a Gymnasium id), or ``None`` if bgtrain has none."""
    if not env or any(c in env for c in ":/\\"):  # module:factory games have no preset
        return None
    candidate = resources.files(__package__) / f"{env}{SUFFIX}"
    return Path(str(candidate)) if candidate.is_file() else None


def preset_settings(env: str) -> dict[str, Any]:
    """The learner settings of ``env``'s preset (empty when it has none)."""
    path = preset_path(env)
    return read_toml(path, "learner") if path is not None else {}


def known_presets() -> list[str]:
    """The games that have a preset."""
    return sorted(
        p.name[: -len(SUFFIX)]
        for p in resources.files(__package__).iterdir()
        if p.name.endswith(SUFFIX)
    )
