"""``python -m bench [--quick] [NAME...]``: run benchmarks, write BENCHMARKS.md and JSON.

``python -m bench chaos [--quick] [--minutes N]`` runs the fault suite instead (its own
flags; it writes only the "Faults" section of the page, which the speed runs keep)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import ModuleType

from . import (
    chaos,
    freshness,
    game_cost,
    ingest,
    scale,
    solve_cartpole,
    solve_lunarlander,
    solve_slow_game,
)
from .harness import Row, machine, markdown, package_versions, save_json

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
    argv = sys.argv[1:] if argv is None else list(argv)
    if chaos.NAME in argv:  # the fault suite: not a speed benchmark, run on its own
        return chaos.main([arg for arg in argv if arg != chaos.NAME])
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
    p.add_argument(
        "--report",
        action="store_true",
        help="measure nothing: write the report from the saved JSON results (after the "
        "notes beside a missed target were written, say)",
    )
    a = p.parse_args(argv)
    names = a.names or list(BENCHMARKS)
    command = (
        "python -m bench" + (" --quick" if a.quick else "") + "".join(f" {n}" for n in a.names)
    )
    if a.report:
        info, command, sections = _from_results(a.results, names, a.quick)
    else:
        info, sections = machine(), []
        for name in names:
            module = BENCHMARKS[name]
            print(f"[bench] {module.TITLE} ...", flush=True)
            rows = module.run(a.quick)
            save_json(a.results, name, rows, info, a.quick, command)
            sections.append(_section(module, rows))
            print(sections[-1] + "\n", flush=True)
    out = a.out or (None if a.quick else REPO / "BENCHMARKS.md")
    if out is not None:
        versions = ", ".join(
            f"{package} {info[key]}"
            for package, key in (
                ("Python", "python"),
                ("numpy", "numpy"),
                ("torch", "torch"),
                ("Gymnasium", "gymnasium"),
                ("Stable-Baselines3", "stable_baselines3"),
            )
            if info.get(key)
        )
        head = [
            "# Benchmarks",
            "",
            f"Measured {info['date']} on {info['cores']} cores, {info['memory']}, "
            f"{info['machine']}; {versions}. Command: `{command}`. Every figure is the "
            "median of the repeats, with their min - max; peers are measured in the same run.",
            "",
            "",
        ]
        kept = chaos.kept_section(out)  # the fault suite's section is from its own run
        out.write_text("\n".join(head) + "\n\n".join(sections) + kept + "\n", encoding="utf-8")
        print(f"[bench] wrote {out}")
    return 0


def _section(module: ModuleType, rows: list[Row]) -> str:
    """The benchmark's table, and its notes when a target was missed."""
    section = markdown(module.TITLE, module.TARGET, rows)
    if getattr(module, "NOTES", None) and not all(r.met is not False for r in rows):
        section += "\n\n" + module.NOTES
    return section


def _from_results(
    results: Path, names: list[str], quick: bool
) -> tuple[dict[str, object], str, list[str]]:
    """Machine facts, command and sections of saved results (all from one run)."""
    saved = []
    for name in names:
        path = results / f"{name}{'-quick' if quick else ''}.json"
        if not path.is_file():
            raise SystemExit(f"python -m bench --report: no results at {path}; run it first")
        saved.append(json.loads(path.read_text("utf-8")))
    dates = {data["machine"]["date"] for data in saved}
    if len(dates) > 1:
        raise SystemExit(
            f"python -m bench --report: the results are from {len(dates)} runs "
            f"({', '.join(sorted(dates))}); the report is of one run"
        )
    # Results saved before the package versions were recorded: read them from here.
    info = {**package_versions(), **saved[0]["machine"]}
    command = saved[0].get("command", "python -m bench" + (" --quick" if quick else ""))
    sections = [
        _section(BENCHMARKS[name], [Row(**row) for row in data["rows"]])
        for name, data in zip(names, saved, strict=True)
    ]
    return info, command, sections


if __name__ == "__main__":
    sys.exit(main())
