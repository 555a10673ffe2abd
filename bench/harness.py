"""The shared timing harness: repeats, medians, machine facts, JSON and Markdown output."""

from __future__ import annotations

import json
import os
import platform
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
