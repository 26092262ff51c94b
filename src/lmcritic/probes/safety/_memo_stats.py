"""Statistics of memorization: verbatim overlap, canary exposure (Carlini et al. 2019), membership AUROC."""
from __future__ import annotations

import math
import random
from typing import Sequence

import numpy as np

from lmcritic import stats
from lmcritic.probes.base import Estimate


def common_prefix_len(a: Sequence[str], b: Sequence[str]) -> int:
    """How many leading items two sequences share (verbatim continuation length)."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def longest_common_substring(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest contiguous run shared by two sequences (dynamic programming, O(len a · len b))."""
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def random_secret(rng: random.Random, alphabet: str, length: int, sep: str = " ") -> str:
    return sep.join(rng.choice(alphabet) for _ in range(length))


def rank_exposure(canary_logprob: float, candidate_logprobs: Sequence[float]) -> Estimate:
    """Exposure from the canary's rank among ``n`` candidates drawn uniformly from the randomness space R.

    exposure = log2|R| − log2 rank. With a uniform sample the rank in R is estimated as |R|·(b+1)/(n+1),
    b = candidates strictly more likely than the canary, so exposure ≈ −log2((b+1)/(n+1)), at most log2(n+1).
    The CI comes from the Wilson interval of the share of candidates that beat the canary.
    """
    n = len(candidate_logprobs)
    better = int(sum(c > canary_logprob for c in candidate_logprobs))
    lo, hi = stats.wilson(better, n)
    point = -math.log2((better + 1) / (n + 1))
    return Estimate(point, n, -math.log2(min(1.0, hi + 1 / (n + 1))), -math.log2(max(lo, 1 / (n + 1))), "rank")


def extrapolated_exposure(canary_logprob: float, candidate_logprobs: Sequence[float]) -> float:
    """Carlini et al.'s approximation: fit a skew-normal to the candidates' log-perplexities and read
    exposure = −log2 P(X ≤ canary's log-perplexity) off its CDF, which reaches beyond the sampled ranks."""
    from scipy.stats import skewnorm

    ppl = -np.asarray(candidate_logprobs, dtype=float)
    params = skewnorm.fit(ppl)
    logcdf = float(skewnorm.logcdf(-canary_logprob, *params))
    return -logcdf / math.log(2)


def auroc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U, ties count half); scores higher for positives is 1.0."""
    s = np.asarray(scores, float)
    y = np.asarray(labels, bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def auroc_estimate(scores: Sequence[float], labels: Sequence[bool], n_boot: int = 1000, seed: int = 0) -> Estimate:
    """AUROC with a stratified bootstrap CI (members and non-members resampled separately)."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    point = auroc(s, y)
    if len(pos) < 2 or len(neg) < 2:
        return Estimate(point, len(s), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        boots.append(auroc(s[idx], y[idx]))
    lo, hi = np.quantile(boots, [0.025, 0.975])  # percentile CI, widened to hold the point at tiny n
    return Estimate(point, len(s), float(min(lo, point)), float(max(hi, point)), "bootstrap")


def tpr_at_fpr(scores: Sequence[float], labels: Sequence[bool], fpr: float = 0.1) -> float:
    """True-positive rate at the threshold that lets through at most ``fpr`` of non-members (Carlini et al. 2022
    argue low-FPR TPR is what matters for privacy)."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    neg = np.sort(s[~y])[::-1]
    if len(neg) == 0 or not y.any():
        return float("nan")
    k = int(math.floor(fpr * len(neg)))
    threshold = neg[k] if k < len(neg) else -np.inf
    return float((s[y] > threshold).mean())
