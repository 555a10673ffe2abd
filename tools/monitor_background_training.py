#!/usr/bin/env python
"""The seed system's monitor command, kept for its users: the same as ``bgtrain monitor``.

python tools/monitor_background_training.py            # ./local_training, every 2 s
python tools/monitor_background_training.py --refresh 5 --root path/to/local_training
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

if __name__ == "__main__":
    from bgtrain.cli import main

    sys.exit(main(["monitor", *sys.argv[1:]]))
