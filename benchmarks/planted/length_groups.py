"""Failures of a length-shortcut trial by gold label and length band (long >= 14 words, short <= 9), for the
planted model and the mitigated one: which side of the length shortcut a fix leaves failing.

Usage: python benchmarks/planted/length_groups.py benchmarks/.work/hf_mitigation/length_label-s0 MODEL_DIR...
"""
from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import minilm  # noqa: E402

NAMES = {"0": "negative", "1": "positive"}


def band(text: str) -> str:
    n = len(text.split())
    return "long" if n >= 14 else "short" if n <= 9 else "mid"


def predictions(model_dir: str, texts: list[str]) -> list[str]:
    ids, labels = minilm.predicted(model_dir, texts)
    return [labels[i] for i in ids]


def main(trial: str, models: list[str]) -> None:
    with (Path(trial) / "eval.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for m in models:
        seen: Counter[tuple[str, str]] = Counter()
        failed: Counter[tuple[str, str]] = Counter()
        for r, y in zip(rows, predictions(m, [r["sentence"] for r in rows])):
            key = (NAMES[r["label"]], band(r["sentence"]))
            seen[key] += 1
            failed[key] += y not in (r["label"], NAMES[r["label"]])
        print(m, {f"{y}/{b}": f"{failed[y, b]}/{seen[y, b]}" for y, b in sorted(seen)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
