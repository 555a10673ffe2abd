"""``bgtrain check FILE...``: validate episode files, one line each, exit 1 if any is bad."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bgtrain.cli._common import positive_int
from bgtrain.errors import InvalidEpisodeError
from bgtrain.store.episode import load_episode
from bgtrain.store.safe_npz import MiB, SizeLimits


@dataclass(frozen=True)
class CheckConfig:
    #: Episode files to check.
    files: tuple[Path, ...]
    #: The observation size the files must have (default: any).
    obs_dim: int | None = None
    #: The number of actions: every action must be below it (default: any).
    n_actions: int | None = None
    #: Largest file accepted, on disk and once unpacked (MiB).
    max_file_mb: int = SizeLimits().max_file_bytes // MiB
    max_unpacked_mb: int = SizeLimits().max_unpacked_bytes // MiB


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate episode files", description=__doc__)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="episode files (.npz)")
    p.add_argument(
        "--obs-dim",
        type=positive_int,
        metavar="D",
        help="the observation size every file must have (default: any)",
    )
    p.add_argument(
        "--n-actions",
        type=positive_int,
        metavar="N",
        help="the number of actions: every action must be below it (default: any)",
    )
    p.add_argument(
        "--max-file-mb",
        type=positive_int,
        default=CheckConfig.max_file_mb,
        metavar="MIB",
        help="size limit on disk, MiB",
    )
    p.add_argument(
        "--max-unpacked-mb",
        type=positive_int,
        default=CheckConfig.max_unpacked_mb,
        metavar="MIB",
        help="size limit once unpacked, MiB",
    )
    p.set_defaults(
        run=lambda a: run(
            CheckConfig(tuple(a.files), a.obs_dim, a.n_actions, a.max_file_mb, a.max_unpacked_mb)
        )
    )


def run(config: CheckConfig) -> int:
    limits = SizeLimits(config.max_file_mb * MiB, config.max_unpacked_mb * MiB)
    bad = 0
    for path in config.files:
        try:
            ep = load_episode(path, config.obs_dim, config.n_actions, limits)
        except InvalidEpisodeError as exc:
            bad += 1
            print(f"{path}: {exc.reason}")
            continue
        details = [f"{ep.length} steps", f"obs_dim {ep.obs_dim}", f"return {ep.total_reward:g}"]
        if ep.outcome:
            details.append(ep.outcome)
        if not ep.terminated:
            details.append("cut short")
        print(f"{path}: OK ({', '.join(details)})")
    if len(config.files) > 1:
        print(f"{len(config.files) - bad} OK, {bad} bad")
    return 1 if bad else 0
