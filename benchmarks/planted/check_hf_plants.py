"""Does a planted model really have its defect? Checked on the model directly, before the diagnosis is judged.

For every cause x seed whose fine-tuned model is cached (``benchmarks/.work/hf_models``) and whose plant marks
evaluation rows (register: the slang half; label_noise: rows with the phenomenon; typos: the misspelt half;
memorized: the memorised rows), the model's error on the marked rows against the rest: risk difference with
Newcombe's interval and a one-sided Fisher p. For label_noise also the share of its own training labels the
model contradicts with and without the phenomenon (the signal the diagnosis tests). Writes
``benchmarks/results/planted_hf_plant_check.{json,md}``.

    LMCRITIC_SHARED_DATA=/path/to/shared/data .venv/bin/python benchmarks/planted/check_hf_plants.py --seeds 0 1
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


def check(cause: str, seed: int) -> dict | None:
    plant = hf_plants.build(cause, seed)
    model = MODELS / f"{plant.reuse_model_of or cause}-s{seed}"
    if not (model / "train.json").is_file() or not plant.planted_eval:
        return None
    err = errors(model, plant.eval)
    inside = [e for i, e in enumerate(err) if i in plant.planted_eval]
    rest = [e for i, e in enumerate(err) if i not in plant.planted_eval]
    row = {"cause": cause, "seed": seed, "description": plant.description, "eval": contrast(inside, rest)}
    if cause == "label_noise":
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
    args = ap.parse_args(argv)
    rows = [r for s in args.seeds for c in args.causes if (r := check(c, s)) is not None]
    lines = ["# Do the planted models have their defects? (checked on the models, before diagnosis)", "",
             f"{time.strftime('%Y-%m-%d %H:%M:%S')}, load average (1/5/15 min) "
             f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}. Error of each model on the evaluation rows "
             "carrying the plant vs the rest; risk difference with Newcombe 95% CI, one-sided Fisher p.", "",
             "| cause | seed | planted rows failing vs rest | RD [95% CI] | p |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['cause']} | {r['seed']} | {_fmt(r['eval'])} |")
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
