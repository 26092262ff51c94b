"""Callables that misbehave on purpose, for the fault tests (importable as ``_faulty:NAME`` by subprocesses
that get this folder on PYTHONPATH)."""
from __future__ import annotations

import threading
import time


def echo(prompt: str) -> str:
    """Answers the last word of the prompt: exact match on the test tasks."""
    return prompt.rsplit(" ", 1)[-1]


def boom(prompt: str) -> str:
    raise RuntimeError("boom: the model is down")


def fails_on_bad(prompt: str) -> str:
    if "bad" in prompt:
        raise ValueError(f"cannot answer {prompt[-12:]!r}")
    return echo(prompt)


def hangs_on_bad(prompt: str) -> str:
    if "bad" in prompt:
        threading.Event().wait()  # never returns
    return echo(prompt)


def slow(prompt: str) -> str:
    time.sleep(0.25)
    return echo(prompt)


def huge(prompt: str) -> str:
    return "x" * 1_000_000
