"""lmcritic's DeepWordBug-style greedy attack vs TextAttack's, on the same classifier, sentences and constraints.

    .venv/bin/python benchmarks/bench_textattack.py [--n 50] [--budget 500] [--skip-textattack]

Victim: a small BERT (2 layers, hidden 128) trained from scratch on SST-2 train on CPU (``_bench_ta_classifier.py``).
Sentences: ``n`` SST-2 dev sentences from ``--offset`` (0). Constraints on both sides: no repeated word, TextFooler's
stopword list, character Levenshtein ≤ 30; per-example budget ``--budget``; untargeted label flip.
TextAttack runs in its own venv (``benchmarks/.work/venv-textattack``, see README) through
``_bench_ta_textattack.py``; besides its own recipe it also scores exactly lmcritic's candidate sets (all
edits of a word, or the seeded sample of 4), so only the search differs. Writes
``benchmarks/results/textattack_<stamp>.json`` and ``textattack_latest.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
TA_PY = WORK / "venv-textattack" / "bin" / "python"
DATA = Path(os.environ.get("LMCRITIC_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))


def ours(model_dir: Path, rows: list, budget: int, seed: int, **options) -> list[dict]:
    from lmcritic.attacks import ClassifierVictim, Example, UntargetedFlip, build_recipe
    from lmcritic.backends.hf import HFBackend

    be = HFBackend(model=str(model_dir), batch_size=32)
    attack = build_recipe("deepwordbug", UntargetedFlip(ClassifierVictim()), budget=budget, seed=seed, **options)
    attack.report_similarity = False
    out = []
    for text, label in rows:
        started = time.perf_counter()
        r = attack.attack(be, Example(text, label=["negative", "positive"][label]))
        out.append({"text": text, "label": label, "status": r.status.value, "queries": r.queries,
                    "adversarial": r.adversarial, "seconds": time.perf_counter() - started})
    return out


def textattack(model_dir: Path, sentences: Path, wir: str, k: int, budget: int, seed: int) -> list[dict] | str:
    """TextAttack's DeepWordBug; ``k`` = 0: its own candidates, else lmcritic's (all edits, or a sample of k)."""
    if not TA_PY.is_file():
        return f"no TextAttack venv at {TA_PY}"
    out = WORK / f"ta_{wir}_{k}.jsonl"
    cmd = [str(TA_PY), str(ROOT / "benchmarks" / "_bench_ta_textattack.py"), "--model", str(model_dir),
           "--sentences", str(sentences), "--out", str(out), "--wir", wir, "--shared", str(k),
           "--budget", str(budget), "--seed", str(seed)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TA_CACHE_DIR": str(WORK / "ta-cache"), "NLTK_DATA": str(nltk_stopwords())}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        return f"TextAttack failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
    return [json.loads(line) for line in out.read_text().splitlines()]


def nltk_stopwords() -> Path:
    """TextAttack builds an NLTK-stopword constraint at import; NLTK's data cannot be downloaded here, so an
    NLTK-shaped ``corpora/stopwords/english`` is written from lmcritic's list (the one both sides use)."""
    from lmcritic.attacks.constraints import STOPWORDS

    root = WORK / "nltk_data"
    path = root / "corpora" / "stopwords" / "english"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sorted(STOPWORDS)) + "\n")
    return root


def summary(rows: list[dict]) -> dict:
    from lmcritic import stats

    attacked = [r for r in rows if r["status"] != "skipped"]
    won = [r for r in attacked if r["status"] == "succeeded"]
    rate = stats.proportion([r["status"] == "succeeded" for r in attacked])
    q = stats.mean([r["queries"] for r in attacked]) if attacked else None
    return {"n": len(rows), "attacked": len(attacked), "succeeded": len(won), "budget_hit": sum(
        r["status"] == "budget" for r in attacked), "success_rate": [rate.value, rate.ci_low, rate.ci_high],
        "queries_per_attacked": [q.value, q.ci_low, q.ci_high] if q else None,
        "queries_per_success": sum(r["queries"] for r in won) / len(won) if won else None,
        "seconds": sum(r["seconds"] for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--budget", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-steps", type=int, default=1000, help="victim training batches of 64 (fixed: the "
                    "same victim on any machine)")
    ap.add_argument("--offset", type=int, default=0, help="skip this many dev sentences (a held-out slice)")
    ap.add_argument("--skip-textattack", action="store_true")
    args = ap.parse_args()
    import torch
    from _bench_ta_classifier import sst2, train

    torch.set_num_threads(1)
    model_dir = WORK / f"ta-classifier-{args.train_steps}"
    trained = train(model_dir, DATA / "sst2_train.tsv", DATA / "sst2_dev.tsv", steps=args.train_steps)
    rows = sst2(DATA / "sst2_dev.tsv", limit=args.n, skip=args.offset)
    sentences = WORK / "ta_sentences.json"
    sentences.write_text(json.dumps(rows))
    runs: dict[str, object] = {}
    for name, opts in OURS.items():
        runs[name] = ours(model_dir, rows, args.budget, args.seed, **opts)
    if not args.skip_textattack:
        for name, (wir, k) in THEIRS.items():
            runs[name] = textattack(model_dir, sentences, wir, k, args.budget, args.seed)
    report(args, trained, runs)


# lmcritic's recipe as shipped, then the same search black-box, then TextAttack's search re-implemented
OURS = {
    "lmcritic deepwordbug (guided: gradient ranking, 6 best-estimated of all edits/word)": {},
    "lmcritic deepwordbug (guided, black-box: deletion ranking, 6 sampled of all edits/word)": {"importance": "loo"},
    "lmcritic greedy score-all (gradient ranking; 4 edits/word)": {"search": "beam", "max_candidates": 4},
    "lmcritic greedy score-all (deletion ranking; 4 edits/word)": {"search": "beam", "max_candidates": 4,
                                                                   "importance": "loo"},
}
# TextAttack's recipe (its own candidates), then on exactly lmcritic's candidate sets: all edits, a sample of 4
THEIRS = {
    "TextAttack DeepWordBug (wir=unk, its own candidates)": ("unk", 0),
    "TextAttack DeepWordBug (wir=unk, lmcritic's all edits)": ("unk", 50),
    "TextAttack DeepWordBug (wir=gradient, lmcritic's all edits)": ("gradient", 50),
    "TextAttack DeepWordBug (wir=unk, lmcritic's 4 edits/word)": ("unk", 4),
    "TextAttack DeepWordBug (wir=gradient, lmcritic's 4 edits/word)": ("gradient", 4),
}


def report(args: argparse.Namespace, trained: dict, runs: dict) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    table = {k: (summary(v) if isinstance(v, list) else {"error": v}) for k, v in runs.items()}
    res = ROOT / "benchmarks" / "results"
    res.mkdir(exist_ok=True)
    (res / f"textattack_{stamp}.json").write_text(json.dumps(
        {"args": vars(args), "classifier": trained, "summary": table, "runs": runs}, indent=1))
    lines = [f"# lmcritic vs TextAttack: DeepWordBug-style attack ({stamp})", "",
             f"Victim: {trained.get('model', 'BERT')} trained {trained['steps']} steps on SST-2 train "
             f"(dev accuracy {trained['dev_accuracy']:.3f}); {args.n} SST-2 dev sentences from #{args.offset}; "
             f"budget {args.budget} "
             "queries/example; constraints: no repeat, stopwords, Levenshtein ≤ 30.", "",
             "| attack | attacked | success rate [95% CI] | queries/attacked [95% CI] | queries/success | time (s) |",
             "|---|---|---|---|---|---|"]
    for k, s in table.items():
        if "error" in s:
            lines.append(f"| {k} | — | {s['error']} | | | |")
            continue
        sr, q = s["success_rate"], s["queries_per_attacked"] or [float("nan")] * 3
        qs = f"{s['queries_per_success']:.1f}" if s["queries_per_success"] else "—"
        lines.append(f"| {k} | {s['attacked']} | {sr[0]:.3f} [{sr[1]:.3f}, {sr[2]:.3f}] | {q[0]:.1f} [{q[1]:.1f}, "
                     f"{q[2]:.1f}] | {qs} | {s['seconds']:.0f} |")
    (res / "textattack_latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
