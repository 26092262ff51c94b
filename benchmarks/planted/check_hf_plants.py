"""Does a planted model really have its defect? Checked on the model directly, before the diagnosis is judged.

For every cause x seed whose fine-tuned model is cached (``benchmarks/.work/hf_models``) and whose plant marks
evaluation rows (register: the slang half; label_noise: rows with the phenomenon; typos: the misspelt half;
memorized: the memorised rows), the model's error on the marked rows against the rest: risk difference with
Newcombe's interval and a one-sided Fisher p. For label_noise also the share of its own training labels the
model contradicts with and without the phenomenon (the signal the diagnosis tests). Writes
``benchmarks/results/planted_hf_plant_check.{json,md}``.

    LMCRITIC_SHARED_DATA=/path/to/shared/data .venv/bin/python benchmarks/planted/check_hf_plants.py --seeds 0 1

``--from-trials`` runs no model: it reads each trial's stored scan (``run_hf.py``'s ``hf_trials/CAUSE-sSEED``,
the ``performance.sst2`` records of the same evaluation rows) and, for label_noise, the training-label
disagreement the diagnosis measured (its evidence), so the check costs nothing after the trials.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hf_plants  # noqa: E402

ROOT = HERE.parents[1]
MODELS = ROOT / "benchmarks" / ".work" / "hf_models"
RESULTS = ROOT / "benchmarks" / "results"
TRIALS = ROOT / "benchmarks" / ".work" / "hf_trials"
CAUSES = ("register", "label_noise", "typos", "memorized")


def predict(model_dir: Path, texts: list[str]) -> list[int]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), local_files_only=True).eval()
    out: list[int] = []
    for i in range(0, len(texts), 50):
        batch = tok(texts[i : i + 50], padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            out += model(**batch).logits.argmax(-1).tolist()
    return out


def errors(model_dir: Path, rows: list[tuple[str, int]]) -> list[bool]:
    return [p != y for p, (_, y) in zip(predict(model_dir, [t for t, _ in rows]), rows)]


def contrast(a: list[bool], b: list[bool]) -> dict:
    from lmcritic.diagnose.slices import fisher_greater, risk_difference

    d, (lo, hi) = risk_difference(sum(a), len(a), sum(b), len(b))
    p = fisher_greater(sum(a), len(a) - sum(a), sum(b), len(b) - sum(b))
    return {"k": sum(a), "n": len(a), "rest_k": sum(b), "rest_n": len(b), "rd": d, "ci": [lo, hi], "p": p}


def trial_errors(cause: str, seed: int, n: int) -> list[bool] | None:
    """Per evaluation row, did the trial's scan fail it (performance.sst2, tag ``line`` = file line)?"""
    import sqlite3

    db = TRIALS / f"{cause}-s{seed}" / "home" / "runs.sqlite"
    if not db.is_file():
        return None
    con = sqlite3.connect(db)
    run = con.execute("select run_id from cases order by created desc limit 1").fetchone()
    rows = con.execute("select passed, tags_json from cases where probe_key='performance.sst2' and run_id=?",
                       (run[0],)).fetchall() if run else []
    err: dict[int, bool] = {json.loads(t)["line"] - 2: not passed for passed, t in rows}
    return [err[i] for i in range(n)] if len(err) == n and set(err) == set(range(n)) else None


def trial_disagreement(cause: str, seed: int) -> dict | None:
    """The training-label disagreement the diagnosis measured (label_noise evidence), as counts."""
    path = TRIALS / f"{cause}-s{seed}" / "diagnosis.json"
    if not path.is_file():
        return None
    for d in json.loads(path.read_text())["defects"]:
        for c in d["causes"]:
            for e in c["evidence"] if c["cause"] == "label_noise" else ():
                if "the model contradicts" in e["summary"] and e["data"].get("rates"):
                    r = e["data"]["rates"]
                    n = (e["estimate"] or {}).get("n", 0)
                    return {"phenomenon": c["culprit"]["value"] if c.get("culprit") else "?", "with": r["train"],
                            "without": r["train (without)"], "n_total": n}
    return None


def check(cause: str, seed: int, from_trials: bool = False) -> dict | None:
    plant = hf_plants.build(cause, seed)
    model = MODELS / f"{plant.reuse_model_of or cause}-s{seed}"
    if not plant.planted_eval or (not from_trials and not (model / "train.json").is_file()):
        return None
    err = trial_errors(cause, seed, len(plant.eval)) if from_trials else errors(model, plant.eval)
    if err is None:
        return None
    inside = [e for i, e in enumerate(err) if i in plant.planted_eval]
    rest = [e for i, e in enumerate(err) if i not in plant.planted_eval]
    row = {"cause": cause, "seed": seed, "description": plant.description, "eval": contrast(inside, rest)}
    if cause == "label_noise" and from_trials:
        row["train_disagreement_diagnosis"] = trial_disagreement(cause, seed)
    elif cause == "label_noise":
        pattern = hf_plants.NEGATION if plant.culprit["value"] == "negation" else hf_plants.CONTRAST
        with_p = [r for r in plant.train if pattern.search(r[0])][:300]
        without = [r for r in plant.train if not pattern.search(r[0])][:300]
        row["train_disagreement"] = contrast(errors(model, with_p), errors(model, without))
    return row


def _fmt(c: dict) -> str:
    return (f"{c['k']}/{c['n']} vs {c['rest_k']}/{c['rest_n']} | {c['rd']:+.2f} [{c['ci'][0]:+.2f}, "
            f"{c['ci'][1]:+.2f}] | {c['p']:.2g}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--causes", nargs="*", default=list(CAUSES), choices=CAUSES)
    ap.add_argument("--from-trials", action="store_true",
                    help="read the stored trial scans (run_hf.py) instead of running the models")
    args = ap.parse_args(argv)
    rows = [r for s in args.seeds for c in args.causes if (r := check(c, s, args.from_trials)) is not None]
    lines = ["# Do the planted models have their defects? (checked on the models, before diagnosis)", "",
             f"{time.strftime('%Y-%m-%d %H:%M:%S')}, load average (1/5/15 min) "
             f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}. Error of each model on the evaluation rows "
             "carrying the plant vs the rest; risk difference with Newcombe 95% CI, one-sided Fisher p."
             + (" Read from the trials' stored scans (`--from-trials`), no model run." if args.from_trials else ""),
             "",
             "| cause | seed | planted rows failing vs rest | RD [95% CI] | p |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['cause']} | {r['seed']} | {_fmt(r['eval'])} |")
        if r.get("train_disagreement_diagnosis"):
            t = r["train_disagreement_diagnosis"]
            lines.append(f"| ↳ label_noise training labels contradicted, as the diagnosis measured ({t['phenomenon']}, "
                         f"with vs without; n={t['n_total']} incl. held-out) | {r['seed']} | "
                         f"{t['with']:.0%} vs {t['without']:.0%} | | |")
        if "train_disagreement" in r:
            lines.append(f"| ↳ label_noise training labels contradicted (with vs without the phenomenon) | "
                         f"{r['seed']} | {_fmt(r['train_disagreement'])} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "planted_hf_plant_check.json").write_text(json.dumps(rows, indent=2))
    (RESULTS / "planted_hf_plant_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
