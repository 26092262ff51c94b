"""Class-conditional label noise against a label shift, on the usual train/dev split: MiniLM sentiment classifiers
fine-tuned on SST-2 training sentences and evaluated on SST-2 dev sentences, scanned, diagnosed and mitigated from
the CLI as a stranger would.

The corpus and the evaluated texts are not one population here (SST-2 training rows against dev sentences: a
classifier tells them apart at AUC 0.69), so the class-conditional test that assumes they are is not run; the
label-share test (``diagnose/hypotheses/_implied_prior.py``) is what must tell the two plants apart. Plants
(2,000 training rows of 8-30 words, ``minilm.finetune`` with its default config; the first 300 dev rows, or
``--n-eval N``):

* ``clean``: nothing (about half positive);
* ``class_noise``: 35 % of the positive rows relabelled negative (68 % labelled negative);
* ``label_shift``: 64 % negative rows, 36 % positive, every label right (a label shift, not noise).

Then ``lmcritic run`` (performance.sst2 on the dev rows), ``diagnose --train`` and ``mitigate --control`` (which
exits 2 when there is nothing to mitigate); every command's output goes to ``OUT/<plant>/``, the model, data and
run store to ``benchmarks/.work/split_noise/<plant>/``.

    LMCRITIC_SHARED_DATA=../shared/data .venv/bin/python benchmarks/planted/split_noise.py --plant class_noise \
        --out benchmarks/results/split_noise_DATE
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from minilm import TrainConfig, finetune, write_tsv  # noqa: E402
from planted import DATA, read  # noqa: E402
from topic3 import scan_diagnose_mitigate  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLANTS = ("clean", "class_noise", "label_shift")


def planted(plant: str, seed: int = 0, n_eval: int = 300) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    rows = [(" ".join(t.split()), y) for t, y in read(DATA / "sst2_train.tsv") if 8 <= len(t.split()) <= 30]
    rng = random.Random(seed)
    rng.shuffle(rows)
    train = rows[:2000]
    if plant == "class_noise":
        train = [(t, 0) if y == 1 and rng.random() < 0.35 else (t, y) for t, y in train]
    if plant == "label_shift":
        train = [r for r in rows if r[1] == 0][:1280] + [r for r in rows if r[1] == 1][:720]
        rng.shuffle(train)
    dev = [(" ".join(t.split()), y) for t, y in read(DATA / "sst2_dev.tsv")[:n_eval]]
    return train, dev


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plant", choices=PLANTS, required=True)
    ap.add_argument("--out", type=Path, required=True, help="folder for the command logs")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "split_noise",
                    help="folder for the model, data and run store (not committed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-eval", type=int, default=300, help="dev rows evaluated (872: all of them)")
    args = ap.parse_args(argv)
    name = args.plant if args.n_eval == 300 else f"{args.plant}_dev{args.n_eval}"
    out, work = (args.out / name).resolve(), (args.work / name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    train, dev = planted(args.plant, args.seed, args.n_eval)
    model = finetune(train, work / "model", TrainConfig(seed=args.seed))
    write_tsv(train, work / "train.tsv")
    write_tsv(dev, work / "eval.tsv")
    spec = {"name": f"split_noise_{args.plant}", "model": {"name": str(model), "backend": "hf"},
            "probes": [{"name": "performance.sst2", "config": {"data": str(work / "eval.tsv"), "n": None}}]}
    return scan_diagnose_mitigate(out, work, spec)

if __name__ == "__main__":
    raise SystemExit(main())
