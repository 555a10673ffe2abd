"""The shared timing harness: repeats, medians, machine facts, JSON and Markdown output."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path


@dataclass
class Row:
    """One measured figure: median and min-max of the repeats, with its peer if any."""

    label: str
    unit: str
    median: float
    low: float
    high: float
    peer: str | None = None
    peer_median: float | None = None
    #: ours / peer (or as the target defines it), and whether the target holds.
    ratio: float | None = None
    target: str | None = None
    met: bool | None = None
    #: Every repeat, ours and the peer's, for later comparison (JSON only).
    values: list[float] | None = None
    peer_values: list[float] | None = None


def repeat(fn: Callable[[], float], repeats: int) -> tuple[float, float, float]:
    """Run ``fn`` (which returns one measurement) ``repeats`` times: median, min, max."""
    values = [fn() for _ in range(repeats)]
    return statistics.median(values), min(values), max(values)


def per_call_us(fn: Callable[[], None], calls: int) -> float:
    """Microseconds per call of ``fn`` over ``calls`` calls."""
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def package_versions() -> dict[str, str | None]:
    """Versions of the packages the figures depend on (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for key, package in (
        ("numpy", "numpy"),
        ("torch", "torch"),
        ("gymnasium", "gymnasium"),
        ("stable_baselines3", "stable-baselines3"),
    ):
        try:
            found[key] = version(package)
        except PackageNotFoundError:
            found[key] = None
    return found


def machine() -> dict[str, object]:
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except OSError:
        memory = "unknown"
    return {
        "cores": os.cpu_count(),
        "memory": memory,
        "machine": platform.machine(),
        "python": platform.python_version(),
        **package_versions(),
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def markdown(title: str, target: str, rows: list[Row]) -> str:
    lines = [
        f"### {title}",
        "",
        f"Target: {target}",
        "",
        "| figure | median | min - max | peer (median) | ratio | target met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        peer = f"{r.peer}: {fmt(r.peer_median, r.unit)}" if r.peer else "-"
        met = "-" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(
            f"| {r.label} | {fmt(r.median, r.unit)} | {fmt(r.low)} - {fmt(r.high)} | {peer} | "
            f"{fmt(r.ratio)} | {met} |"
        )
    return "\n".join(lines)


def save_json(
    results_dir: Path, name: str, rows: list[Row], info: dict, quick: bool, command: str
) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}{'-quick' if quick else ''}.json"
    data = {"machine": info, "command": command, "quick": quick, "rows": [asdict(r) for r in rows]}
    path.write_text(json.dumps(data, indent=1))
    return path


# ---------------------------------------------------------------- text beside a table
#: The first line of a hand-written note: the ``machine.date`` of the run it was written from.
RUN_TAG = re.compile(r"<!--\s*run:\s*(\S+)\s*-->")


def ratio_text(ratio: float) -> str:
    """A ratio with enough digits that a near miss (1.004 against <= 1.0) shows."""
    return f"{ratio:,.0f}" if abs(ratio) >= 100 else f"{ratio:.3f}"


def verdict(row: Row) -> str | None:
    """One sentence on whether the row's target holds, from the row's own figures
    (None for a row without a target): it cannot disagree with the table."""
    if row.met is None:
        return None
    head = "Met" if row.met else "Missed"
    ours = fmt(row.median, row.unit)
    if row.peer is None or row.peer_median is None or row.ratio is None:
        # The range too: a target may hold for every repeat ("in every run"), not the median.
        spread = "" if row.low == row.high else f" (min - max {fmt(row.low)} - {fmt(row.high)})"
        return f"{head}: {row.label} = {ours}{spread}; target {row.target}."
    theirs = fmt(row.peer_median, row.unit)
    quotient = row.peer_median != 0 and math.isclose(
        row.ratio, row.median / row.peer_median, rel_tol=1e-9
    )
    if quotient:
        measured = f"ratio {ratio_text(row.ratio)} = {ours} / {row.peer} {theirs}"
    else:  # a ratio the target defines otherwise (e.g. peer / ours, "x faster")
        measured = f"ratio {ratio_text(row.ratio)} ({ours} vs {row.peer} {theirs})"
    return f"{head}: {row.label}: {measured}; target {row.target}."


def written_notes(path: Path, date: str) -> str | None:
    """The hand-written notes at ``path`` (without their run tag) if their first line
    names the run ``date``; None if there are none, or they are from another run."""
    try:
        lines = path.read_text("utf-8-sig").splitlines()  # -sig: a BOM from a Windows editor
    except FileNotFoundError:
        return None
    tag = RUN_TAG.fullmatch(lines[0].strip()) if lines else None
    if tag is None or tag.group(1) != date:
        return None
    return "\n".join(lines[1:]).strip() or None


def beside_table(name: str, rows: list[Row], date: str, notes_dir: Path) -> str:
    """What is written under a benchmark's table: a sentence per row with a target, then
    the hand-written notes of this run (``notes_dir/NAME.md``) or a line saying there are
    none yet."""
    parts = []
    sentences = [s for s in map(verdict, rows) if s is not None]
    if sentences:
        parts.append("\n".join(f"- {s}" for s in sentences))
    path = notes_dir / f"{name}.md"
    notes = written_notes(path, date)
    if notes is None:
        notes = (
            f"No notes were written from this run yet: `python -m bench --report` puts "
            f"them here once bench/notes/{path.name} is written, its first line "
            f"`<!-- run: {date} -->`."
        )
    parts.append(notes)
    return "\n\n".join(parts)
