"""``python -m bench [--quick] [NAME...]``: run benchmarks, write BENCHMARKS.md and JSON.

``python -m bench chaos [--quick] [--minutes N]`` runs the fault suite instead (its own
flags; it writes only the "Faults" section of the page, which the speed runs keep)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from types import ModuleType

from . import (
    chaos,
    engines,
    freshness,
    game_cost,
    ingest,
    ladder_step,
    sc2_decision,
    scale,
    solve_acrobot,
    solve_cartpole,
    solve_lunarlander,
    solve_slow_game,
    stability,
)
from .harness import Row, beside_table, machine, markdown, package_versions, save_json

BENCHMARKS = {
    m.NAME: m
    for m in (
        solve_cartpole,
        solve_slow_game,
        solve_lunarlander,
        solve_acrobot,
        stability,
        ingest,
        game_cost,
        freshness,
        scale,
        engines,
        sc2_decision,
        ladder_step,
    )
}
REPO = Path(__file__).resolve().parent.parent
NOTES = REPO / "bench" / "notes"


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
        "--notes",
        type=Path,
        default=NOTES,
        help="folder of the hand-written notes, NAME.md, first line <!-- run: DATE --> "
        "(default: bench/notes)",
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
        help="measure nothing: write the report from the saved JSON results (after "
        "bench/notes/NAME.md was written from them, say)",
    )
    a = p.parse_args(argv)
    names = a.names or list(BENCHMARKS)
    command = (
        "python -m bench" + (" --quick" if a.quick else "") + "".join(f" {n}" for n in a.names)
    )
    if a.report:
        info, command, sections = _from_results(a.results, names, a.quick, a.notes)
    else:
        info, sections = machine(), []
        for name in names:
            module = BENCHMARKS[name]
            print(f"[bench] {module.TITLE} ...", flush=True)
            rows = module.run(a.quick)
            save_json(a.results, name, rows, info, a.quick, command)
            sections.append(_section(module, rows, str(info["date"]), a.notes))
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
            "Each section says when it was measured, on what, and with which command (a run "
            "of some benchmarks keeps the other sections of the page as they were). Every "
            "figure is the median of the repeats, with their min - max; peers are measured "
            "in the same run.",
            "",
            "",
        ]
        measured = (
            f"Measured {info['date']} on {info['cores']} cores, {info['memory']}, "
            f"{info['machine']}; {versions}. Command: `{command}`."
        )
        new = {
            name: _marked(name, section, measured)
            for name, section in zip(names, sections, strict=True)
        }
        old = _marked_sections(out)
        body = [new.get(name) or old.get(name) for name in BENCHMARKS]
        kept = chaos.kept_section(out)  # the fault suite's section is from its own run
        text = "\n".join(head) + "\n\n".join(b for b in body if b) + kept + "\n"
        out.write_text(text, encoding="utf-8")
        print(f"[bench] wrote {out}")
    return 0


#: The first line of each section of the page: which benchmark it is, so that a run of
#: some benchmarks replaces their sections and keeps the others.
MARK = "<!-- bench: {name} -->"


def _marked(name: str, section: str, measured: str) -> str:
    """``section`` with its mark, and the line saying when and how it was measured under
    its title."""
    title, _, rest = section.partition("\n")
    return f"{MARK.format(name=name)}\n{title}\n\n{measured}\n{rest}"


def _marked_sections(page: Path) -> dict[str, str]:
    """The marked sections of an existing page, by benchmark name (none: no page)."""
    try:
        text = page.read_text("utf-8")
    except OSError:
        return {}
    found: dict[str, str] = {}
    pattern = re.compile(r"^<!-- bench: (\w+) -->$", re.MULTILINE)
    marks = list(pattern.finditer(text))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else chaos.faults_at(text)
        chunk = text[mark.start() : end if end >= 0 else len(text)]
        found[mark.group(1)] = chunk.rstrip()
    return found


def _section(module: ModuleType, rows: list[Row], date: str, notes: Path = NOTES) -> str:
    """The benchmark's table, a sentence per target computed from ``rows``, and the notes
    in ``notes/NAME.md`` only if they were written from this run (the one of ``date``)."""
    table = markdown(module.TITLE, module.TARGET, rows)
    return table + "\n\n" + beside_table(module.NAME, rows, date, notes)


def _from_results(
    results: Path, names: list[str], quick: bool, notes: Path = NOTES
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
        _section(BENCHMARKS[name], [Row(**row) for row in data["rows"]], str(info["date"]), notes)
        for name, data in zip(names, saved, strict=True)
    ]
    return info, command, sections


if __name__ == "__main__":
    sys.exit(main())
