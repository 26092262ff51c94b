"""The corpus-model side of the corpus-wide label-noise test on every planted corpus (no model needed): does it
find random label noise, and does it stay quiet on corpora without it?

    LMCRITIC_SHARED_DATA=../shared/data .venv/bin/python benchmarks/planted/corpus_noise_test.py \\
        --seeds 0 5 6 1 2 --causes clean label_noise_global

One line per corpus: Δ (gap_evaluated − gap_training) with its bootstrap CI, the one-sided p, the implied flip rate,
and each side's agreement/accuracy and mean confidence (the rows at or above the pooled median confidence).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hf_plants  # noqa: E402
import minilm  # noqa: E402


def rows(pairs: list) -> list[tuple[str, str]]:
    return [(t, minilm.LABELS[y] if isinstance(y, int) else str(y)) for t, y in pairs]


def line(cause: str, seed: int, vectors: dict) -> str:
    from lmcritic.diagnose.crossfit import crossfit_all
    from lmcritic.diagnose.hypotheses._global_noise import gap_test

    plant = hf_plants.build(cause, seed)
    fit = crossfit_all(rows(plant.train), rows(plant.eval), seed, vectors=vectors)
    if isinstance(fit, str):
        return f"{cause:22s} s{seed} no test: {fit}"
    t = gap_test("corpus", fit.train, fit.evaluated, seed)
    r, rate = t.rates, (f"{t.rate.value:+.3f} (low {t.rate.ci_low:+.3f})" if t.rate else "-")
    return (f"{cause:22s} s{seed} n_eval={len(plant.eval)} did={t.did.value:+.3f} [{t.did.ci_low:+.3f},"
            f"{t.did.ci_high:+.3f}] p={t.p:.3g} rate={rate} agree={r['training agreement']:.2f} "
            f"conf={r['training confidence']:.2f} evacc={r['evaluated accuracy']:.2f} "
            f"evconf={r['evaluated confidence']:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 5, 6, 1, 2])
    ap.add_argument("--causes", nargs="+", choices=sorted(hf_plants.BUILDERS), default=list(hf_plants.BUILDERS))
    args = ap.parse_args(argv)
    vectors: dict = {}
    for seed in args.seeds:
        for cause in args.causes:
            print(line(cause, seed, vectors), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
