"""Speed of our attributions against Captum's defaults and against one forward pass.

For each model and SST-2 prompt: Captum's default ``LayerIntegratedGradients`` (n_steps=50, gauss-legendre, all
steps in one batch) gives a convergence delta D; our IG refines nested Clenshaw–Curtis levels (4, 8, 16, ...
intervals, every point computed once) until |delta| <= |D| and batches points by a token budget; its "steps"
are the gradient evaluations it made. We report both times, the steps each used and the ratio,
plus gradient × input and attention (weights, rollout) as multiples of one forward pass of the same score.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_captum.py [--models tiny smollm2] [--inputs 3]
Writes benchmarks/results/bench_captum.json and .md. Timings are medians of ``--repeats`` runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _load(name: str):
    from lmcritic.backends import load_model

    if name == "smollm2":
        return load_model("smollm2-135m")
    sys.path.insert(0, str(HERE.parent / "tests"))
    from conftest import build_tiny_causal
    from lmcritic.backends.hf import HFBackend

    return HFBackend(model=str(build_tiny_causal(Path(tempfile.mkdtemp()) / "tiny")))


def _targets(n: int):
    from lmcritic.datasets import packaged, read_rows
    from lmcritic.interpret.types import Target

    out = []
    for _, row in list(read_rows(str(packaged("sst2_dev_sample.tsv")), required=("label",)))[:n]:
        text = (row.get("sentence") or row.get("text")).strip()
        ctx = f"Review: {text}\nSentiment:"
        out.append(Target(ctx, " positive", " negative", span=(8, 8 + len(text))))
    return out


def bench_one(be, target, repeats: int) -> dict:
    import torch
    from captum.attr import LayerIntegratedGradients

    from lmcritic.interpret import attributor
    from lmcritic.interpret._whitebox import prepare

    prep = prepare(be, target)

    def forward():
        with torch.no_grad():
            return prep.forward_ids(prep.ids)

    def captum_default():
        lig = LayerIntegratedGradients(prep.forward_ids, prep.layer)
        with prep.wb.gradients():
            return lig.attribute(prep.ids, baselines=prep.baseline, return_convergence_delta=True)

    t_fwd, _ = _median_time(forward, repeats)
    t_cap, (_, delta) = _median_time(captum_default, repeats)
    d = abs(float(delta[0]))
    ours = attributor("integrated_gradients", tol=1e-12, abs_tol=max(d, 1e-6), max_steps=128)
    t_ours, ex = _median_time(lambda: ours(be, target), repeats)
    fixed = attributor("integrated_gradients", n_steps=ex.n_steps)
    t_fixed, _ = _median_time(lambda: fixed(be, target), repeats)
    row = {"tokens": int(prep.ids.shape[1]), "forward_s": t_fwd, "captum_default_s": t_cap, "captum_delta": d,
           "ours_adaptive_s": t_ours, "ours_steps": ex.details["evaluations"], "ours_delta": abs(ex.delta),
           "ours_converged": ex.details["converged"], "ours_fixed_steps_s": t_fixed,
           "speedup_adaptive": t_cap / t_ours, "speedup_known_steps": t_cap / t_fixed}
    for name in ("grad_x_input", "attention", "attention_rollout"):
        t, _ = _median_time(lambda name=name: attributor(name)(be, target), repeats)
        row[f"{name}_s"], row[f"{name}_x_forward"] = t, t / t_fwd
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["tiny", "smollm2"])
    ap.add_argument("--inputs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "bench_captum"))
    args = ap.parse_args(argv)
    import torch

    torch.manual_seed(0)
    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "models": {}}
    for name in args.models:
        be = _load(name)
        rows = [bench_one(be, t, args.repeats) for t in _targets(args.inputs)]
        results["models"][name] = {"rows": rows, "summary": _summary(rows)}
        print(name, json.dumps(results["models"][name]["summary"], indent=1), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(results, indent=2))
    Path(args.out + ".md").write_text(_markdown(results))
    return 0


def _summary(rows: list[dict]) -> dict:
    keys = ("speedup_adaptive", "speedup_known_steps", "ours_steps", "captum_delta", "ours_delta",
            "grad_x_input_x_forward", "attention_x_forward", "attention_rollout_x_forward", "forward_s",
            "captum_default_s", "ours_adaptive_s")
    return {k: statistics.median(r[k] for r in rows) for k in keys}


def _markdown(results: dict) -> str:
    lines = ["# Attribution speed (median over inputs)", "",
             f"torch {results['torch']}, {results['threads']} thread(s), CPU.", "",
             "| model | Captum IG default (50 steps) | its delta | ours (adaptive) | steps | delta | speed-up | "
             "speed-up, steps known | grad×input / forward | attention / forward | rollout / forward |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in results["models"].items():
        s = m["summary"]
        lines.append(f"| {name} | {s['captum_default_s']:.3f} s | {s['captum_delta']:.3g} | "
                     f"{s['ours_adaptive_s']:.3f} s "
                     f"| {s['ours_steps']:g} | {s['ours_delta']:.3g} | {s['speedup_adaptive']:.2f}× | "
                     f"{s['speedup_known_steps']:.2f}× | {s['grad_x_input_x_forward']:.1f}× | "
                     f"{s['attention_x_forward']:.1f}× | {s['attention_rollout_x_forward']:.1f}× |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
