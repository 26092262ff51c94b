"""How often a length repair's cut window carries its source row's label (``lmcritic.mitigate._length``).

The planted length corpora give one label only long rows; the repair cuts short windows of them, keeps as short
rows of that label those a cross-fitted content reader gives it, and joins those it reads as the other label
(fillers) into the other label's long rows. Truth for a window exists where it is itself an SST-2 phrase (SST-2
labels sub-phrases of its sentences): the share of kept windows that SST-2 labels like their source (should be
high), of fillers (should be low), and of windows cut at random from the same rows. SST-2 holds mostly
sentiment-bearing phrases, so the shares overstate what an unmatched window carries; the gaps are the test.

    LMCRITIC_SHARED_DATA=../shared/data .venv/bin/python benchmarks/planted/length_crops.py --seeds 10 11
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hf_plants  # noqa: E402
import planted  # noqa: E402


def measure(cause: str, seed: int) -> str:
    from lmcritic.mitigate._length import FILLER_P, READER, windows_read
    from lmcritic.mitigate.data import Row

    plant = hf_plants.build(cause, seed)
    label = plant.culprit["label"]
    rows = [Row(t, ("negative", "positive")[y], line=i + 1) for i, (t, y) in enumerate(plant.train)]
    truth = {t: ("negative", "positive")[y] for t, y in planted.read(planted.DATA / "sst2_train.tsv")}
    start = time.time()
    median = sorted(len(r.text.split()) for r in rows)[len(rows) // 2]
    read = windows_read(rows, label, median, random.Random(seed), READER)
    best: dict[int, tuple[float, str]] = {}
    for i, w, p in read:
        best[i] = max(best.get(i, (-1.0, "")), (p, w))
    kept = [w for p, w in best.values() if p > 0.5]  # what the crops are drawn from, most certain first
    fillers = [w for _, w, p in read if p <= FILLER_P]
    rng = random.Random(seed)
    drawn = [rng.choice([w for j, w, _ in read if j == i]) for i in sorted(best)]
    return (f"{cause} seed {seed} ({label} long): {len(best)} long rows, {len(read)} windows read in "
            f"{time.time() - start:.0f} s; " + _share("kept (best per row, > 0.5)", kept, truth, label) + "; "
            + _share(f"fillers (<= {FILLER_P})", fillers, truth, label) + "; "
            + _share("random (one per row)", drawn, truth, label))


def _share(name: str, texts: list[str], truth: dict[str, str], label: str) -> str:
    found = [truth[t] for t in texts if t in truth]
    if not found:
        return f"{name}: none is an SST-2 phrase"
    return f"{name}: {len(found)} are SST-2 phrases, {sum(y == label for y in found) / len(found):.2f} labelled {label}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11])
    ap.add_argument("--causes", nargs="+", default=["length_label", "length_label_mixed"])
    args = ap.parse_args()
    for cause in args.causes:
        for seed in args.seeds:
            print(measure(cause, seed), flush=True)


if __name__ == "__main__":
    main()
