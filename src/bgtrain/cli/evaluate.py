"""``bgtrain eval``: play games with a published model; mean/std/min/max return, win rate."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from bgtrain.cli._common import add_root_argument, positive_int


@dataclass(frozen=True)
class EvalConfig:
    #: The training root.
    root: Path
    #: Model version from the history (default: the latest).
    version: int | None = None
    #: Games to play.
    episodes: int = 20
    #: Greedy (argmax) actions, or sampled ones.
    greedy: bool = True
    #: The game (default: the one the model's games were recorded in, else CartPole-v1).
    env: str | None = None
    #: Seed of the games.
    seed: int | None = None
    #: Print one JSON object instead of text.
    json: bool = False
    #: Stop a game still going after this many steps and count it as cut short
    #: (default: the game's own limit, else 100000).
    max_steps: int | None = None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a published model", description=__doc__)
    add_root_argument(p)
    p.add_argument(
        "--version", type=int, metavar="N", help="model version from the history (default: latest)"
    )
    p.add_argument("--episodes", type=positive_int, default=20, metavar="N", help="games to play")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--greedy",
        dest="greedy",
        action="store_true",
        default=True,
        help="argmax actions",
    )
    mode.add_argument("--sample", dest="greedy", action="store_false", help="sampled actions")
    p.add_argument("--env", help="the game (default: from the root's games, else CartPole-v1)")
    p.add_argument("--seed", type=int, help="seed of the games (default: random)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--max-steps",
        type=positive_int,
        metavar="N",
        help="stop a game still going after N steps; it counts as cut short "
        "(default: the game's own limit, else 100000)",
    )
    p.set_defaults(
        run=lambda a: run(
            EvalConfig(a.root, a.version, a.episodes, a.greedy, a.env, a.seed, a.json, a.max_steps)
        )
    )


def run(config: EvalConfig) -> int:
    from bgtrain.game.defaults import DEFAULT_ENV
    from bgtrain.game.evaluation import evaluate
    from bgtrain.game.policy import Policy
    from bgtrain.store.models import ModelStore

    model = ModelStore(config.root).load(config.version)
    env = config.env or model.meta.extra.get("env") or DEFAULT_ENV
    result = evaluate(
        Policy.from_model(model),
        env,
        config.episodes,
        config.greedy,
        config.seed,
        max_steps=config.max_steps,
        root=config.root,
    )
    if config.json:
        print(json.dumps({"env": env, **result.as_dict()}))
        return 0
    mode = "greedy" if config.greedy else "sampled"
    print(f"Model v{result.version} on {env}, {len(result.returns)} games, {mode} actions")
    print(f"  mean return: {result.mean:.2f} (std {result.std:.2f})")
    print(f"  min / max:   {result.min:.2f} / {result.max:.2f}")
    print(f"  win rate:    {result.win_rate:.0%}")
    if result.cut_short:
        print(
            f"  cut short:   {result.cut_short} of {len(result.returns)} games still going "
            f"at the {result.step_limit}-step cap (--max-steps)"
        )
    return 0
