"""``python -m bench [--quick] [NAME...]``: run benchmarks, write BENCHMARKS.md and JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import (
    freshness,
    game_cost,
    ingest,
    scale,
    solve_cartpole,
    solve_lunarlander,
    solve_slow_game,
)
from .harness import machine, markdown, save_json

BENCHMARKS = {
    m.NAME: m
    for m in (
        solve_cartpole,
        solve_slow_game,
        solve_lunarlander,
        ingest,
        game_cost,
        freshness,
        scale,
    )
}
REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smoke mode: small sizes, few repeats")
    p.add_argument(
        "--out",
        type=Path,
        help="Markdown report (default: BENCHMARKS.md; --quick: none unless given)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=REPO / "bench" / "results",
        help="folder of the JSON results (default: bench/results)",
    )
    p.add_argument(
        "names",
        nargs="*",
        choices=[*BENCHMARKS, []],
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})",
    )
    a = p.parse_args(argv)
    names = a.names or list(BENCHMARKS)
    info = machine()
    sections = []
    for name in names:
        module = BENCHMARKS[name]
        print(f"[bench] {module.TITLE} ...", flush=True)
        rows = module.run(a.quick)
        save_json(a.results, name, rows, info, a.quick)
        section = markdown(module.TITLE, module.TARGET, rows)
        if getattr(module, "NOTES", None) and not all(r.met is not False for r in rows):
            section += "\n\n" + module.NOTES
        print(section + "\n", flush=True)
        sections.append(section)
    out = a.out or (None if a.quick else REPO / "BENCHMARKS.md")
    if out is not None:
        command = (
            "python -m bench" + (" --quick" if a.quick else "") + "".join(f" {n}" for n in a.names)
        )
        head = [
            "# Benchmarks",
            "",
            f"Measured {info['date']} on {info['cores']} cores, {info['memory']}, "
            f"{info['machine']}; Python {info['python']}, numpy {info['numpy']}, "
            f"torch {info['torch']}. Command: `{command}`. Every figure is the median of "
            "the repeats, with their min - max; peers are measured in the same run.",
            "",
            "",
        ]
        out.write_text("\n".join(head) + "\n\n".join(sections) + "\n", encoding="utf-8")
        print(f"[bench] wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
