"""Faithfulness (ERASER: DeYoung et al., 2020) and agreement between explanations.

Comprehensiveness and sufficiency are computed as AOPC over top-k% removal (k in ``bins``, ERASER's
1/5/10/20/50%) at the word level, by editing the input text and re-scoring it through the backend (one
batched call for all bins, all random orders and both measures), so the same code measures a classifier's
label and a causal LM's continuation, white-box and black-box explanations alike.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.errors import ConfigError
from lmcritic.interpret._blackbox import log_scores, to_units
from lmcritic.interpret._words import keep_words, remove_words
from lmcritic.interpret.types import Explanation, Faithfulness

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend

ERASER_BINS = (0.01, 0.05, 0.10, 0.20, 0.50)


@dataclass(frozen=True)
class FaithfulnessConfig:
    bins: tuple[float, ...] = ERASER_BINS
    n_random: int = 3  # random word orders for the floor
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.bins or any(not 0 < b <= 1 for b in self.bins) or self.n_random < 0:
            raise ConfigError("faithfulness bins must be fractions in (0, 1] and n_random >= 0")


class ERASER:
    """``ERASER(bins=...)(model, explanation) -> Faithfulness``."""

    def __init__(self, **config: Any) -> None:
        self.config = FaithfulnessConfig(**config)

    def __call__(self, model: Backend, explanation: Explanation) -> Faithfulness:
        t0 = time.perf_counter()
        ex, cfg = explanation, self.config
        spans, editable = list(ex.word_offsets), ex.in_span()
        ranked = sorted(editable, key=lambda i: -ex.word_scores[i])
        rng = random.Random(cfg.seed)
        orders = [ranked] + [rng.sample(editable, len(editable)) for _ in range(cfg.n_random)]
        ks = [max(1, math.ceil(b * len(editable))) if editable else 0 for b in cfg.bins]
        texts = [ex.target.text]
        for order in orders:
            for k in ks:
                texts.append(remove_words(ex.target.text, spans, order[:k]))
                texts.append(keep_words(ex.target.text, spans, order[:k], editable))
        values = [to_units(ex.target, s)[0] for s in log_scores(model, ex.target, texts)]
        units = to_units(ex.target, 0.0)[1]
        full = values[0]
        comp, suff = _aopc(full, values[1:], len(orders), len(ks))
        per_k = {f"{b:g}": {"k": k, "comprehensiveness": comp[0][j], "sufficiency": suff[0][j]}
                 for j, (b, k) in enumerate(zip(cfg.bins, ks))}
        return Faithfulness(method=ex.method, comprehensiveness=_mean(comp[0]), sufficiency=_mean(suff[0]),
                            random_comprehensiveness=_mean([_mean(c) for c in comp[1:]]) if comp[1:] else math.nan,
                            random_sufficiency=_mean([_mean(s) for s in suff[1:]]) if suff[1:] else math.nan,
                            per_k=per_k, full_score=full, units=units, n_words=len(editable),
                            n_queries=len(texts), seconds=time.perf_counter() - t0)


def _aopc(full: float, values: Sequence[float], n_orders: int, n_bins: int) -> tuple[list, list]:
    comp = [[0.0] * n_bins for _ in range(n_orders)]
    suff = [[0.0] * n_bins for _ in range(n_orders)]
    for o in range(n_orders):
        for j in range(n_bins):
            at = 2 * (o * n_bins + j)
            comp[o][j] = full - values[at]
            suff[o][j] = full - values[at + 1]
    return comp, suff


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


# -- agreement between methods ---------------------------------------------------------------------------
def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho (average ranks for ties); NaN when either side is constant or shorter than 2."""
    if len(a) != len(b):
        raise ConfigError(f"rank correlation needs equal lengths, got {len(a)} and {len(b)}")
    ra, rb = _ranks(a), _ranks(b)
    n = len(a)
    if n < 2:
        return math.nan
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(va * vb) if va > 0 and vb > 0 else math.nan


def _ranks(xs: Sequence[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def top_k_overlap(a: Sequence[float], b: Sequence[float], k: int) -> float:
    """|top-k(a) ∩ top-k(b)| / k, ranking by score (highest = most toward the target)."""
    k = min(k, len(a))
    if k <= 0:
        return math.nan
    top = lambda xs: set(sorted(range(len(xs)), key=lambda i: -xs[i])[:k])  # noqa: E731
    return len(top(a) & top(b)) / k


def agreement(a: Explanation, b: Explanation, k: int = 3) -> dict[str, float]:
    """Rank correlation and top-k overlap of two explanations' word scores over the span's words."""
    if a.target.text != b.target.text:
        raise ConfigError("agreement compares explanations of the same input text")
    idx = a.in_span()
    sa, sb = [a.word_scores[i] for i in idx], [b.word_scores[i] for i in idx]
    return {"spearman": rank_correlation(sa, sb), f"top{k}_overlap": top_k_overlap(sa, sb, k),
            "n_words": float(len(idx))}
