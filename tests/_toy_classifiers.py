"""Importable sentiment 'models' with a known accuracy on the packaged SST-2 sample, for tests of runs made
from Python, the pytest plugin and exported regression tests (a function importable by name is stored as a
replayable ``python`` model spec).

Each knows the gold label of every sentence and answers it correctly unless a stable hash of the sentence
falls under its error rate, so its accuracy is planted, deterministic and the same in every process.
"""
from __future__ import annotations

import csv
import hashlib
from functools import lru_cache
from importlib import resources

LABELS = ("negative", "positive")


@lru_cache(maxsize=1)
def _gold() -> dict[str, int]:
    text = resources.files("lmcritic").joinpath("data/sst2_dev_sample.tsv").read_text(encoding="utf-8")
    return {row["sentence"].strip(): int(row["label"]) for row in csv.DictReader(text.splitlines(), delimiter="\t")}


def _answer(text: str, error_rate: float) -> dict[str, float]:
    sentence = text.removeprefix("Review:").removesuffix("Sentiment:").strip()  # the task's prompt, or the text
    gold = _gold().get(sentence)
    if gold is None:  # an input the table does not hold (a perturbed sentence): a coin the text decides
        gold = int(hashlib.sha256(sentence.encode()).digest()[1]) % 2
    wrong = int.from_bytes(hashlib.sha256(sentence.encode()).digest()[:4], "big") / 2**32 < error_rate
    label = 1 - gold if wrong else gold
    return {LABELS[label]: 0.9, LABELS[1 - label]: 0.1}


def good(text: str) -> dict[str, float]:
    """About 95% accurate."""
    return _answer(text, 0.05)


def worse(text: str) -> dict[str, float]:
    """About 70% accurate."""
    return _answer(text, 0.30)
