"""Sampled generation on the toxicity probe's workload: batched rows with a generator each vs one at a time.

Both sides run in one process on the same SmolLM2 object, interleaved (ABAB), on exactly the requests the
``safety.toxicity`` probe of the default scan sends (its prompts, k seeded samples each, its chunks of cases):
  * before — ``fast_paths=False``: ``generate`` on each sampled request alone after ``torch.manual_seed(seed)``
    (what lmcritic did up to b3604fc);
  * after  — the default: lmcritic's decoding loop over a batch, one seeded ``torch.Generator`` per row.
Timed: the backend's ``generate`` calls only (the probe's toxicity scorers are not run). Outputs are compared
request by request (same seed, same text?).

    .venv/bin/python benchmarks/bench_generate.py [--repeats 3] [--n-per-source 6] [--k 2] [--max-new-tokens 16]
Writes benchmarks/results/generate_<stamp>.json and generate_latest.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import _bench_common as common  # noqa: E402

SIDES = ("before", "after")


def workload(args) -> list[list]:
    """The toxicity probe's generate calls: one list of requests per chunk of cases, as ``score`` builds them."""
    from lmcritic.probes.safety.toxicity import Toxicity

    probe = Toxicity(n_per_source=args.n_per_source, k=args.k, max_new_tokens=args.max_new_tokens)
    calls = []

    class Capture:  # stands in for the model: keeps the requests, answers nothing
        def generate(self, reqs):
            calls.append(list(reqs))
            raise StopIteration

    cases = list(probe.cases())
    for at in range(0, len(cases), probe.chunk_size):
        try:
            probe.score(Capture(), cases[at : at + probe.chunk_size])
        except StopIteration:
            pass
    return calls


def run_side(be, calls: list[list]) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    out = [r for reqs in calls for r in be.generate(reqs)]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tokens = sum(r.n_new_tokens for r in out)
    return {"seconds": wall, "cpu_seconds": cpu, "tokens": tokens, "texts": [r.text for r in out]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="ABAB rounds (each side runs this many times)")
    ap.add_argument("--n-per-source", type=int, default=6, help="the default scan's toxicity config: 6")
    ap.add_argument("--k", type=int, default=2, help="samples per prompt (default scan: 2)")
    ap.add_argument("--max-new-tokens", type=int, default=16, help="default scan: 16")
    ap.add_argument("--model", default="smollm2-135m")
    args = ap.parse_args(argv)

    import torch

    from lmcritic.backends import load_model
    from lmcritic.backends.hf import HFBackend

    after = load_model(args.model)
    before = HFBackend.from_objects(after.model, after.tokenizer, batch_size=after.batch_size, fast_paths=False)
    sides = {"before": before, "after": after}
    calls = workload(args)
    for be in sides.values():  # warm-up: one short call each
        be.generate(calls[0][:2])
    res = {"stamp": common.stamp(), "argv": sys.argv[1:], "machine": common.machine(),
           "torch_threads": torch.get_num_threads(), "n_calls": len(calls),
           "n_requests": sum(len(c) for c in calls), "runs": []}
    for side in common.abab(args.repeats, SIDES):
        load = os.getloadavg()
        r = run_side(sides[side], calls)
        res["runs"].append({"side": side, "loadavg": load, **{k: v for k, v in r.items() if k != "texts"}})
        res.setdefault("texts", {}).setdefault(side, r["texts"])
        print(f"{side:>6}: {r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s cpu, {r['tokens']} tokens "
              f"(load {load[0]:.2f})", flush=True)
    res["machine"]["loadavg_end"] = os.getloadavg()
    summarize(res)
    path, md = common.write("generate", res, markdown(res))
    print(f"wrote {path} and {md}")
    return 0


def summarize(res: dict) -> None:
    by = {s: [r for r in res["runs"] if r["side"] == s] for s in SIDES}
    med = {s: {k: common.median([r[k] for r in by[s]]) for k in ("seconds", "cpu_seconds", "tokens")} for s in SIDES}
    texts = res.pop("texts")
    same = sum(a == b for a, b in zip(texts["before"], texts["after"]))
    res["summary"] = {
        "median": med, "tokens_per_s": {s: med[s]["tokens"] / med[s]["seconds"] for s in SIDES},
        "ratio_wall": med["before"]["seconds"] / med["after"]["seconds"],
        "ratio_cpu": med["before"]["cpu_seconds"] / med["after"]["cpu_seconds"],
        "identical_outputs": same, "n_outputs": len(texts["before"]),
        "differing": [{"i": i, "before": a, "after": b} for i, (a, b) in
                      enumerate(zip(texts["before"], texts["after"])) if a != b][:10]}


def markdown(res: dict) -> str:
    s, m = res["summary"], res["machine"]
    loads = [r["loadavg"] for r in res["runs"]]
    return "\n".join([
        f"# Sampled generation, toxicity workload — {res['stamp']}", "",
        "Raw numbers: `{json}`. Command: `.venv/bin/python benchmarks/bench_generate.py "
        + " ".join(res["argv"]) + "`", "",
        f"Machine: {m['cpu']}, nproc={m['nproc']}, torch threads={res['torch_threads']}; 1-min load average at each "
        f"run: {common.load_text(loads)} (end {m['loadavg_end'][0]:.2f}). Runs interleaved "
        f"{' '.join(r['side'] for r in res['runs'])}.", "",
        f"Work: the default scan's `safety.toxicity` requests, {res['n_requests']} sampled requests in "
        f"{res['n_calls']} calls (one per chunk of cases).", "",
        "| side | median wall s | median cpu s | tokens | tokens/s |", "|---|---:|---:|---:|---:|",
        *(f"| {side} | {s['median'][side]['seconds']:.2f} | {s['median'][side]['cpu_seconds']:.2f} | "
          f"{s['median'][side]['tokens']:.0f} | {s['tokens_per_s'][side]:.1f} |" for side in SIDES), "",
        f"Throughput ratio (after / before): **{s['ratio_wall']:.2f}×** wall, {s['ratio_cpu']:.2f}× CPU time "
        "(target ≥ 3×).", "",
        f"Outputs identical per seed: {s['identical_outputs']} of {s['n_outputs']}.", ""])


if __name__ == "__main__":
    raise SystemExit(main())
