"""Real ``lmcritic serve`` processes on loopback ports, for multi-endpoint tests and the load benchmark.

The served model is :func:`reply`, a python-backend callable with a fixed service time: the point is the
client's balancing and failover, so the model is deterministic and its latency controlled.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
SERVICE_S = 0.02  # seconds one request takes on a server


def reply(prompt: str) -> str:
    """The served model: the prompt reversed, after ``SERVICE_S`` of "inference"."""
    time.sleep(SERVICE_S)
    return prompt[::-1]


def start(n: int, timeout: float = 60.0) -> list[tuple[subprocess.Popen[str], str]]:
    """``n`` servers started at once; each (process, base URL) once it has bound its port."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "lmcritic.cli.main", "serve", "--backend", "python", "--model", "_fleet:reply",
           "--port", "0", "--max-queue", "256"]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
             for _ in range(n)]
    return [(p, _bound_url(p, timeout)) for p in procs]


def _bound_url(proc: subprocess.Popen[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    for line in proc.stderr:
        found = re.search(r"serving .* at (http://\S+/v1)", line)
        if found:  # keep reading its log, or the server blocks on a full pipe
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return found.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise RuntimeError(f"lmcritic serve did not start (exit {proc.poll()})")


@contextmanager
def fleet(n: int) -> Iterator[list[tuple[subprocess.Popen[str], str]]]:
    servers = start(n)
    try:
        yield servers
    finally:
        for proc, _ in servers:
            proc.kill()
            proc.wait(timeout=10)
