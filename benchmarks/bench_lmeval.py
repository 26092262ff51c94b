"""lmcritic vs lm-evaluation-harness on identical work: parity, throughput ratio and the fp32 FLOP ceiling.

Run from the repo root after ``bash benchmarks/setup.sh``:
    .venv-bench/bin/python benchmarks/bench_lmeval.py            # full run (~10-15 min on 2 quiet cores)
    .venv-bench/bin/python benchmarks/bench_lmeval.py --quick    # smoke run (~3 min)
See benchmarks/README.md for what is timed and how. Not a test: it only measures and reports.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1",
               "HF_DATASETS_CACHE": str(HERE / ".work" / "hf_datasets")}.items():
    os.environ.setdefault(_k, _v)

import _bench_data as data  # noqa: E402
import _bench_flops as fl  # noqa: E402
from _bench_parity import TOL, mc_metrics, ppl_metrics, request_parity, softmax_precision  # noqa: E402
from _bench_report import print_table, write_markdown  # noqa: E402

TARGETS = {"mc_ratio": 5.0, "ppl_ratio": 1.0, "flop_fraction": 0.70}  # MC: issue 20 asks >= 5x (issue 1: 2x)


@dataclass
class Timed:
    seconds: dict[str, float] = field(default_factory=dict)
    captured: dict[str, list] = field(default_factory=dict)  # method -> [(args, result)]
    metrics: dict[str, float] = field(default_factory=dict)
    cpu_share: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


@contextmanager
def _clock(rec: Timed, name: str):
    """Wall seconds of a scoring call, and the CPU share it got: process CPU time / (wall × torch threads).
    A share well under 1 means other processes took the cores and the timing is noisy."""
    import torch

    wall, cpu = time.perf_counter(), time.process_time()
    yield
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rec.seconds[name] = rec.seconds.get(name, 0.0) + wall
    rec.cpu_share[name] = cpu / max(wall, 1e-9) / torch.get_num_threads()


# -- lm-eval ----------------------------------------------------------------------------------------
def _instrument(lm, rec: Timed) -> None:
    """Time and record lm-eval's two scoring entry points on this instance (the evaluator calls them once
    per request type with every request of every task); everything else (task building, metrics) is untimed."""
    for name in ("loglikelihood", "loglikelihood_rolling"):
        orig = getattr(lm, name)

        def timed(requests, *a, _orig=orig, _name=name, **kw):
            with _clock(rec, _name):
                out = _orig(requests, *a, **kw)
            rec.captured.setdefault(_name, []).extend(zip([r.args for r in requests], out))
            return out

        setattr(lm, name, timed)


def run_lmeval(model_dir: Path, tasks: list[str], files: data.TaskFiles, args, limit: int | None = None) -> Timed:
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    model_args = f"pretrained={model_dir},dtype=float32,device=cpu,max_length={args.window}"
    # exactly what simple_evaluate(model="hf", model_args=...) does, done here so the load stays untimed
    lm = get_model("hf").create_from_arg_string(
        model_args, {"batch_size": args.batch_size, "max_batch_size": None, "device": None})
    lm._model_call(torch.tensor([[1, 2, 3, 4]]))  # warm-up (one tiny forward), as for lmcritic
    rec = Timed(extra={"model_args": model_args, "attn_implementation": lm.model.config._attn_implementation})
    _instrument(lm, rec)
    t = time.perf_counter()
    out = simple_evaluate(model=lm, tasks=tasks, batch_size=args.batch_size, bootstrap_iters=0, log_samples=False,
                          limit=limit, verbosity="WARNING",
                          task_manager=TaskManager(include_path=str(files.include_dir), include_defaults=False))
    rec.extra["simple_evaluate_seconds"] = time.perf_counter() - t
    for task in tasks:
        for key, val in out["results"][task].items():
            if key.endswith(",none") and isinstance(val, (int, float)):
                rec.metrics[key.split(",")[0]] = float(val)
    del lm
    return rec


# -- lmcritic ---------------------------------------------------------------------------------------
def load_lmcritic(model_dir: Path, args):
    from lmcritic.backends.hf import HFBackend
    from lmcritic.requests import LoglikelihoodRequest, RollingRequest

    be = HFBackend(model=str(model_dir), batch_size=args.batch_size)
    be.loglikelihood([LoglikelihoodRequest("Review: fine\nAnswer:", " positive")])  # warm-up, as for lm-eval
    be.rolling_logprobs([RollingRequest("a short warm-up text", args.window, args.window)])
    return be


def mc_requests(docs: list[dict]):
    from lmcritic.requests import LoglikelihoodRequest

    return [LoglikelihoodRequest(d["context"], " " + c) for d in docs for c in d["choices"]]  # lm-eval: " " + choice


def run_lmcritic(be, mc: list[dict], ppl: list[dict], args) -> Timed:
    from lmcritic.requests import RollingRequest

    model = getattr(be, "model", None)
    attn = getattr(getattr(model, "config", None), "_attn_implementation", None)
    rec = Timed(extra={"describe": _safe_describe(be), "attn_implementation": attn})
    if mc:
        reqs = mc_requests(mc)
        with _clock(rec, "loglikelihood"):
            res = be.loglikelihood(reqs)
        rec.captured["loglikelihood"] = [((r.context, r.continuation), x.logprob) for r, x in zip(reqs, res)]
        rec.metrics.update(mc_metrics(mc, [x.logprob for x in res]))
    if ppl:
        reqs = [RollingRequest(d["text"], args.window, args.window) for d in ppl]
        with _clock(rec, "loglikelihood_rolling"):
            res = be.rolling_logprobs(reqs)
        rec.captured["loglikelihood_rolling"] = [((r.text,), x.total) for r, x in zip(reqs, res)]
        rec.extra["rolling_tokens"] = [x.n_tokens for x in res]
        rec.metrics.update(ppl_metrics(ppl, [x.total for x in res]))
    return rec


def run_lmcritic_tasks(be, files: data.TaskFiles, args) -> Timed:
    """lmcritic's side through the task specs the lm-eval YAML was generated from: ``performance.task`` builds
    the cases from the spec, scores them (timed: the backend calls plus record building) and its findings give
    the metrics. The requests are read back from the records for the per-request comparison."""
    from lmcritic.probes.performance.task import TaskProbe

    rec = Timed(extra={"describe": _safe_describe(be), "task_specs": {k: str(v) for k, v in files.specs.items()}})
    for name, method in ((data.MC_TASK, "loglikelihood"), (data.PPL_TASK, "loglikelihood_rolling")):
        probe = TaskProbe(task=str(files.specs[name]))
        cases = probe.cases()
        with _clock(rec, method):
            records = probe.score(be, cases)
        rec.metrics.update({f.name: f.estimate.value for f in probe.summarize(records) if f.name in probe.task.metrics})
        rec.extra[f"{name}_fingerprint"] = probe.task.fingerprint()
        if method == "loglikelihood":
            rec.captured[method] = [((r.input["prompt"], cont), ll) for r in records
                                    for cont, ll in zip(r.input["continuations"], r.output["choice_logprobs"])]
        else:
            rec.captured[method] = [((r.input["text"],), -r.scores["nll"]) for r in records]
            rec.extra["rolling_tokens"] = [int(r.scores["n_tokens"]) for r in records]
    return rec


def _safe_describe(be) -> dict:
    try:
        return json.loads(json.dumps(be.describe(), default=str))
    except Exception as err:  # describe() is informational only
        return {"error": repr(err)}


# -- sections ---------------------------------------------------------------------------------------
def compare(model_dir: Path, files: data.TaskFiles, args) -> dict:
    """lm-eval and lmcritic on the same MC + perplexity data with the same model dir and batch size."""
    runs: dict[str, Timed] = {}
    order = ["lmeval", "lmcritic"] if args.order == "lmeval-first" else ["lmcritic", "lmeval"]
    for who in order:
        print(f"[{who}] scoring {len(files.mc_docs)} MC docs and {len(files.ppl_docs)} perplexity docs ...", flush=True)
        if who == "lmeval":
            runs[who] = run_lmeval(model_dir, [data.MC_TASK, data.PPL_TASK], files, args)
        else:
            be = load_lmcritic(model_dir, args)
            runs[who] = run_lmcritic_tasks(be, files, args)
            be.close()
    ours, theirs = runs["lmcritic"], runs["lmeval"]
    diffs = {k: abs(ours.metrics[k] - theirs.metrics[k]) for k in ours.metrics if k in theirs.metrics}
    rel = {k: v / max(abs(theirs.metrics[k]), 1e-12) for k, v in diffs.items()}
    n_req = len(ours.captured.get("loglikelihood", []))
    n_tok = sum(ours.extra.get("rolling_tokens", []))
    sec = {w: runs[w].seconds for w in runs}
    return {
        "model_dir": str(model_dir), "order": order,
        "metrics": {"lmcritic": ours.metrics, "lmeval": theirs.metrics, "abs_diff": diffs, "rel_diff": rel,
                    "parity_ok": all(v <= TOL for v in diffs.values()),
                    "parity_rel_ok": all(v <= TOL for v in rel.values())},
        "softmax_precision": softmax_precision(model_dir, files.ppl_docs[0]["text"], args.window),
        "requests": request_parity(ours, theirs),
        "seconds": sec,
        "cpu_share": {w: runs[w].cpu_share for w in runs},
        "mc": {"docs": len(files.mc_docs), "requests": n_req,
               "lmeval_req_per_s": n_req / sec["lmeval"]["loglikelihood"],
               "lmcritic_req_per_s": n_req / sec["lmcritic"]["loglikelihood"],
               "ratio": sec["lmeval"]["loglikelihood"] / sec["lmcritic"]["loglikelihood"]},
        "ppl": {"docs": len(files.ppl_docs), "tokens": n_tok,
                "lmeval_tok_per_s": n_tok / sec["lmeval"]["loglikelihood_rolling"],
                "lmcritic_tok_per_s": n_tok / sec["lmcritic"]["loglikelihood_rolling"],
                "ratio": sec["lmeval"]["loglikelihood_rolling"] / sec["lmcritic"]["loglikelihood_rolling"]},
        "lmeval_extra": theirs.extra, "lmcritic_extra": ours.extra,
    }


def flop_section(model_dir: Path, files: data.TaskFiles, args) -> dict:
    """Achieved useful FLOP/s of lmcritic on the 124M GPT-2 against the measured fp32 matmul ceiling."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    shape = fl.model_shape(model)
    peaks = [fl.matmul_peak()]
    bare = fl.bare_forward(model, args.batch_size, args.window)
    del model
    mc, ppl = files.mc_docs[: args.flop_mc_n], files.ppl_docs[: args.flop_ppl_n]
    print(f"[flops] lmcritic on GPT-2 124M: {len(ppl)} perplexity docs, {len(mc)} MC docs ...", flush=True)
    be = load_lmcritic(model_dir, args)
    rec = run_lmcritic(be, mc, ppl, args)
    be.close()
    peaks.append(fl.matmul_peak())  # again after: the ceiling is the best of both (the machine is shared)
    peak = {"before": peaks[0], "after": peaks[1],
            "gflops_by_size": {k: max(p["gflops_by_size"][k] for p in peaks) for k in peaks[0]["gflops_by_size"]},
            "ceiling_gflops": max(p["ceiling_gflops"] for p in peaks)}
    roll_flops = sum(fl.rolling_flops(shape, n, args.window) for n in rec.extra["rolling_tokens"])
    mc_fl = sum(fl.mc_flops(shape, *_mc_lens(tok, d)) for d in mc)
    out = {"model_dir": str(model_dir), "shape": shape.as_dict(), "peak": peak, "bare_hf_forward": bare,
           "rolling": _achieved(roll_flops, rec.seconds["loglikelihood_rolling"], peak),
           "loglikelihood": _achieved(mc_fl, rec.seconds["loglikelihood"], peak)}
    out["rolling"]["tokens"] = sum(rec.extra["rolling_tokens"])
    out["cpu_share"] = rec.cpu_share
    if not args.no_flop_lmeval:
        print("[flops] lm-eval reference on the same perplexity docs ...", flush=True)
        ref = run_lmeval(model_dir, [data.PPL_TASK], files, args, limit=len(ppl))
        out["lmeval_rolling"] = _achieved(roll_flops, ref.seconds["loglikelihood_rolling"], peak)
        out["lmeval_cpu_share"] = ref.cpu_share
    return out


def _mc_lens(tok, doc: dict) -> tuple[int, list[int]]:
    """Context and continuation token counts as lm-eval's _encode_pair splits them."""
    ctx = tok(doc["context"], add_special_tokens=False)["input_ids"]
    conts = [len(tok(doc["context"] + " " + c, add_special_tokens=False)["input_ids"]) - len(ctx)
             for c in doc["choices"]]
    return len(ctx), conts


def _achieved(flops: int, seconds: float, peak: dict) -> dict:
    g = flops / seconds / 1e9
    return {"useful_gflop": flops / 1e9, "seconds": seconds, "gflops": g,
            "fraction_of_ceiling": g / peak["ceiling_gflops"]}


def profile_section(model_dir: Path, files: data.TaskFiles, args, stamp: str) -> str:
    """torch.profiler over a small lmcritic MC + rolling call; the op table goes to results/profile_*.txt."""
    from torch.profiler import ProfilerActivity, profile

    be = load_lmcritic(model_dir, args)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        run_lmcritic(be, files.mc_docs[:8], files.ppl_docs[:2], args)
    be.close()
    path = Path(args.results) / f"profile_{stamp}_{model_dir.name}.txt"
    path.write_text(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30), encoding="utf-8")
    return str(path)


# -- report -----------------------------------------------------------------------------------------
def machine_info() -> dict:
    import lm_eval
    import torch
    import transformers

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(), "cpu": cpu,
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "lm_eval": getattr(lm_eval, "__version__", "?"),
            "platform": platform.platform(), "loadavg_start": os.getloadavg(), "lmcritic_hf_source": _hf_source()}


def _hf_source() -> dict:
    """Which hf backend code was measured (it changes fast): sha256 of its files and their newest mtime."""
    import hashlib

    import lmcritic.backends

    here = Path(lmcritic.backends.__file__).parent
    files = sorted(f for f in [*here.glob("*hf*.py"), here / "_batching.py"] if f.exists())
    h = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    newest = max((f.stat().st_mtime for f in files), default=0)
    return {"sha256_16": h, "files": [f.name for f in files],
            "newest_mtime": datetime.fromtimestamp(newest).isoformat()}


def write_results(res: dict, args, stamp: str) -> Path:
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"lmeval_{stamp}.json"
    path.write_text(json.dumps(res, indent=1, default=str), encoding="utf-8")
    return path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small data: a smoke run of a couple of minutes")
    p.add_argument("--mc-n", type=int, default=100, help="multiple-choice docs (4 choices each)")
    p.add_argument("--ppl-n", type=int, default=20, help="perplexity documents")
    p.add_argument("--doc-tokens", type=int, default=1500, help="approximate tokens per perplexity document")
    p.add_argument("--shots", type=int, default=8, help="few-shot examples in each MC context")
    p.add_argument("--window", type=int, default=512, help="rolling window = stride = lm-eval max_length")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--flop-mc-n", type=int, default=32, help="MC docs for the GPT-2 FLOP measurement")
    p.add_argument("--flop-ppl-n", type=int, default=8, help="perplexity docs for the GPT-2 FLOP measurement")
    p.add_argument("--order", choices=("lmeval-first", "lmcritic-first"), default="lmeval-first")
    p.add_argument("--skip-flops", action="store_true")
    p.add_argument("--no-flop-lmeval", action="store_true", help="skip lm-eval's reference run on GPT-2")
    p.add_argument("--profile", action="store_true", help="also write torch.profiler tables of lmcritic calls")
    p.add_argument("--work", default=str(HERE / ".work"))
    p.add_argument("--results", default=str(HERE / "results"))
    a = p.parse_args(argv)
    if a.quick:
        a.mc_n, a.ppl_n, a.flop_mc_n, a.flop_ppl_n = min(a.mc_n, 16), min(a.ppl_n, 4), 8, 2
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    from transformers import AutoTokenizer

    from lmcritic.backends._cpu_malloc import reuse_freed_memory

    # lmcritic's hf backend turns on glibc block reuse for the whole process; turn it on before either tool runs
    # so lm-eval, in the same process, gets the same allocator whichever side goes first.
    malloc_reuse = reuse_freed_memory()

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(args.work)
    info = machine_info()
    smol = data.smollm2_dir(work)
    gpt2 = data.gpt2_dir(work, smol)
    tok = AutoTokenizer.from_pretrained(smol)
    files = data.write_tasks(work, data.mc_docs(args.mc_n, args.shots), data.ppl_docs(args.ppl_n, args.doc_tokens, tok),
                             args.window)
    longest = max((c + max(k) for c, k in (_mc_lens(tok, d) for d in files.mc_docs)), default=0)
    if longest > args.window + 1:  # lm-eval would left-truncate at max_length; lmcritic only at the model's limit
        raise SystemExit(f"an MC request has {longest} tokens, over --window {args.window}: lower --shots")
    info["malloc_reuse"] = malloc_reuse
    res = {"stamp": stamp, "argv": sys.argv[1:], "args": vars(args), "machine": info, "targets": TARGETS, "tol": TOL}
    t0 = time.perf_counter()
    res["compare"] = compare(smol, files, args)
    if not args.skip_flops:
        res["flops"] = flop_section(gpt2, files, args)
    if args.profile:
        res["profiles"] = [profile_section(m, files, args, stamp) for m in (smol, gpt2)]
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["wall_seconds"] = time.perf_counter() - t0
    print_table(res)
    path = write_results(res, args, stamp)
    md = write_markdown(res, Path(args.results) / "lmeval_latest.md", path.name)
    print(f"\nwrote {path} and {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
