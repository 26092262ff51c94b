"""How much of a planted identity bias is left in a model: on the plant's affected evaluation rows, the error
as written and with the identity words swapped to the other group of the planted pair, and the mean change in
p(positive) the swap makes (0 for a model that does not read the group at all).

For plants whose evaluation rows carry the group words themselves (``gender_selected``). Used to see what
counterfactual logit pairing changes beyond the affected failure rate:

    .venv/bin/python benchmarks/planted/swap_effect.py --cause gender_selected --seed 0 MODEL_DIR [MODEL_DIR ...]
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hf_plants  # noqa: E402
import minilm  # noqa: E402


def probabilities(model_dir: str, texts: list[str]) -> list[float]:
    """p(positive) per text (label index 1)."""
    return [row[1] for row in minilm.class_probabilities(model_dir, texts)[0]]


def swapped(plant: hf_plants.HFPlant, text: str, rng: random.Random) -> str:
    """``text`` with its group words moved to the other group of the planted pair."""
    from lmcritic.lexicon import find_identity_terms, swap

    attr, a, b = plant.culprit["attribute"], plant.culprit["value"], plant.culprit["contrast"]
    found = {m.group for m in find_identity_terms(text, attr)}
    return swap(text, attr, rng, to=b if a in found else a)[0]


def report(plant: hf_plants.HFPlant, model_dir: str) -> str:
    rows = [plant.eval[i] for i in sorted(plant.planted_eval)]
    rng = random.Random(0)
    gold = [int(y) for _, y in rows]
    before = probabilities(model_dir, [t for t, _ in rows])
    after = probabilities(model_dir, [swapped(plant, t, rng) for t, _ in rows])
    err = [sum((p > 0.5) != bool(y) for p, y in zip(ps, gold)) / len(gold) for ps in (before, after)]
    gap = sum(abs(p - q) for p, q in zip(before, after)) / len(gold)
    return f"{model_dir}: affected error {err[0]:.2f} -> swapped {err[1]:.2f}; mean |dp| {gap:.3f} (n = {len(gold)})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cause", default="gender_selected")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("models", nargs="+")
    args = ap.parse_args(argv)
    plant = hf_plants.build(args.cause, args.seed)
    for m in args.models:
        print(report(plant, m), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
