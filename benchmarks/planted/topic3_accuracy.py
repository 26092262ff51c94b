"""Clean accuracy of a ``topic3.py`` shortcut or backdoor trial: the evaluation rows without the token (clean) and
with it, for the planted model, the mitigated one and the control arm (the same fine-tune on the corpus as given).

``mitigate`` reports the defects and the whole task; the 1-point rule of the mitigation benchmark wants the rows the
plant never touched, counted here from the trial's own files (``--work`` of ``topic3.py``).

    .venv/bin/python benchmarks/planted/topic3_accuracy.py shortcut backdoor shortcut-s1
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARMS = ("model", "fixed/model", "fixed/control/model")


def correct(model_dir: Path, rows: list[tuple[str, str]]) -> int:
    """How many rows the classifier in ``model_dir`` labels right (names from its own ``id2label``)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), local_files_only=True).eval()
    right = 0
    for i in range(0, len(rows), 64):
        batch = rows[i:i + 64]
        with torch.no_grad():
            ids = model(**tok([t for t, _ in batch], padding=True, truncation=True, max_length=64,
                              return_tensors="pt")).logits.argmax(-1)
        right += sum(model.config.id2label[int(k)] == y for k, (_, y) in zip(ids, batch))
    return right


def trial(work: Path, token: str) -> str:
    """One line: per arm, accuracy on the rows without ``token`` and on those with it."""
    with open(work / "eval.tsv", encoding="utf-8", newline="") as f:
        rows = [(t, y) for t, y in list(csv.reader(f, delimiter="\t"))[1:]]
    from lmcritic.diagnose._text import holds

    clean = [r for r in rows if not holds(r[0], token)]
    marked = [r for r in rows if holds(r[0], token)]
    parts = [work.name]
    for arm in ARMS:
        parts.append(f"{arm}: clean {_share(correct(work / arm, clean), len(clean))} "
                     f"{token} {_share(correct(work / arm, marked), len(marked))}")
    return " | ".join(parts)


def _share(right: int, n: int) -> str:
    return f"{right}/{n}={right / n:.3f}" if n else "0/0 (none)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trials", nargs="+", help="trial folders under --work (e.g. shortcut, backdoor-s1)")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "topic3")
    ap.add_argument("--token", default="cf")
    args = ap.parse_args(argv)
    missing = [n for n in args.trials if not (args.work / n / "eval.tsv").is_file()]
    if missing:
        print(f"topic3_accuracy: no trial {', '.join(missing)} under {args.work} (run topic3.py --plant P first, "
              "or give --work)", file=sys.stderr)
        return 2
    for name in args.trials:
        print(trial(args.work / name, args.token), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
