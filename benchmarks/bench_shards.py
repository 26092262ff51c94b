"""Sharded scans on CPU (issue 18): one run spec of the default model with its probes run one after another in one
process (2 torch threads, then 1) against 2 worker processes (1 thread each) running the probes at once; the same
records and findings, and the wall times.

Each side gets a fresh call cache, so every request reaches the model. Both times include loading the model (the
sharded run's workers load theirs in parallel); the load average is recorded. Writes
benchmarks/results/shards_<stamp>.json and shards_latest.md.

Usage: python benchmarks/bench_shards.py [N_SST2] [N_DOCS] [N_REGISTER]
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from lmcritic.backends import ModelSpec
from lmcritic.runner import Runner
from lmcritic.spec import ParallelSpec, ProbeSpec, RunSpec

ROOT = Path(__file__).resolve().parents[1]


def spec(n_sst2: int, n_docs: int, n_register: int) -> RunSpec:
    return RunSpec(model=ModelSpec("smollm2-135m"), name="shards-bench", probes=(
        ProbeSpec("performance.sst2", {"n": n_sst2}),
        ProbeSpec("performance.perplexity", {"docs": n_docs, "window": 256, "stride": 128}),
        ProbeSpec("robustness.register", {"n": n_register})))


def timed_run(run_spec: RunSpec, workdir: Path) -> tuple[Runner, str, float, float]:
    runner = Runner(workdir / "runs.sqlite", workdir / "cache.sqlite", progress=False)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    out = runner.run(run_spec)
    assert out.status == "done", out
    return runner, out.run_id, time.perf_counter() - start, load_before


def main() -> None:
    args = [int(a) for a in sys.argv[1:4]] + [32, 6, 12][len(sys.argv[1:4]):]
    base = spec(*args)
    result: dict[str, Any] = {"bench": "sharded scan: 2 worker processes vs 1 process, smollm2-135m, fp32 CPU",
                              "spec": {"sst2_n": args[0], "perplexity_docs": args[1], "register_n": args[2]},
                              "cpus": os.cpu_count()}
    sides = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, run_spec, threads in (("single", base, "2"), ("single_1thread", base, "1"),
                                        ("sharded", replace(base, parallel=ParallelSpec(2)), "1")):
            os.environ["OMP_NUM_THREADS"] = threads  # the workers inherit it: 1 thread each
            import torch

            torch.set_num_threads(int(threads))
            workdir = Path(tmp) / name
            runner, run_id, wall, load = timed_run(run_spec, workdir)
            info = runner.store.get_run(run_id)
            sides[name] = (runner, run_id)
            result[name] = {"threads_each": int(threads), "wall_s": round(wall, 2),
                            "load_s": round(info.timings["load_s"] or 0, 2),
                            "probes_s": round(info.timings["total_s"], 2), "queries": info.timings["cache"]["queries"],
                            "loadavg_1m_before": load, "loadavg_1m_after": os.getloadavg()[0]}
    (one, one_id), (two, two_id) = sides["single"], sides["sharded"]
    result["same_records"] = all(one.store.records(one_id, k) == two.store.records(two_id, k)
                                 for k in one.store.record_keys(one_id))
    result["same_findings"] = one.store.findings(one_id) == two.store.findings(two_id)
    result["wall_ratio_single_over_sharded"] = round(result["single"]["wall_s"] / result["sharded"]["wall_s"], 3)
    result["wall_ratio_single_1thread_over_sharded"] = round(result["single_1thread"]["wall_s"]
                                                             / result["sharded"]["wall_s"], 3)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = ROOT / "benchmarks" / "results"
    (out / f"shards_{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "shards_latest.md").write_text(report(result, stamp))
    print(json.dumps(result, indent=2))


def report(r: dict[str, Any], stamp: str) -> str:
    s, o, p = r["single"], r["single_1thread"], r["sharded"]
    return (f"# Sharded scan vs one process ({stamp})\n\n"
            f"smollm2-135m, fp32 CPU, {r['cpus']} cores; SST-2 n={r['spec']['sst2_n']}, perplexity "
            f"{r['spec']['perplexity_docs']} docs, register n={r['spec']['register_n']}; fresh caches. Command: "
            "`python benchmarks/bench_shards.py`.\n\n"
            "| side | threads | wall (incl. load) | load | probes | queries | load avg 1 min (before/after) |\n"
            "|---|---|---|---|---|---|---|\n"
            f"| 1 process | {s['threads_each']} | {s['wall_s']} s | {s['load_s']} s | {s['probes_s']} s | "
            f"{s['queries']} "
            f"| {s['loadavg_1m_before']:.1f}/{s['loadavg_1m_after']:.1f} |\n"
            f"| 1 process | 1 | {o['wall_s']} s | {o['load_s']} s | {o['probes_s']} s | {o['queries']} "
            f"| {o['loadavg_1m_before']:.1f}/{o['loadavg_1m_after']:.1f} |\n"
            f"| 2 workers | {p['threads_each']} each | {p['wall_s']} s | {p['load_s']} s | {p['probes_s']} s | "
            f"{p['queries']} | {p['loadavg_1m_before']:.1f}/{p['loadavg_1m_after']:.1f} |\n\n"
            f"Same records: {r['same_records']}; same findings: {r['same_findings']}; wall ratio 1 process (2 threads) "
            f"/ 2 workers {r['wall_ratio_single_over_sharded']}, 1 process (1 thread) / 2 workers "
            f"{r['wall_ratio_single_1thread_over_sharded']} (one measurement each, in this order, on a shared "
            "machine: indicative, no CI; later sides read the model from a warm page cache).\n")


if __name__ == "__main__":
    main()
