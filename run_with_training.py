#!/usr/bin/env python
"""The seed system's entry point, kept for its users: the same as ``bgtrain run``.

    python run_with_training.py                      # CartPole-v1 until solved
    python run_with_training.py --max_games 200 --lr 0.0005
    python run_with_training.py --env LunarLander-v3

Accepts every ``bgtrain run`` flag, and the seed's ``--max_games``,
``--learning_rate`` and ``--lr``.
"""

import sys
from pathlib import Path

# Run from a checkout without installing the package too (its dependencies are needed).
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

if __name__ == "__main__":  # game processes are spawned: they must not run this again
    from bgtrain.cli import main

    sys.exit(main(["run", *sys.argv[1:]]))
