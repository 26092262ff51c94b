"""Generation quality: BLEU, chrF, TER (sacrebleu), ROUGE-1/2/L (rouge-score) and MiniLM cosine.

Corpus metrics are computed the way sacrebleu does — per-sentence sufficient statistics, summed, then
scored — and those statistics are cached per (prediction, reference) pair. So the bootstrap in
:func:`lmcritic.metrics.estimate`, which recomputes a metric on 1,000 resamples of the cases, costs
sums, not re-tokenisation: corpus BLEU stays corpus BLEU (not a mean of sentence BLEUs) with an honest CI.

Scales follow the libraries: BLEU, chrF and TER in 0–100 (TER: lower is better); ROUGE F-measures
and cosine in 0–1. ROUGE uses rouge-score's tokenizer with Porter stemming, which keeps only ASCII
letters and digits: it is meant for English outputs. sacrebleu, rouge-score and torch are imported on
first use, never when this module is imported.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

from lmcritic.errors import ConfigError, InputError
from lmcritic.metrics import metric

SACRE_KINDS = ("bleu", "chrf", "ter")
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_CACHE_LIMIT = 200_000
_COSINES: dict[tuple[str, str], float] = {}


# -- corpus metrics (registered) -------------------------------------------------------------------
@metric("bleu", ("predictions", "references"))
def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenizer, exp smoothing, 0–100)."""
    return _sacre_corpus("bleu", predictions, references)


@metric("chrf", ("predictions", "references"))
def chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (character 6-grams, beta 2; sacrebleu defaults, 0–100)."""
    return _sacre_corpus("chrf", predictions, references)


@metric("ter", ("predictions", "references"), higher_is_better=False)
def ter(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus TER: edits per reference word × 100 (lower is better)."""
    return _sacre_corpus("ter", predictions, references)


@metric("rouge1", ("predictions", "references"))
def rouge1(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-1 F-measure (unigram overlap, Porter-stemmed)."""
    return _rouge_mean(0, predictions, references)


@metric("rouge2", ("predictions", "references"))
def rouge2(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-2 F-measure (bigram overlap, Porter-stemmed)."""
    return _rouge_mean(1, predictions, references)


@metric("rougeL", ("predictions", "references"))
def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure (longest common subsequence, Porter-stemmed)."""
    return _rouge_mean(2, predictions, references)


@metric("semantic_similarity", ("predictions", "references"))
def semantic_similarity(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean cosine of all-MiniLM-L6-v2 sentence embeddings of prediction and reference."""
    sims = cosines(predictions, references)
    return sum(sims) / len(sims) if sims else float("nan")


GENERATION_METRICS = (*SACRE_KINDS, *ROUGE_TYPES, "semantic_similarity")


# -- per-case helpers (for records) ---------------------------------------------------------------
def sentence_bleu(prediction: str, reference: str) -> float:
    """Sentence BLEU as ``sacrebleu.sentence_bleu`` (effective n-gram order, exp smoothing), 0–100."""
    return _sacre_sentence("bleu", prediction, reference)


def sentence_chrf(prediction: str, reference: str) -> float:
    return _sacre_sentence("chrf", prediction, reference)


def sentence_ter(prediction: str, reference: str) -> float:
    return _sacre_sentence("ter", prediction, reference)


def rouge(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F-measures of one prediction against one reference."""
    return dict(zip(ROUGE_TYPES, _rouge_pair(prediction, reference)))


def cosines(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """Per-pair MiniLM cosine; pairs already seen in this process are not encoded again."""
    _check_aligned(predictions, references)
    pairs = list(zip(predictions, references))
    todo = list(dict.fromkeys(p for p in pairs if p not in _COSINES))
    if todo:
        from lmcritic import _minilm

        if len(_COSINES) + len(todo) > _CACHE_LIMIT:
            _COSINES.clear()
        sims = _minilm.pair_cosine([p for p, _ in todo], [r for _, r in todo])
        _COSINES.update(zip(todo, (float(s) for s in sims)))
    return [_COSINES[p] for p in pairs]


def case_scores(prediction: str, reference: str) -> dict[str, float]:
    """Every lexical score of one case, named as the corpus metrics are (cosine is batched separately)."""
    return {"bleu": sentence_bleu(prediction, reference), "chrf": sentence_chrf(prediction, reference),
            "ter": sentence_ter(prediction, reference), **rouge(prediction, reference)}


# -- internals ------------------------------------------------------------------------------------
def _sacre_corpus(kind: str, predictions: Sequence[str], references: Sequence[str]) -> float:
    _check_aligned(predictions, references)
    if not predictions:
        return float("nan")
    stats = [_pair_stats(kind, p, r) for p, r in zip(predictions, references)]
    totals = [sum(column) for column in zip(*stats)]
    return float(_scorer(kind, sentence=False)._compute_score_from_stats(totals).score)


def _sacre_sentence(kind: str, prediction: str, reference: str) -> float:
    stats = list(_pair_stats(kind, prediction, reference))
    return float(_scorer(kind, sentence=True)._compute_score_from_stats(stats).score)


@functools.lru_cache(maxsize=_CACHE_LIMIT)
def _pair_stats(kind: str, prediction: str, reference: str) -> tuple[float, ...]:
    """sacrebleu's segment statistics (n-gram matches, lengths, edits) for one pair.

    Uses sacrebleu's own ``_extract_corpus_statistics`` / ``_compute_score_from_stats`` pair (what its
    paired-bootstrap test uses); tests pin the result to the public ``corpus_*`` functions.
    """
    _check_text(prediction, "prediction")
    _check_text(reference, "reference")
    return tuple(_scorer(kind, sentence=False)._extract_corpus_statistics([prediction], [[reference]])[0])


@functools.lru_cache(maxsize=None)
def _scorer(kind: str, sentence: bool) -> Any:
    """One sacrebleu metric object per kind; sentence BLEU uses effective order as sentence_bleu does."""
    metrics = _need("sacrebleu.metrics", "sacrebleu")
    if kind == "bleu":
        return metrics.BLEU(effective_order=sentence)
    if kind == "chrf":
        return metrics.CHRF()
    if kind == "ter":
        return metrics.TER()
    raise ConfigError(f"unknown sacrebleu metric {kind!r}", f"known: {', '.join(SACRE_KINDS)}")


def _rouge_mean(which: int, predictions: Sequence[str], references: Sequence[str]) -> float:
    _check_aligned(predictions, references)
    if not predictions:
        return float("nan")
    return sum(_rouge_pair(p, r)[which] for p, r in zip(predictions, references)) / len(predictions)


@functools.lru_cache(maxsize=_CACHE_LIMIT)
def _rouge_pair(prediction: str, reference: str) -> tuple[float, float, float]:
    _check_text(prediction, "prediction")
    _check_text(reference, "reference")
    scores = _rouge_scorer().score(reference, prediction)  # rouge-score takes (target, prediction)
    return tuple(float(scores[t].fmeasure) for t in ROUGE_TYPES)  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    rouge_scorer = _need("rouge_score.rouge_scorer", "rouge-score")
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def _need(module: str, pip_name: str) -> Any:
    """Import an optional dependency, or say which pip command provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"generation metrics need the {pip_name!r} package",
                          f"pip install {pip_name}") from None


def _check_aligned(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ConfigError(f"{len(predictions)} predictions but {len(references)} references",
                          "give one reference per prediction")


def _check_text(text: object, what: str) -> None:
    if not isinstance(text, str):
        raise InputError(f"a {what} must be text, got {type(text).__name__}")
