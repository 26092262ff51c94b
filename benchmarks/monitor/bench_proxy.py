"""Latency overhead of the ``lmcritic serve --upstream`` proxy: p50 and p95, on loopback.

    .venv/bin/python benchmarks/monitor/bench_proxy.py [--n 400]

An upstream ``lmcritic serve`` (python backend that answers at once) and proxies in front of it run as separate
processes; one client sends the same completion request round-robin straight to the upstream and through each proxy
(plain, with ``--log``, with ``--log --guard output_filter``), so load swings hit every route alike. Overhead =
the route's percentile minus the direct route's. Results: ``benchmarks/results/monitor_proxy_<stamp>.json``
and ``monitor_proxy_latest.md``.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks/results"
BODY = json.dumps({"model": "m", "prompt": "What is the capital of France?", "max_tokens": 32}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lmcritic.cli.main", "serve", "--port", str(port), *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server {args} did not start")


def once(port: int) -> float:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/completions", body=BODY, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 200
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    args = ap.parse_args(argv)
    path = str(ROOT / "benchmarks/monitor") + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            up, up_port = start(["--backend", "python", "--model", "_echo_model:echo"], env)
            procs.append(up)
            url = f"http://127.0.0.1:{up_port}/v1"
            routes = {"direct": up_port}
            guard = ["--guard", "output_filter", "--guard-option", "output_filter.toxicity_scorers=[]"]
            for name, extra in (("proxy", []), ("proxy + log", ["--log", f"{tmp}/a.jsonl"]),
                                ("proxy + log + output_filter (PII)", ["--log", f"{tmp}/b.jsonl", *guard])):
                proc, port = start(["--upstream", url, *extra], env)
                procs.append(proc)
                routes[name] = port
            for port in routes.values():
                for _ in range(20):
                    once(port)  # warm up
            lat = {name: [] for name in routes}
            load0 = os.getloadavg()
            for _ in range(args.n):
                for name, port in routes.items():
                    lat[name].append(once(port))
            load1 = os.getloadavg()
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=30)
    res = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "n": args.n, "load": [load0, load1], "routes": {}}
    base = {q: float(np.percentile(lat["direct"], q)) for q in (50, 95)}
    for name, xs in lat.items():
        p = {q: float(np.percentile(xs, q)) for q in (50, 95)}
        res["routes"][name] = {"p50_ms": p[50] * 1e3, "p95_ms": p[95] * 1e3,
                               "overhead_p50_ms": (p[50] - base[50]) * 1e3, "overhead_p95_ms": (p[95] - base[95]) * 1e3}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"monitor_proxy_{stamp}.json").write_text(json.dumps(res, indent=1))
    lines = [f"# serve --upstream proxy overhead ({stamp})", "",
             f"{args.n} completion requests per route, round-robin, "
             f"loopback; load average {[round(x, 2) for x in load0]} → {[round(x, 2) for x in load1]}", "",
             "| route | p50 ms | p95 ms | overhead p50 ms | overhead p95 ms |", "|---|---|---|---|---|"]
    for name, r in res["routes"].items():
        lines.append(f"| {name} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['overhead_p50_ms']:+.2f} | "
                     f"{r['overhead_p95_ms']:+.2f} |")
    md = "\n".join(lines) + "\n"
    (RESULTS / "monitor_proxy_latest.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
