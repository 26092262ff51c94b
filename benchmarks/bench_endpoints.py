"""Load test of the openai backend over several ``lmcritic serve`` processes (issue 18).

Three servers of one model (a python-backend callable with a fixed 20 ms service time, ``tests/_fleet.py``, so
the figures measure the client's balancing and failover, not a model); N generate requests at concurrency 32;
one server is SIGKILLed once a third of the requests have been sent. Checked: every case completed exactly
once with its own answer; the retries counted. For scale, the same N against one server and against three with
no kill. Writes benchmarks/results/endpoints_load.json.

Usage: python benchmarks/bench_endpoints.py [N]
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _fleet import SERVICE_S, fleet  # noqa: E402
from lmcritic.backends.openai import OpenAIBackend  # noqa: E402
from lmcritic.requests import GenerateRequest, GenParams  # noqa: E402


def run(n: int, n_servers: int, kill_after: int | None) -> dict:
    with fleet(n_servers) as servers:
        backend = OpenAIBackend("m", base_url=[u for _, u in servers], api_key_env=None, backoff=0.2)
        if kill_after is not None:
            threading.Thread(target=_kill_when, args=(backend, kill_after, servers[-1][0]), daemon=True).start()
        start = time.perf_counter()
        out = backend.generate([GenerateRequest(prompt=f"case {i:05d}", params=GenParams(max_new_tokens=64))
                                for i in range(n)])
        wall = time.perf_counter() - start
    stats = backend.endpoint_stats()
    wrong = sum(r.text != f"case {i:05d}"[::-1] for i, r in enumerate(out))
    return {"servers": n_servers, "killed_after_sent": kill_after, "requests": n, "completed": len(out),
            "wrong_or_missing": wrong, "retries": stats.retries, "per_endpoint": list(stats.endpoints.values()),
            "wall_s": round(wall, 3), "requests_per_s": round(n / wall, 1)}


def _kill_when(backend: OpenAIBackend, sent: int, proc) -> None:
    while sum(e["sent"] for e in backend.endpoint_stats().endpoints.values()) < sent:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    runs = [run(n, 1, None), run(n, 3, None), run(n, 3, n // 3)]
    result = {"bench": "openai backend, multi-endpoint load", "service_s_per_request": SERVICE_S,
              "concurrency": 32, "load": os.getloadavg(), "runs": runs}
    out = ROOT / "benchmarks" / "results" / "endpoints_load.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
