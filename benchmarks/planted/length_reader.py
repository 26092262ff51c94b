"""How well the length repair's content reader reads once length is projected out of its embeddings
(``lmcritic.mitigate._length._length_nullspace``).

The reader is a logistic regression on MiniLM embeddings of a planted length corpus (one label's rows all long,
the other's all short), so it can learn length instead of content. Scored here on the plant's evaluation
sentences (SST-2 dev, every length): its failure on the affected cases (the sentences whose length points at the
wrong label) and on the others, for 0, 1, 2, 5, 10, 20 and 40 length directions removed. Not part of the repair
(the repair reads windows of training rows only); a check that removing directions found within each label takes
out length and leaves content.

    LMCRITIC_SHARED_DATA=../shared/data .venv/bin/python benchmarks/planted/length_reader.py --seeds 10 11 12
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hf_plants  # noqa: E402

DIRECTIONS = (0, 1, 2, 5, 10, 20, 40)


def measure(seed: int, cause: str = "length_label") -> list[str]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from lmcritic.mitigate import _length
    from lmcritic.mitigate.cleaning import _features

    plant = hf_plants.build(cause, seed)
    long_label = ("negative", "positive").index(plant.culprit["label"])
    train, test = plant.train, plant.eval
    x = _features([t for t, _ in train] + [t for t, _ in test], "minilm")
    xt, xe = x[:len(train)], x[len(train):]
    y = np.array([lab == long_label for _, lab in train])
    ye = np.array([lab == long_label for _, lab in test])
    affected = np.array([i in plant.planted_eval for i in range(len(test))])
    words = np.array([len(t.split()) for t, _ in train])
    out = []
    for k in DIRECTIONS:
        _length.LENGTH_DIRECTIONS = k
        p = _length._length_nullspace(xt, y, words)
        wrong = LogisticRegression(max_iter=2000).fit(xt @ p, y).predict(xe @ p) != ye
        out.append(f"{cause} seed {seed}, {k:2d} directions removed: affected failure {wrong[affected].mean():.3f} "
                   f"(n={affected.sum()}), others {wrong[~affected].mean():.3f} (n={(~affected).sum()})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    args = ap.parse_args()
    for seed in args.seeds:
        print("\n".join(measure(seed)), flush=True)


if __name__ == "__main__":
    main()
