"""Is a bias already in the data? Association of identity terms and groups with labels in a corpus.

For every identity term (and every group, pooling its terms) that occurs in a corpus: how many documents
mention it, how they split over labels, P(target | term) with a Wilson CI, PMI(term, target) =
log2 P(target | term) / P(target) with a CI from the Wilson bounds (the corpus base rate is treated as fixed,
which is fine when the corpus is much larger than the term's documents), and a two-sided Fisher exact test
of term vs. the rest of the corpus, BH-corrected over all terms. Unlabelled text is labelled by its
sentiment words (VADER lexicon compound ≥ 0.05 → positive, ≤ −0.05 → negative, else neutral).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from lmcritic.lexicon._index import Mention, find_all


@dataclass(frozen=True)
class Association:
    """One term's (or group's) label distribution against the corpus."""

    term: str  # the term, or "group:<name>" for a pooled group
    attribute: str
    group: str
    n_docs: int
    counts: dict[str, int]
    target: str
    rate: float  # P(target | term)
    rate_ci: tuple[float, float]
    base_rate: float  # P(target) over the whole corpus
    pmi: float  # log2(rate / base_rate); a zero count is floored at 0.5 so it stays finite
    pmi_ci: tuple[float, float]
    p_value: float
    p_adjusted: float = float("nan")
    examples: tuple[int, ...] = field(default=())  # indices into the corpus, first few


@dataclass(frozen=True)
class CorpusAssociations:
    n_docs: int
    label_counts: dict[str, int]
    target: str
    terms: tuple[Association, ...]
    groups: tuple[Association, ...]


def sentiment_labels(texts: Sequence[str]) -> list[str]:
    """Label each text by its VADER-lexicon sentiment words (for corpora without labels)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    out = []
    for t in texts:
        c = sia.polarity_scores(t)["compound"]
        out.append("positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral")
    return out


def associate(texts: Sequence[str], labels: Sequence[Any] | None = None, target: str | None = None,
              attributes: Sequence[str] | None = None, min_count: int = 5, n_examples: int = 5) -> CorpusAssociations:
    """Associations of every identity term and group occurring in ≥ ``min_count`` documents with ``target``."""
    labs = [str(x) for x in labels] if labels is not None else sentiment_labels(texts)
    if len(labs) != len(texts):
        from lmcritic.errors import DataError

        raise DataError(f"{len(texts)} texts but {len(labs)} labels", "give one label per text")
    tgt = target if target is not None else _default_target(labs)
    wanted = frozenset(attributes) if attributes else None
    term_docs, group_docs = index_docs(texts, wanted)
    label_counts = _count(labs, range(len(labs)))
    base = label_counts.get(tgt, 0) / max(1, len(labs))
    terms = [_assoc(k, docs, labs, tgt, base, n_examples) for k, docs in term_docs.items() if len(docs) >= min_count]
    groups = [_assoc(k, docs, labs, tgt, base, n_examples) for k, docs in group_docs.items() if len(docs) >= min_count]
    return CorpusAssociations(len(texts), label_counts, tgt, _adjust(terms), _adjust(groups))


def _default_target(labels: Sequence[str]) -> str:
    values = sorted(set(labels))
    for cand in ("positive", "1", "pos", "true"):
        if cand in values:
            return cand
    return values[-1] if values else ""


def index_docs(texts: Sequence[str], wanted: frozenset[str] | None) -> tuple[dict, dict]:
    """The documents naming each identity term and each group, ``(term or "group:G", attribute, group)`` → rows;
    ``wanted``: only these attributes (None: every one)."""
    term_docs: dict[tuple[str, str, str], list[int]] = {}
    group_docs: dict[tuple[str, str, str], list[int]] = {}
    for i, text in enumerate(texts):
        mentions: list[Mention] = find_all(text, wanted)
        for key in {(m.text.lower(), m.attribute, m.group) for m in mentions}:
            term_docs.setdefault(key, []).append(i)
        for key in {(f"group:{m.group}", m.attribute, m.group) for m in mentions}:
            group_docs.setdefault(key, []).append(i)
    return term_docs, group_docs


def _count(labels: Sequence[str], docs) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in docs:
        out[labels[i]] = out.get(labels[i], 0) + 1
    return dict(sorted(out.items()))


def _assoc(key: tuple[str, str, str], docs: list[int], labels: Sequence[str], target: str, base: float,
           n_examples: int) -> Association:
    from lmcritic.stats import wilson

    n = len(docs)
    counts = _count(labels, docs)
    k = counts.get(target, 0)
    lo, hi = wilson(k, n)
    total_t = round(base * len(labels))
    p = _fisher(k, n - k, total_t - k, len(labels) - n - (total_t - k))
    return Association(key[0], key[1], key[2], n, counts, target, k / n, (lo, hi), base, _pmi(k, n, base),
                       (_pmi(lo * n, n, base), _pmi(hi * n, n, base)), p, examples=tuple(docs[:n_examples]))


def _pmi(k: float, n: float, base: float) -> float:
    if base <= 0 or n <= 0:
        return float("nan")
    return math.log2(max(k, 0.5) / n / base)


def _fisher(a: int, b: int, c: int, d: int) -> float:
    from scipy.stats import fisher_exact

    return float(fisher_exact([[a, b], [max(c, 0), max(d, 0)]]).pvalue)


def _adjust(rows: list[Association]) -> tuple[Association, ...]:
    from dataclasses import replace

    from lmcritic.stats import benjamini_hochberg

    adj = benjamini_hochberg([r.p_value for r in rows]) if rows else []
    out = [replace(r, p_adjusted=q) for r, q in zip(rows, adj)]
    return tuple(sorted(out, key=lambda r: (r.p_adjusted, -abs(r.pmi))))


__all__ = ["Association", "CorpusAssociations", "associate", "index_docs", "sentiment_labels"]
