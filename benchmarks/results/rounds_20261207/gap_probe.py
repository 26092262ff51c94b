"""The gender swap's effect on a MiniLM sentiment classifier's positive-vs-negative log-odds (the measurements of
README.md in this folder).

    # female minus male version, mean over the pairs of a TSV's gendered rows (sentence/text, label):
    python gap_probe.py MODEL[,MODEL...] FILE.tsv [FILE.tsv ...]
    # the label's log-odds drop from a row to its swapped copy, on the swapped rows a fine-tune left out
    # (corpus rows of MITIGATED/train_rows.tsv whose line has no counterfactual copy there):
    python gap_probe.py MODEL[,MODEL...] --heldout MITIGATED
"""
from __future__ import annotations

import argparse
import csv
import random
import statistics
from pathlib import Path


def rows(path: Path) -> list[tuple[str, str]]:
    with path.open() as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        return [(r[0], r[1]) for r in reader]


def pairs(texts: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(text, swapped text, label, group swapped to) for rows naming one gender only."""
    from lmcritic.lexicon import find_identity_terms, swap

    out, rng = [], random.Random(0)
    for text, label in texts:
        groups = {m.group for m in find_identity_terms(text, "gender")}
        if ("male" in groups) == ("female" in groups):
            continue
        to = "female" if "male" in groups else "male"
        swapped, edits = swap(text, "gender", rng, to=to)
        if edits:
            out.append((text, swapped, label, to))
    return out


def margins(model_dir: str, texts: list[str]) -> list[float]:
    """log p(positive) - log p(negative) per text (column 1 is positive in these models)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out: list[float] = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            enc = tok(texts[i:i + 64], padding=True, truncation=True, max_length=64, return_tensors="pt")
            lp = model(**enc).logits.log_softmax(-1)
            out += (lp[:, 1] - lp[:, 0]).tolist()
    return out


def female_minus_male(model_dir: str, ps: list[tuple[str, str, str, str]]) -> float:
    a, b = margins(model_dir, [p[0] for p in ps]), margins(model_dir, [p[1] for p in ps])
    return statistics.mean((y - x) if p[3] == "female" else (x - y) for x, y, p in zip(a, b, ps))


def label_drop(model_dir: str, ps: list[tuple[str, str, str, str]]) -> float:
    a, b = margins(model_dir, [p[0] for p in ps]), margins(model_dir, [p[1] for p in ps])
    return statistics.mean((x - y) if p[2] in ("1", "positive") else (y - x) for x, y, p in zip(a, b, ps))


def held_out(mitigated: Path) -> list[tuple[str, str]]:
    with (mitigated / "train_rows.tsv").open() as f:
        trained = list(csv.DictReader(f, delimiter="\t"))
    copied = {r["line"] for r in trained if r["origin"] == "counterfactual"}
    return [(r["text"], r["label"]) for r in trained if r["origin"] == "corpus" and r["line"] not in copied]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models")
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--heldout", type=Path)
    args = ap.parse_args()
    models = args.models.split(",")
    if args.heldout:
        ps = pairs(held_out(args.heldout))
        for m in models:
            print(f"{m}: held-out pairs {len(ps)}, label log-odds drop row -> copy {label_drop(m, ps):+.3f}")
    for path in args.files:
        ps = pairs(rows(path))
        for m in models:
            print(f"{path} {m}: pairs {len(ps)}, female - male positive log-odds {female_minus_male(m, ps):+.3f}")


if __name__ == "__main__":
    main()
