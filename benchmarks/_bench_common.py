"""Shared plumbing of the ABAB benchmarks (bench_generate.py, bench_scan.py): machine load, medians, results.

The machine these run on is shared, so every comparison interleaves the two sides (A B B A ...) in one run,
reports medians with the load average before and after, and the CPU seconds each side used (less sensitive
to other processes than wall time, though not immune: they share caches and memory bandwidth).
"""
from __future__ import annotations

import json
import os
import platform
import statistics
from datetime import datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else "?"
    return {"cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(), "loadavg": os.getloadavg()}


def abab(reps: int, sides: tuple[str, str]) -> list[str]:
    """The order of runs: A B, B A, A B, ... (each side goes first equally often)."""
    out: list[str] = []
    for i in range(reps):
        out += list(sides) if i % 2 == 0 else list(reversed(sides))
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def load_text(loads: list[tuple[float, float, float]]) -> str:
    return ", ".join(f"{a:.2f}" for a, _, _ in loads)


def write(name: str, res: dict, markdown: str) -> tuple[Path, Path]:
    """results/<name>_<stamp>.json and results/<name>_latest.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}_{res['stamp']}.json"
    path.write_text(json.dumps(res, indent=1, default=str), encoding="utf-8")
    md = RESULTS / f"{name}_latest.md"
    md.write_text(markdown.replace("{json}", path.name), encoding="utf-8")
    return path, md


def publish(name: str, res: dict, markdown: str) -> None:
    """Write the results (see :func:`write`) and print the markdown with the file names."""
    path, md = write(name, res, markdown)
    print(markdown.replace("{json}", path.name))
    print(f"wrote {path} and {md}")
