"""Did a label-noise plant cause failures? The planted model against the model trained on the true labels.

For label_noise* plants (the clean control of the same seed is the model of the same rows with their true labels),
both models score the plant's affected evaluation sentences (as ``run_mitigation_hf.cases`` marks them); the
planted model's failure rate minus the true-label model's, paired by sentence (Newcombe CI, exact McNemar). A
plant whose difference cannot be told from zero made no failure the diagnosis could attribute to it.

    LMCRITIC_SHARED_DATA=/path/to/shared/data .venv/bin/python benchmarks/planted/noise_floor.py --seeds 10 11 12
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hf_plants  # noqa: E402
import minilm  # noqa: E402
import run_mitigation_hf as mit  # noqa: E402

MODELS = HERE.parents[0] / ".work" / "hf_models"
PLANTS = ("label_noise", "label_noise_directed", "label_noise_global")


def failures(model: Path, rows: list) -> list[bool]:
    """Whether the model's argmax misses each row's gold label (rows: (text, label index))."""
    predicted, _ = minilm.predicted(model, [r[0] for r in rows])
    return [p != int(r[1]) for p, r in zip(predicted, rows)]


def line(cause: str, seed: int) -> str | None:
    from lmcritic import stats

    planted, truth = MODELS / f"{cause}-s{seed}", MODELS / f"clean-s{seed}"
    if not (planted / "train.json").is_file() or not (truth / "train.json").is_file():
        return None
    case, _ = mit.cases(hf_plants.build(cause, seed), seed)
    rows = [case.eval[i] for i in sorted(case.planted)]
    a, f = failures(planted, rows), failures(truth, rows)
    est, p = stats.paired_proportions(f, a)
    return (f"| {cause} | {seed} | {sum(a) / len(a):.3f} | {sum(f) / len(f):.3f} | {est.value:+.3f} "
            f"[{est.ci_low:+.3f}, {est.ci_high:+.3f}] ({est.n}) | {p:.2g} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--causes", nargs="+", choices=PLANTS, default=list(PLANTS))
    args = ap.parse_args(argv)
    print("| plant | seed | planted model fails | true-label model fails | difference [95% CI] (n) | McNemar p |")
    print("|---|---|---|---|---|---|")
    for seed in args.seeds:
        for cause in args.causes:
            found = line(cause, seed)
            print(found or f"| {cause} | {seed} | models not trained | | | |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
