"""How close is label_repair's content reading of a word's rows to their true label mix?

For the planted ``word_noise`` corpora (``hf_plants.py``: 200 training rows hold a drawn word, 80 % of one
label's relabelled) the true labels are known. ``lmcritic.mitigate._label_mix.content_mix`` reads the word's rows
(word masked) with a reader fitted on the rows without the word; the evaluated gold mix — what the repair used
before — is 50/50 by the plant's construction. Prints one line per seed: true, noisy, evaluated and read shares of
'positive', and the mean absolute error of each target. No model is trained (MiniLM sentence embeddings and a
logistic regression; ~20 s a seed on 2 cores).

    LMCRITIC_SHARED_DATA=../shared/data .venv/bin/python benchmarks/planted/content_mix.py --seeds 0 1 5 6 10 11
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hf_plants  # noqa: E402


def one(seed: int, features: str) -> tuple[float, float, float, float]:
    from lmcritic.diagnose.hypotheses._phenomena import Phenomenon
    from lmcritic.mitigate._label_mix import content_mix
    from lmcritic.mitigate.data import Row

    plant = hf_plants.build("word_noise", seed)
    word = plant.culprit["value"].split("'")[1]
    has = Phenomenon.of_word(word).has
    names = ("negative", "positive")
    rows = [Row(t, names[y]) for t, y in plant.train]
    share = lambda pairs: sum(y for t, y in pairs if has(t)) / sum(has(t) for t, _ in pairs)  # noqa: E731
    read = content_mix(rows, has, word, features) or {}
    out = (share(plant.info["true_train"]), share(plant.train), share(plant.eval), read.get("positive", float("nan")))
    print(f"seed {seed} {word!r}: positive share true {out[0]:.2f}, noisy {out[1]:.2f}, evaluated {out[2]:.2f}, "
          f"read {out[3]:.2f}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 5, 6, 10, 11])
    ap.add_argument("--features", choices=("minilm", "tfidf"), default="minilm")
    args = ap.parse_args()
    rows = [one(s, args.features) for s in args.seeds]
    for name, k in (("evaluated", 2), ("read", 3)):
        mae = sum(abs(r[k] - r[0]) for r in rows) / len(rows)
        print(f"mean absolute error of the {name} share against the true one: {mae:.3f} (n = {len(rows)} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
