"""Per-request scoring throughput of ``lmcritic monitor`` (the full default scorer set), and peak memory.

    .venv/bin/python benchmarks/monitor/bench_throughput.py [--n 2000] [--model smollm2-135m --n-model 200]

Scores ``--n`` distinct requests of the benchmark log (cold text cache) in one process on this machine's cores,
reports requests/s for the whole set and the seconds each scorer took, the MiniLM embedding rate (used for
drift on a sample per window), the scoring model's perplexity rate when ``--model`` is given, the peak RSS,
and the load average before and after (the machine may be shared). Results: ``benchmarks/results/
monitor_throughput_<stamp>.json`` and ``monitor_throughput_latest.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks/.work/monitor"
RESULTS = ROOT / "benchmarks/results"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--model", help="also time input perplexity under this scoring model")
    ap.add_argument("--n-model", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    log = WORK / "traffic.jsonl"
    if not log.exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks/monitor/build_log.py")], check=True)
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()[: args.n]]
    res = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(), "torch_threads": args.threads,
           "n": len(rows), "load_before": os.getloadavg()}
    res.update(_score(rows))
    res.update(_embed([r["prompt"] for r in rows[:500]]))
    if args.model:
        res.update(_perplexity(rows[: args.n_model], args.model))
    res["load_after"] = os.getloadavg()
    res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"monitor_throughput_{stamp}.json").write_text(json.dumps(res, indent=1, default=str))
    md = _markdown(res, stamp)
    (RESULTS / "monitor_throughput_latest.md").write_text(md)
    print(md)
    return 0


def _score(rows: list[dict]) -> dict:
    from lmcritic.monitor.ingest import ingest
    from lmcritic.monitor.scoring import RequestScorer, score_store
    from lmcritic.store.monitor import MonitorStore

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.jsonl"
        log.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        store = MonitorStore(Path(tmp) / "runs.sqlite")
        t0 = time.perf_counter()
        ingest(store, [log])
        t_ingest = time.perf_counter() - t0
        scorer = RequestScorer(store=store)
        _warm(scorer)
        per_step = {}
        for step, sc, _ in scorer.steps:
            texts = [_field(r, step.field) for r in rows]
            texts = [t for t in texts if t]
            t0 = time.perf_counter()
            sc.score(texts)
            per_step[f"{step.field}.{step.scorer}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = score_store(store, scorer)
        t_all = time.perf_counter() - t0
    return {"ingest_s": t_ingest, "ingest_rps": len(rows) / t_ingest, "score_s": t_all, "score_rps": n / t_all,
            "per_scorer_s": per_step, "scorers": scorer.metrics(), "skipped": scorer.skipped}


def _warm(scorer) -> None:
    """Load every scorer's model once (one-off costs are not throughput)."""
    for _, sc, _ in scorer.steps:
        sc.score(["warm up text"])


def _field(row: dict, field: str) -> str | None:
    if field == "comment":
        return (row.get("feedback") or {}).get("comment")
    return row.get(field)


def _embed(texts: list[str]) -> dict:
    from lmcritic import _minilm

    _minilm.encode(["warm up"])
    t0 = time.perf_counter()
    _minilm.encode(texts)
    dt = time.perf_counter() - t0
    return {"embed_n": len(texts), "embed_rps": len(texts) / dt}


def _perplexity(rows: list[dict], model: str) -> dict:
    from lmcritic.backends import ModelSpec, load_model
    from lmcritic.scorers.perplexity import PerplexityScorer

    lm = load_model(ModelSpec(model))
    sc = PerplexityScorer(lm)
    sc.score(["warm up"])
    t0 = time.perf_counter()
    sc.score([r["prompt"] for r in rows])
    dt = time.perf_counter() - t0
    return {"perplexity_model": model, "perplexity_n": len(rows), "perplexity_rps": len(rows) / dt}


def _markdown(res: dict, stamp: str) -> str:
    lines = [f"# lmcritic monitor throughput ({stamp})", "",
             f"{res['n']} requests, {res['cpus']} CPUs, torch threads {res['torch_threads']}; load average before "
             f"{[round(x, 2) for x in res['load_before']]}, after {[round(x, 2) for x in res['load_after']]}", "",
             f"- ingest: {res['ingest_rps']:.0f} requests/s",
             f"- full default scorer set ({len(res['scorers'])} scorers): **{res['score_rps']:.1f} requests/s** "
             f"({res['score_s']:.1f} s)",
             f"- MiniLM embeddings (drift sample): {res['embed_rps']:.1f} texts/s"]
    if "perplexity_rps" in res:
        lines.append(f"- input perplexity under {res['perplexity_model']}: {res['perplexity_rps']:.1f} requests/s")
    lines += [f"- peak RSS {res['peak_rss_mib']:.0f} MiB", "", "| scorer | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in sorted(res["per_scorer_s"].items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
