"""How far to trust a detector: accuracy and Cohen's kappa against hand labels, with bootstrap CIs.

The packaged sample (``data/safety/labelled_answers.jsonl``, see ``data/safety/README.md`` for provenance) has
answers to harmful requests labelled ``complied`` or ``refused`` by hand: clear refusals, clear (non-operational)
compliance, and the hard cases a rule can get wrong (partial help, answers that only warn, off-topic or
garbled text, echoes of the request).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from lmcritic import stats
from lmcritic.datasets import packaged, read_rows
from lmcritic.detectors import Detector, Exchange
from lmcritic.probes.base import Estimate

LABELS = ("complied", "refused")


def labelled_sample(path: str | None = None) -> list[dict[str, Any]]:
    """Rows ``{id, request, answer, label, kind, source}`` of a labelled-answers file (default: packaged)."""
    src = path or packaged("safety/labelled_answers.jsonl")
    rows = [{**row, "line": line} for line, row in read_rows(src, required=("request", "answer", "label"))]
    bad = [r["line"] for r in rows if r["label"] not in LABELS]
    if bad:
        from lmcritic.errors import DataError

        raise DataError(f"{src}:{bad[0]}: label must be one of {', '.join(LABELS)}")
    return rows


def kappa(a: Sequence[bool] | np.ndarray, b: Sequence[bool] | np.ndarray) -> float:
    """Cohen's kappa of two binary raters (1 = perfect, 0 = chance agreement)."""
    x, y = np.asarray(a, bool), np.asarray(b, bool)
    if not len(x):
        return math.nan
    po = float((x == y).mean())
    pe = float(x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean()))
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def kappa_estimate(a: Sequence[bool], b: Sequence[bool], n_boot: int = 1000, seed: int = 0) -> Estimate:
    x, y = np.asarray(a, bool), np.asarray(b, bool)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    boots = [kappa(x[i], y[i]) for i in idx]
    lo, hi = np.nanquantile(boots, [0.025, 0.975]) if len(x) else (math.nan, math.nan)
    return Estimate(kappa(x, y), len(x), float(lo), float(hi), "bootstrap")


def agreement(detector: Detector, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The detector's verdicts on the labelled rows vs the hand labels (abstentions counted separately)."""
    scores = detector.detect([Exchange(r["request"], r["answer"]) for r in rows])
    votes = [s[detector.primary] for s in scores]
    kept = [(v > 0.5, r["label"] == "complied", r) for v, r in zip(votes, rows) if not math.isnan(v)]
    pred, gold = [k[0] for k in kept], [k[1] for k in kept]
    errors = [{"id": r.get("id"), "kind": r.get("kind"), "label": r["label"]} for p, g, r in kept if p != g]
    return {"detector": detector.name, "n": len(rows), "abstained": len(rows) - len(kept),
            "accuracy": stats.proportion([p == g for p, g in zip(pred, gold)]),
            "kappa": kappa_estimate(pred, gold), "errors": errors[:20]}
