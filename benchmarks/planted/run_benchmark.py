"""Planted-defect benchmark: does ``lmcritic diagnose`` name the cause we built into each model?

For every planted defect (``planted.py``): train the model on CPU, run the ``performance.sst2`` probe on
its evaluation set through the normal runner, diagnose the run with the training corpus, take the defect
that overlaps the planted cases most, and record where the planted cause ranks. Top-1 and top-2 accuracy
get Wilson 95% intervals. Results go to ``benchmarks/planted/results/planted_latest.{json,md}``.

    .venv/bin/python benchmarks/planted/run_benchmark.py [--only NAME ...] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bow  # noqa: E402
import planted  # noqa: E402

WORK = HERE.parent / ".work" / "planted"
RESULTS = HERE / "results"


def run_one(p: planted.Planted, seed: int) -> dict:
    """Train, run the probe, diagnose; returns the row for the results table."""
    work = WORK / f"{p.name}-seed{seed}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    if p.kind == "lm":
        runner, run_id, model, corpus, key, is_planted = _setup_lm(p, work, seed)
    else:
        runner, run_id, model, corpus, key, is_planted = _setup_bow(p, work, seed)
    train_s = time.perf_counter() - t0
    return _judge(p, runner, run_id, model, corpus, key, is_planted, work, seed, train_s)


def _setup_bow(p: planted.Planted, work: Path, seed: int) -> tuple:
    from lmcritic.backends import ModelSpec
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    eval_path = planted.write_tsv(p.eval, work / "eval.tsv")
    train_path = planted.write_tsv(p.train, work / "train.tsv", with_line=False)
    model = bow.BowSentiment(bow.train(p.train), name=f"planted-{p.name}")
    spec = RunSpec(model=ModelSpec(name=f"planted-{p.name}", backend="python"), name=f"planted {p.name}",
                   probes=(ProbeSpec("performance.sst2", {"data": str(eval_path), "n": None}),), seed=seed)
    runner = Runner(store_path=work / "runs.sqlite", cache_path=work / "cache.sqlite", progress=False)
    run_id = runner.run(spec, model=model).run_id
    ids = {planted.case_id(i) for i in p.planted}
    return runner, run_id, model, {"train": train_path}, "performance.sst2", lambda r: r.case_id in ids


def _setup_lm(p: planted.Planted, work: Path, seed: int) -> tuple:
    """A real Hugging Face model: tiny GPT-2 fine-tuned here, loaded by the hf backend from its folder."""
    import tinylm

    from lmcritic.backends import ModelSpec
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    lines = [t for t, _ in p.train]
    corpus = work / "finetune.txt"
    corpus.write_text("\n".join(dict.fromkeys(lines)) + "\n", encoding="utf-8")
    tinylm.train_lm(lines, work / "model", seed=seed, steps=800)
    config = {"corpus": str(corpus), "n_extract": None, "prefix_words": 6, "max_new_tokens": 24,
              "extract_words": 6, "members": None}
    spec = RunSpec(model=ModelSpec(name=str(work / "model")), name=f"planted {p.name}", seed=seed,
                   probes=(ProbeSpec("safety.memorization", config),))
    runner = Runner(store_path=work / "runs.sqlite", cache_path=work / "cache.sqlite", progress=False)
    run_id = runner.run(spec).run_id
    marks = [c[:24] for c in planted.CANARIES]
    return runner, run_id, None, {"reference": corpus}, "safety.memorization", \
        lambda r: any(m in json.dumps(r.input) for m in marks)


def _judge(p, runner, run_id, model, corpus, key, is_planted, work: Path, seed: int, train_s: float) -> dict:
    from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run
    from lmcritic.store.cache import CachedBackend

    t1 = time.perf_counter()
    cached = CachedBackend(model, work / "cache.sqlite") if model is not None else None
    graph = diagnose_run(runner.store, run_id, cached, config=DiagnoseConfig(seed=seed),
                         cache_path=work / "cache.sqlite", **corpus)
    diag_s = time.perf_counter() - t1
    records = [r for r in runner.store.records(run_id, key) if r.passed is not None]
    planted_fail = {r.case_id for r in records if is_planted(r) and r.passed is False}
    node = max(graph.defects, key=lambda n: _jaccard(set(n.defect.case_ids), planted_fail), default=None)
    causes = [c.cause for c in node.causes] if node else []
    rank = causes.index(p.cause) + 1 if p.cause in causes else None
    return {
        "name": p.name, "planted_cause": p.cause, "description": p.description, "run_id": run_id, "probe": key,
        "model_kind": "hf tiny GPT-2" if p.kind == "lm" else "bag-of-words LR + unigram LM",
        "accuracy_clean": _acc([r for r in records if not is_planted(r)]),
        "accuracy_planted": _acc([r for r in records if is_planted(r)]), "n_planted_failures": len(planted_fail),
        "defect": None if node is None else {"id": node.defect.id, "slice": node.defect.slice,
                                             "n_failures": node.defect.n_failures,
                                             "overlap": _jaccard(set(node.defect.case_ids), planted_fail)},
        "ranking": [{"cause": c.cause, "verdict": c.verdict, "confidence": c.confidence, "summary": c.summary}
                    for c in (node.causes if node else ())],
        "rank": rank, "top1": rank == 1, "top2": rank is not None and rank <= 2,
        "train_s": round(train_s, 2), "diagnose_s": round(diag_s, 2), "extra_model_calls": graph.tests_run,
    }


def _acc(records) -> float:
    return round(sum(bool(r.passed) for r in records) / len(records), 4) if records else float("nan")


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def summarize(rows: list[dict]) -> dict:
    from lmcritic import stats

    out = {}
    for key in ("top1", "top2"):
        k, n = sum(r[key] for r in rows), len(rows)
        lo, hi = stats.wilson(k, n)
        out[key] = {"k": k, "n": n, "accuracy": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi}
    return out


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = ["# Planted-defect benchmark", "",
             f"Run {result['created']} (seeds {result['seeds']}); model: bag-of-words "
             "logistic regression + unigram LM trained per defect (`benchmarks/planted/bow.py`), "
             "probe `performance.sst2` "
             "on each defect's evaluation set, diagnosis with `--train` = its training set; `canary_lm`: a tiny "
             "GPT-2 fine-tuned here (`tinylm.py`, hf backend), probe `safety.memorization` (extraction), diagnosis "
             "with `--reference` = its fine-tuning data. Pass/fail columns: share of clean / planted cases passed.",
             "",
             f"- **top-1 accuracy {s['top1']['k']}/{s['top1']['n']}** (Wilson 95% CI {s['top1']['ci_low']:.2f}–"
             f"{s['top1']['ci_high']:.2f})",
             f"- **top-2 accuracy {s['top2']['k']}/{s['top2']['n']}** (Wilson 95% CI {s['top2']['ci_low']:.2f}–"
             f"{s['top2']['ci_high']:.2f})", "",
             "| planted | seed | cause | pass clean / planted | defect (slice) | rank | 1st | 2nd | train s "
             "| diagnose s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["models"]:
        rk = r["ranking"]
        first = f"{rk[0]['cause']} ({rk[0]['verdict']}, {rk[0]['confidence']:.2f})" if rk else "-"
        second = f"{rk[1]['cause']} ({rk[1]['verdict']}, {rk[1]['confidence']:.2f})" if len(rk) > 1 else "-"
        d = r["defect"] or {}
        lines.append(f"| {r['name']} | {r['seed']} | {r['planted_cause']} | "
                     f"{r['accuracy_clean']:.2f} / {r['accuracy_planted']:.2f} "
                     f"| {d.get('id', '-')} ({d.get('slice', '-')}, {d.get('n_failures', 0)} failures) | {r['rank']} "
                     f"| {first} | {second} | {r['train_s']} | {r['diagnose_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=sorted(planted.BUILDERS), help="run only these planted defects")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="one trial per planted defect and seed")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    rows = []
    for seed in args.seeds:
        for name in args.only or planted.BUILDERS:
            t = time.perf_counter()
            row = run_one(planted.BUILDERS[name](seed), seed)
            row["seed"], row["total_s"] = seed, round(time.perf_counter() - t, 2)
            rows.append(row)
            print(f"seed {seed} {name:18s} planted={row['planted_cause']:24s} rank={row['rank']} "
                  f"first={row['ranking'][0]['cause'] if row['ranking'] else '-'} ({row['total_s']} s)", flush=True)
    result = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "seeds": args.seeds, "models": rows,
              "summary": summarize(rows)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "planted_latest.json").write_text(json.dumps(result, indent=2))
    (args.out / "planted_latest.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
