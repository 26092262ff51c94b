"""Ray data parallel on CPU (issue 18): the default model as 1 process (2 torch threads) against 2 Ray replicas
(1 thread each) on the same small run spec; the same findings, and the throughput ratio.

Each side gets a fresh call cache, so every request reaches the model. Times exclude loading (the model, and
Ray's start plus the replicas' loads, are reported apart). Writes benchmarks/results/ray_replicas.json.

Usage: python benchmarks/bench_ray.py [N_SST2] [N_DOCS]
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lmcritic.backends import ModelSpec, load_model
from lmcritic.runner import Runner
from lmcritic.spec import ProbeSpec, RunSpec

ROOT = Path(__file__).resolve().parents[1]


def spec(n_sst2: int, n_docs: int) -> RunSpec:
    return RunSpec(model=ModelSpec("smollm2-135m"), name="ray-bench", probes=(
        ProbeSpec("performance.sst2", {"n": n_sst2}),
        ProbeSpec("performance.perplexity", {"docs": n_docs, "window": 256, "stride": 128})))


def timed_run(run_spec: RunSpec, model: Any, workdir: Path) -> tuple[Runner, str, float]:
    runner = Runner(workdir / "runs.sqlite", workdir / "cache.sqlite", progress=False)
    start = time.perf_counter()
    out = runner.run(run_spec, model=model)
    assert out.status == "done", out
    return runner, out.run_id, time.perf_counter() - start


def findings(runner: Runner, run_id: str) -> dict[str, Any]:
    return {f"{f.probe}/{f.name}": {"verdict": str(f.verdict), "n": f.estimate.n if f.estimate else None,
                                    "value": f.estimate.value if f.estimate else None}
            for f in runner.store.findings(run_id)}


def main() -> None:
    import torch

    from lmcritic.backends.ray import RayBackend

    n_sst2 = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    n_docs = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    s = spec(n_sst2, n_docs)
    with tempfile.TemporaryDirectory() as tmp:
        torch.set_num_threads(2)
        t0 = time.perf_counter()
        single_model = load_model("smollm2-135m")
        load_single = time.perf_counter() - t0
        r1, id1, t_single = timed_run(s, single_model, Path(tmp) / "single")
        single_model.close()
        t0 = time.perf_counter()
        ray_model = RayBackend({"name": "smollm2-135m"}, replicas=2, batch_size=8)
        load_ray = time.perf_counter() - t0
        r2, id2, t_ray = timed_run(s, ray_model, Path(tmp) / "ray")
        ray_model.close()
        f1, f2 = findings(r1, id1), findings(r2, id2)
        queries = [r.store.get_run(i).timings["cache"]["queries"] for r, i in ((r1, id1), (r2, id2))]
    same = f1.keys() == f2.keys() and all(
        f1[k]["verdict"] == f2[k]["verdict"] and f1[k]["n"] == f2[k]["n"]
        and (f1[k]["value"] is None or abs(f1[k]["value"] - f2[k]["value"]) <= 1e-6 * max(1, abs(f1[k]["value"])))
        for k in f1)
    result = {"bench": "ray replicas vs single process, smollm2-135m, fp32 CPU",
              "spec": {"sst2_n": n_sst2, "perplexity_docs": n_docs, "window": 256, "stride": 128},
              "single": {"threads": 2, "load_s": round(load_single, 2), "run_s": round(t_single, 2),
                         "queries": queries[0]},
              "ray": {"replicas": 2, "threads_each": 1, "batch_size": 8, "start_and_load_s": round(load_ray, 2),
                      "run_s": round(t_ray, 2), "queries": queries[1]},
              "throughput_ratio_ray_over_single": round(t_single / t_ray, 3),
              "same_findings": same, "findings_single": f1, "findings_ray": f2,
              "load_avg_at_end": os.getloadavg()}
    out = ROOT / "benchmarks" / "results" / "ray_replicas.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
