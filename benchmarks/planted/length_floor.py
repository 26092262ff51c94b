"""Failure rates of fine-tuned classifiers on the long (25+ words) and short halves of an evaluation file: the
``length_shift`` plant against the clean model of the same seed, to tell a length defect from long inputs
simply being harder (the clean model is the floor).

    .venv/bin/python benchmarks/planted/length_floor.py EVAL.tsv MODEL_DIR [MODEL_DIR ...]
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

LONG = 25


def failure_by_length(eval_path: Path, model_dir: Path) -> dict[str, tuple[float, int]]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    with eval_path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    wrong: dict[str, list[bool]] = {"long": [], "short": []}
    with torch.no_grad():
        for i in range(0, len(rows), 32):
            batch = rows[i:i + 32]
            enc = tok([r["text"] for r in batch], padding=True, truncation=True, return_tensors="pt")
            for r, pred in zip(batch, model(**enc).logits.argmax(-1).tolist()):
                gold = int(r["label"]) if r["label"].isdigit() else ("negative", "positive").index(r["label"])
                wrong["long" if len(r["text"].split()) >= LONG else "short"].append(pred != gold)
    return {k: (sum(v) / len(v), len(v)) for k, v in wrong.items() if v}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval", type=Path)
    ap.add_argument("models", type=Path, nargs="+")
    args = ap.parse_args()
    for m in args.models:
        rates = failure_by_length(args.eval, m)
        print(m, "  ".join(f"{k}: {r:.3f} (n={n})" for k, (r, n) in rates.items()))


if __name__ == "__main__":
    main()
