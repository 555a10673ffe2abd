"""``bgtrain sc2``: StarCraft II replays as demonstrations, and a first model from them.

bgtrain sc2 replays PATH... turns replays (files or folders) into demonstration
episodes in ROOT/data/demonstrations/ (unreadable replays are copied into
ROOT/data/quarantine/ with their reason; the originals are never moved). bgtrain sc2
pretrain trains a model on them by behaviour cloning and publishes it as the root's next
version: the bot starts from it, and the learner continues it with the bot's own games.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bgtrain.cli._common import add_root_argument, help_style, positive_int
from bgtrain.errors import BgtrainError


@dataclass(frozen=True)
class ReplaysConfig:
    #: The training root (episodes go to its data/demonstrations/).
    root: Path
    #: Replay files, or folders searched for ``*.SC2Replay``.
    paths: tuple[Path, ...]
    #: Whose side to convert: a player's name (any case), or ``all``.
    player: str = "all"


@dataclass(frozen=True)
class PretrainConfig:
    #: The training root (the model is published there).
    root: Path
    #: The demonstration episodes (default: ROOT/data/demonstrations/).
    demonstrations: Path | None = None
    #: Passes over the demonstrations.
    epochs: int = 300
    #: The share of whole episodes held out to measure the accuracy on unseen games.
    holdout: float = 0.25
    #: The network's seed (initialisation and shuffling).
    seed: int | None = 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sc2", help="StarCraft II: replays to demonstrations, pretraining", description=__doc__
    )
    commands = p.add_subparsers(
        dest="sc2_command",
        metavar="SUBCOMMAND",
        required=True,
        help="replays or pretrain (bgtrain sc2 SUBCOMMAND --help for its own flags)",
    )
    replays = commands.add_parser(
        "replays", help="turn .SC2Replay files into demonstration episodes"
    )
    add_root_argument(replays)
    replays.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="replays or folders")
    replays.add_argument(
        "--player", default="all", metavar="NAME", help="a player's name, or all (default: all)"
    )
    replays.set_defaults(run=lambda a: run_replays(ReplaysConfig(a.root, tuple(a.paths), a.player)))
    pre = commands.add_parser(
        "pretrain", help="behaviour cloning on the demonstrations: the root's next model"
    )
    add_root_argument(pre)
    pre.add_argument(
        "--demonstrations",
        type=Path,
        metavar="DIR",
        help="the demonstration episodes (default: ROOT/data/demonstrations)",
    )
    pre.add_argument("--epochs", type=positive_int, default=300, metavar="N", help="passes")
    pre.add_argument(
        "--holdout", type=float, default=0.25, metavar="SHARE", help="episodes held out"
    )
    pre.add_argument("--seed", type=int, default=0, metavar="N", help="the network's seed")
    for command in (replays, pre):
        help_style(command)
    pre.set_defaults(
        run=lambda a: run_pretrain(
            PretrainConfig(a.root, a.demonstrations, a.epochs, a.holdout, a.seed)
        )
    )


def _progress(done: int, total: int, path: Path) -> None:
    """One line a replay, rewritten in place on a terminal (stderr: stdout is the summary)."""
    end = "\r" if sys.stderr.isatty() and done < total else "\n"
    if sys.stderr.isatty() or done % 100 == 0 or done == total:
        print(f"replays: {done}/{total} {path.name[:50]:<50}", end=end, file=sys.stderr)


def run_replays(config: ReplaysConfig) -> int:
    from bgtrain.integrations.sc2 import require_burnysc2

    try:  # without the [sc2] extra: one line saying what to install, no traceback
        require_burnysc2()
        import sc2reader  # noqa: F401
    except ImportError as exc:
        raise BgtrainError(f"{exc}; replays also need sc2reader (pip install sc2reader)") from None
    from bgtrain.integrations.sc2.replays import convert_replays, demonstrations_folder

    started = time.perf_counter()
    report = convert_replays(config.paths, config.root, config.player, progress=_progress)
    seconds = time.perf_counter() - started
    print(
        f"{report.replays} replays: {len(report.episodes)} episodes in "
        f"{demonstrations_folder(config.root)}, {len(report.quarantined)} quarantined "
        f"({seconds:.1f} s)"
    )
    for path in report.no_player:
        print(f"{path}: no player named {config.player!r}")
    if not report.replays:
        raise BgtrainError(f"no replays found in {', '.join(map(str, config.paths))}")
    return 1 if report.quarantined and not report.episodes else 0


def run_pretrain(config: PretrainConfig) -> int:
    # Torch is imported here only: ``bgtrain sc2 replays`` never loads it.
    import dataclasses

    from bgtrain.integrations.sc2.replays import demonstrations_folder
    from bgtrain.learn.pretrain import PretrainSettings, pretrain
    from bgtrain.learn.settings import LearnerSettings

    folder = config.demonstrations or demonstrations_folder(config.root)
    learner = LearnerSettings()
    learner = dataclasses.replace(learner, ppo=dataclasses.replace(learner.ppo, seed=config.seed))
    settings = PretrainSettings(epochs=config.epochs, holdout=config.holdout)
    report = pretrain(config.root, folder, settings, learner)
    held = (
        f"{report.holdout_accuracy:.1%} on {report.holdout_samples} states of "
        f"{report.holdout_episodes} held-out episodes"
        if report.holdout_accuracy is not None
        else "no episode held out"
    )
    print(
        f"pretrained on {report.episodes} demonstrations ({report.samples} states) in "
        f"{report.seconds:.1f} s\n"
        f"greedy accuracy: {report.train_accuracy:.1%} on the training states, {held}; "
        f"chance (the most frequent label): {report.chance:.1%}\n"
        f"published model version {report.published.version} in {config.root}"
    )
    return 0
