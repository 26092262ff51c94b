"""Load test of ``lmcritic serve`` on a real model (issue 21): does the server hold a burst, and do short
requests get through while a long generation runs?

Starts ``lmcritic serve`` as a subprocess (default model: SmolLM2-135M-Instruct, fp32 on CPU), then:

1. **burst**: ``--clients`` clients (default 200) each send one short completion at the same instant
   (a barrier), with a deadline of ``--burst-deadline`` seconds (120, the server's default). Every answer
   must be a 2xx, or a 503 that carries Retry-After; connection errors and anything else count as failures.
   With ``--retries N`` a client that gets a 503 retries after the time it
   names, so the run also shows how long a burst takes to drain. Latency p50/p95 are reported per first
   answer (and per final answer with retries).
2. **long vs short**: one long generation (``--long-tokens``, default 64; no deadline of its own) starts;
   ``--shorts`` short requests
   (``--short-tokens``, each with a deadline of ``--short-deadline`` seconds) follow one after another (0.2 s
   apart). Each must
   answer 200 within its deadline. The same scenario runs twice: with the scheduler's pausing on (the default,
   ``--yield-after 0.2``) and off (``--yield-after inf``: a started generation runs to its end, as behind the
   plain model lock the server had before).

Results: ``benchmarks/results/serve_load_<date>-<time>.json`` (every request) and ``serve_load_latest.md``.
Run from the repository root: ``.venv/bin/python benchmarks/serve_load.py`` (minutes: the burst ends
within the request deadline, the two long-vs-short rounds take about two long generations each).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
PROMPT = "Write one word about the weather:"


def main() -> int:
    args = _args()
    results: dict[str, Any] = {"args": vars(args), "machine": _machine(), "started": time.strftime("%Y-%m-%d %H:%M")}
    with _server(args, yield_after="0.2") as port:
        results["alone_s"] = _warm(port, args)
        results["burst"] = burst(port, args)
        results["long_vs_short"] = long_vs_short(port, args)
    with _server(args, yield_after="inf") as port:
        _warm(port, args)
        results["long_vs_short_fifo"] = long_vs_short(port, args)
    _write(results)
    return 0


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--burst-tokens", type=int, default=4)
    p.add_argument("--burst-deadline", type=float, default=120.0, help="each burst request's deadline (s)")
    p.add_argument("--retries", type=int, default=0, help="503 retries per burst client (after Retry-After)")
    p.add_argument("--max-queue", type=int, default=64)
    p.add_argument("--long-tokens", type=int, default=64)
    p.add_argument("--shorts", type=int, default=5)
    p.add_argument("--short-tokens", type=int, default=4)
    p.add_argument("--short-deadline", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    return p.parse_args()


# -- the server -------------------------------------------------------------------------------------
class _server:
    """``lmcritic serve`` on a free port, stopped (SIGTERM) on exit."""

    def __init__(self, args: argparse.Namespace, yield_after: str) -> None:
        self.args, self.yield_after = args, yield_after

    def __enter__(self) -> int:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.args.threads), "HF_HUB_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        cmd = [sys.executable, "-m", "lmcritic.cli.main", "serve", "--model", self.args.model, "--port", "0",
               "--max-queue", str(self.args.max_queue), "--yield-after", self.yield_after,
               "--max-tokens-cap", str(max(2048, self.args.long_tokens)), "--request-timeout", "3600"]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        for line in self.proc.stderr:
            if " at http://" in line:
                threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
                return int(line.split(" at http://")[1].split("/")[0].rsplit(":", 1)[1])
        raise SystemExit(f"lmcritic serve did not start (exit {self.proc.wait()})")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def _warm(port: int, args: argparse.Namespace) -> float:
    """A few requests of two sizes (the first pays one-off costs; two sizes let the server's cost model tell
    per-request overhead from per-token time); returns the last one's seconds: one burst request alone."""
    times = [_request(port, {"prompt": PROMPT, "max_tokens": n, "temperature": 0})["seconds"]
             for n in (args.burst_tokens, 16, args.burst_tokens)]
    return round(times[-1], 3)


def _request(port: int, body: dict, path: str = "/v1/completions", timeout: float = 3600) -> dict[str, Any]:
    """One POST; status, Retry-After, seconds, and an error name for connection failures."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = json.loads(resp.read() or b"{}")
        choice = (data.get("choices") or [{}])[0]
        out = {"status": resp.status, "retry_after": resp.getheader("Retry-After"),
               "text": choice.get("text", (choice.get("message") or {}).get("content")),
               "tokens": (data.get("usage") or {}).get("completion_tokens"),
               "error": (data.get("error") or {}).get("message")}
    except (OSError, http.client.HTTPException, ValueError) as err:
        out = {"status": None, "retry_after": None, "text": None, "error": f"{type(err).__name__}: {err}"}
    finally:
        conn.close()
    return {**out, "seconds": time.perf_counter() - started}


# -- 1. burst ---------------------------------------------------------------------------------------
def burst(port: int, args: argparse.Namespace) -> dict[str, Any]:
    barrier = threading.Barrier(args.clients)
    clients: list[dict[str, Any]] = [{} for _ in range(args.clients)]
    body = {"prompt": PROMPT, "max_tokens": args.burst_tokens, "temperature": 0, "timeout": args.burst_deadline}

    def client(i: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        attempts = [_request(port, body)]
        while attempts[-1]["status"] == 503 and attempts[-1]["retry_after"] and len(attempts) <= args.retries:
            time.sleep(float(attempts[-1]["retry_after"]))
            attempts.append(_request(port, body))
        clients[i] = {"attempts": attempts, "total_s": time.perf_counter() - started}

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"clients": clients, "wall_s": time.perf_counter() - started, "summary": _burst_summary(clients)}


def _burst_summary(clients: list[dict[str, Any]]) -> dict[str, Any]:
    first = [c["attempts"][0] for c in clients]
    final = [c["attempts"][-1] for c in clients]
    proper = [a for a in first if a["status"] and (200 <= a["status"] < 300 or
                                                   (a["status"] == 503 and a["retry_after"]))]
    return {"n": len(clients), "first_2xx": sum(1 for a in first if a["status"] and 200 <= a["status"] < 300),
            "first_503_with_retry_after": sum(1 for a in first if a["status"] == 503 and a["retry_after"]),
            "first_other": [a["status"] or a["error"] for a in first if a not in proper],
            "answered_properly": len(proper) / len(clients),
            "final_2xx": sum(1 for a in final if a["status"] and 200 <= a["status"] < 300),
            "first_latency": _quantiles([a["seconds"] for a in first]),
            "first_2xx_latency": _quantiles([a["seconds"] for a in first if a["status"] == 200]),
            "until_2xx_latency": _quantiles([c["total_s"] for c in clients if c["attempts"][-1]["status"] == 200]),
            "attempts": _quantiles([len(c["attempts"]) for c in clients])}


# -- 2. a long generation and short requests --------------------------------------------------------
def long_vs_short(port: int, args: argparse.Namespace) -> dict[str, Any]:
    long: dict[str, Any] = {}
    story = [{"role": "user", "content": "Tell me a long story about a dragon and a lighthouse keeper."}]
    body = {"messages": story, "max_tokens": args.long_tokens, "temperature": 0}  # an instruct model writes on
    worker = threading.Thread(target=lambda: long.update(_request(port, body, "/v1/chat/completions")))
    worker.start()
    time.sleep(1.0)  # the long one is generating
    shorts = []
    for _ in range(args.shorts):
        shorts.append(_request(port, {"prompt": PROMPT, "max_tokens": args.short_tokens, "temperature": 0,
                                      "timeout": args.short_deadline}))
        time.sleep(0.2)
    worker.join()
    ok = [s for s in shorts if s["status"] == 200 and s["seconds"] <= args.short_deadline]
    return {"long": long, "shorts": shorts, "summary": {
        "shorts_within_deadline": f"{len(ok)}/{len(shorts)}",
        "short_latency": _quantiles([s["seconds"] for s in shorts]),
        "short_statuses": sorted({str(s["status"]) for s in shorts}), "long_status": long.get("status"),
        "long_s": long.get("seconds"), "long_tokens": long.get("tokens")}}


# -- reporting ----------------------------------------------------------------------------------------
def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    xs = sorted(values)
    pick = lambda q: xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]  # noqa: E731
    return {"n": len(xs), "p50": round(statistics.median(xs), 4), "p95": round(pick(0.95), 4), "max": round(xs[-1], 4)}


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count()}


def _write(results: dict[str, Any]) -> None:
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"serve_load_{stamp}.json").write_text(json.dumps(results, indent=1))
    text = _markdown(results, stamp)
    (out / "serve_load_latest.md").write_text(text)
    print(text)


def _markdown(r: dict[str, Any], stamp: str) -> str:
    b, a = r["burst"]["summary"], r["args"]
    lines = [f"# lmcritic serve under load ({stamp})", "",
             f"Model {a['model']} (fp32, CPU, {a['threads']} torch threads), `--max-queue {a['max_queue']}`; "
             f"{r['machine']['cores']} cores. Command: `.venv/bin/python benchmarks/serve_load.py`. One burst request "
             f"with the server to itself: {r['alone_s']} s.", "",
             f"## Burst: {b['n']} concurrent clients, {a['burst_tokens']} new tokens each, deadline "
             f"{a['burst_deadline']:g} s", "",
             f"- first answer: {b['first_2xx']} × 2xx, {b['first_503_with_retry_after']} × 503 with Retry-After, "
             f"other/connection errors: {len(b['first_other'])} → **{b['answered_properly']:.0%} answered properly**",
             f"- latency of the first answer: p50 {b['first_latency']['p50']} s, p95 {b['first_latency']['p95']} s; "
             f"of 2xx first answers: p50 {b['first_2xx_latency']['p50']} s, p95 {b['first_2xx_latency']['p95']} s",
             (f"- after up to {a['retries']} retries as Retry-After says: {b['final_2xx']}/{b['n']} got 2xx; time "
              f"to a 2xx p50 {b['until_2xx_latency']['p50']} s, p95 {b['until_2xx_latency']['p95']} s; "
              if a["retries"] else "- ") + f"every client answered after {r['burst']['wall_s']:.1f} s", "",
             f"## A long generation ({a['long_tokens']} tokens) and {a['shorts']} short requests "
             f"({a['short_tokens']} tokens, deadline {a['short_deadline']} s)", "",
             "| scheduler | shorts within deadline | short p50 | short p95 | short max | long request "
             "| short statuses |",
             "|---|---|---|---|---|---|---|"]
    for label, key in (("pausing on (`--yield-after 0.2`, default)", "long_vs_short"),
                       ("pausing off (`--yield-after inf`: a started generation runs to its end)",
                        "long_vs_short_fifo")):
        s = r[key]["summary"]
        lines.append(f"| {label} | {s['shorts_within_deadline']} | {s['short_latency']['p50']} s | "
                     f"{s['short_latency']['p95']} s | {s['short_latency']['max']} s | {s['long_status']}, "
                     f"{s['long_tokens']} tokens in {(s['long_s'] or 0):.1f} s | {', '.join(s['short_statuses'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
