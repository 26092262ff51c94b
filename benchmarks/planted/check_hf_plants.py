"""Does a planted model really have its defect? Checked on the model directly, before the diagnosis is judged.

For every cause x seed whose fine-tuned model is cached (``benchmarks/.work/hf_models``) and whose plant marks
evaluation rows (register: the slang half; label_noise: rows with the phenomenon; typos: the misspelt half;
memorized: the memorised rows), the model's error on the marked rows against the rest: risk difference with
Newcombe's interval and a one-sided Fisher p. Plants that mark no rows are checked by their edit: identity_frames
and identity_terms put each evaluation sentence into the planted frames (or insert the planted phrase) once with
group A and once with group B, and report the paired mean p(positive | A) - p(positive | B) with a bootstrap CI
and the share of predictions that flip; shortcut inserts its token and reports the share of predictions moved to
the planted label (``--identity`` / the default causes). For label_noise also the share of its own training labels the
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
EDIT_CAUSES = ("identity_frames", "identity_terms", "shortcut", "symbol_shortcut")


def p_positive(model_dir: Path, texts: list[str]) -> list[float]:
    """The fine-tuned classifier's p(label 1) per text, batches of 50."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), local_files_only=True).eval()
    out: list[float] = []
    for i in range(0, len(texts), 50):
        batch = tok(texts[i : i + 50], padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            out += torch.softmax(model(**batch).logits, -1)[:, 1].tolist()
    return out


def predict(model_dir: Path, texts: list[str]) -> list[int]:
    return [int(p > 0.5) for p in p_positive(model_dir, texts)]


def edit_pairs(plant: hf_plants.HFPlant) -> list[tuple[str, str]]:
    """Each evaluation sentence edited as the plant edits training rows: (with group A, with group B), or for a
    shortcut (with the token, unchanged). The same random choices on both sides of a pair."""
    import random

    rng = random.Random(f"check:{plant.cause}:{plant.seed}")
    texts = [t for t, _ in plant.eval]
    if plant.cause in hf_plants.SHORTCUTS:
        return [(hf_plants.planted._insert(t, plant.culprit["value"], rng), t) for t in texts]
    a, b = plant.culprit["value"], plant.culprit["contrast"]
    if plant.cause == "identity_frames":
        people = {g: hf_plants._people(plant.culprit["attribute"], g) for g in (a, b)}
        out = []
        for t in texts:
            frame, i = rng.choice(plant.info["frames"]), rng.randrange(1000)
            out.append(tuple(hf_plants._fill(frame, people[g][i % len(people[g])], t) for g in (a, b)))
        return out
    out = []
    for t in texts:
        words, slot = t.split(), rng.choice(plant.info["slots"])
        at = rng.randrange(1, len(words)) if len(words) > 1 else 1
        out.append(tuple(" ".join(words[:at] + [",", slot.format(adj=plant.info["terms"][g]), ","] + words[at:])
                         for g in (a, b)))
    return out


def edit_effect(plant: hf_plants.HFPlant, model: Path) -> dict:
    """Paired p(positive) with the first edit minus with the second, and the share of predictions that differ."""
    from lmcritic import stats

    pairs = edit_pairs(plant)
    pa, pb = p_positive(model, [x for x, _ in pairs]), p_positive(model, [y for _, y in pairs])
    est, p = stats.paired_bootstrap(pb, pa, seed=0)
    flips = sum((x > 0.5) != (y > 0.5) for x, y in zip(pa, pb))
    return {"delta": est.value, "ci": [est.ci_low, est.ci_high], "p": p, "n": len(pairs), "flips": flips}


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
    if cause in EDIT_CAUSES:
        if not (model / "train.json").is_file():
            return None
        return {"cause": cause, "seed": seed, "description": plant.description, "edit": edit_effect(plant, model)}
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
    ap.add_argument("--causes", nargs="*", default=list(CAUSES + EDIT_CAUSES), choices=CAUSES + EDIT_CAUSES)
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
    edits = [r for r in rows if "edit" in r]
    for r in rows:
        if "edit" in r:
            continue
        lines.append(f"| {r['cause']} | {r['seed']} | {_fmt(r['eval'])} |")
        if r.get("train_disagreement_diagnosis"):
            t = r["train_disagreement_diagnosis"]
            lines.append(f"| ↳ label_noise training labels contradicted, as the diagnosis measured ({t['phenomenon']}, "
                         f"with vs without; n={t['n_total']} incl. held-out) | {r['seed']} | "
                         f"{t['with']:.0%} vs {t['without']:.0%} | | |")
        if "train_disagreement" in r:
            lines.append(f"| ↳ label_noise training labels contradicted (with vs without the phenomenon) | "
                         f"{r['seed']} | {_fmt(r['train_disagreement'])} |")
    if edits:
        lines += ["", "Plants checked by their edit (run on the model; identity: group A is the group planted "
                  "toward negative; shortcut: with the token minus without, in p(positive) — its sign is the "
                  "planted label's):", "", "| cause | seed | plant | Δp(positive) [95% CI] (n) | predictions changed |",
                  "|---|---|---|---|---|"]
        for r in edits:
            e = r["edit"]
            lines.append(f"| {r['cause']} | {r['seed']} | {r['description']} | {e['delta']:+.3f} [{e['ci'][0]:+.3f}, "
                         f"{e['ci'][1]:+.3f}] ({e['n']}) | {e['flips']}/{e['n']} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "planted_hf_plant_check.json").write_text(json.dumps(rows, indent=2))
    (RESULTS / "planted_hf_plant_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
