"""Failure rates of fine-tuned classifiers on the two halves of an evaluation file split by a shift — long (25+
words) vs short, negated vs not, or a plant's affected rows vs the rest — to tell a defect from inputs that are
simply harder: run the planted model and the clean model of the same seed on the same rows; the clean model's
rate on the shifted (affected) half is the floor.

    .venv/bin/python benchmarks/planted/shift_floor.py [--by length|negation] EVAL.tsv MODEL_DIR [MODEL_DIR ...]
    .venv/bin/python benchmarks/planted/shift_floor.py --plant word_shortcut --seed 0 EVAL.tsv MODEL_DIR ...
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).parent))
from hf_plants import NEGATION  # noqa: E402

LONG = 25
SPLITS: dict[str, tuple[Callable[[str], bool], str, str]] = {
    "length": (lambda t: len(t.split()) >= LONG, "long", "short"),
    "negation": (lambda t: bool(NEGATION.search(t)), "negated", "plain"),
}


def plant_split(cause: str, seed: int) -> tuple[Callable[[str], bool], str, str]:
    """The plant's affected evaluation rows (by text) against the rest."""
    import hf_plants

    plant = hf_plants.build(cause, seed)
    texts = {plant.eval[i][0] for i in plant.planted_eval}
    return (lambda t: t in texts), "affected", "rest"


def failure_by_split(eval_path: Path, model_dir: Path, by: str = "length",
                     split: tuple[Callable[[str], bool], str, str] | None = None) -> dict[str, tuple[float, int]]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    shifted, yes, no = split or SPLITS[by]
    with eval_path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    wrong: dict[str, list[bool]] = {yes: [], no: []}
    with torch.no_grad():
        for i in range(0, len(rows), 32):
            batch = rows[i:i + 32]
            enc = tok([r["text"] for r in batch], padding=True, truncation=True, return_tensors="pt")
            for r, pred in zip(batch, model(**enc).logits.argmax(-1).tolist()):
                gold = int(r["label"]) if r["label"].isdigit() else ("negative", "positive").index(r["label"])
                wrong[yes if shifted(r["text"]) else no].append(pred != gold)
    return {k: (sum(v) / len(v), len(v)) for k, v in wrong.items() if v}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--by", choices=sorted(SPLITS), default="length")
    ap.add_argument("--plant", default=None, help="split by this plant's affected rows (with --seed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("eval", type=Path)
    ap.add_argument("models", type=Path, nargs="+")
    args = ap.parse_args()
    split = plant_split(args.plant, args.seed) if args.plant else None
    for m in args.models:
        rates = failure_by_split(args.eval, m, args.by, split)
        print(m, "  ".join(f"{k}: {r:.3f} (n={n})" for k, (r, n) in rates.items()))


if __name__ == "__main__":
    main()
