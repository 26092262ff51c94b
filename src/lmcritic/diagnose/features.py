"""Per-case features for slicing: what the input looks like, how surprising it is to the model, and the
tags its probe stored. Every feature is discrete (numeric ones are cut at quantiles of the probe's own
cases), so a slice is a conjunction of ``feature = value`` predicates that a reviewer can read.

Honest slices: nothing derived from the outcome is a feature. Label and prediction tags (``expected``,
``predicted``, ...) are dropped — a slice "expected=1 & predicted=0" is the failures by definition — and the
"contains word w" features are chosen by how often a word occurs (plus the training corpus's label-associated
tokens, when given), never by how often it fails, so the slice search's Fisher tests and BH keep their meaning.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lmcritic.diagnose import _text
from lmcritic.probes.base import Record

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend

SKIP_TAGS = frozenset({"line", "defect", "of_case", "test", "dev_line"})  # ids, not properties
OUTCOME_TAGS = frozenset({"expected", "predicted", "prediction", "label", "gold", "target", "answer", "correct",
                          "flipped", "outcome", "passed", "reference_prediction", "gold_label", "y"})
MAX_LEVELS = 12  # a tag with more distinct values is an identifier, not a slice feature
PPL_CHUNK = 32
WORD_FEATURES = 15  # "contains word w" features, the most failure-enriched words


@dataclass(frozen=True)
class FeatureTable:
    """``columns[name][i]`` is the (discrete) value of feature ``name`` for case ``case_ids[i]``;
    ``numeric`` keeps the raw numbers behind binned features (for rank tests)."""

    case_ids: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    numeric: dict[str, tuple[float, ...]] = field(default_factory=dict)
    clusters: tuple[str, ...] | None = None  # the source sentence of each case (variants of one share it)

    def value(self, feature: str, case_id: str) -> str:
        return self.columns[feature][self.case_ids.index(case_id)]


def input_text(record: Record) -> str | None:
    """The text the case is about: the record's typed ``text`` (None: the case has no text input)."""
    return record.text


def compute_features(records: Sequence[Record], model: Backend | None = None, perplexity: bool = True,
                     extra_words: Sequence[str] = ()) -> FeatureTable:
    """Text features, the model's own input perplexity (when it offers rolling log-probs) and stored tags;
    ``extra_words``: more "contains word" candidates chosen without the outcome (e.g. corpus-associated tokens)."""
    texts = [r.text or "" for r in records]
    numeric: dict[str, list[float]] = {
        "length": [float(len(_text.words(t))) for t in texts],
        "rare_word_rate": [_text.rare_word_rate(t) for t in texts],
    }
    if perplexity and model is not None:
        ppl = input_perplexity(model, texts)
        if ppl is not None:
            numeric["perplexity"] = ppl
    columns: dict[str, list[str]] = {name: _bins(vals) for name, vals in numeric.items()}
    columns.update(_text_columns(texts))
    columns.update(_word_columns(texts, extra=extra_words))
    columns.update(_tag_columns(records))
    columns = {k: v for k, v in columns.items() if len(set(v)) > 1}
    return FeatureTable(tuple(r.case_id for r in records), {k: tuple(v) for k, v in columns.items()},
                        {k: tuple(v) for k, v in numeric.items()}, _clusters(records))


def _clusters(records: Sequence[Record]) -> tuple[str, ...] | None:
    """Cases made from one source sentence (perturbations, counterfactual variants) form a cluster."""
    if not all("line" in r.tags for r in records):
        return None
    keys = tuple(f"{r.tags.get('source')}:{r.tags['line']}" for r in records)
    return keys if len(set(keys)) < len(keys) else None


def _text_columns(texts: Sequence[str]) -> dict[str, list[str]]:
    idents = [_text.identity_terms(t) for t in texts]
    from lmcritic.diagnose.profile import TEXT_FEATURES, text_feature

    return {
        **{f: [text_feature(f, t) for t in texts] for f in TEXT_FEATURES},
        "identity_term": [_yes(bool(i)) for i in idents],
        "identity_attribute": [sorted({a for _, a in i})[0] if i else "none" for i in idents],
    }


def _word_columns(texts: Sequence[str], top: int = WORD_FEATURES, extra: Sequence[str] = ()) -> dict[str, list[str]]:
    """``word:w = yes/no`` for the most frequent content words (3%–60% of the cases) and ``extra`` tokens (words
    or symbol runs)."""
    sets = [set(_text.lower_words(t)) for t in texts]
    n = len(texts)
    counts: dict[str, int] = {}
    for ws in sets:
        for w in ws:
            counts[w] = counts.get(w, 0) + 1
    from lmcritic.perturb.lexical import stopwords

    floor, stop = max(5, int(0.03 * n)), stopwords()
    frequent = sorted((-k, w) for w, k in counts.items() if floor <= k <= 0.6 * n and w not in stop and len(w) > 1)
    tokens = [set(_text.tokens(t)) for t in texts] if any(_text.is_symbol(w) for w in extra) else sets
    extra_counts = {w: sum(w in ts for ts in tokens) for w in extra}
    words = [w for _, w in frequent[:top]] + [w for w in extra if floor <= extra_counts[w] < n]
    return {f"word:{w}": [_yes(w in ts) for ts in tokens] for w in dict.fromkeys(words)}


def _tag_columns(records: Sequence[Record]) -> dict[str, list[str]]:
    keys = sorted({k for r in records for k in r.tags if k not in SKIP_TAGS and k not in OUTCOME_TAGS})
    out: dict[str, list[str]] = {}
    for key in keys:
        raw = [r.tags.get(key) for r in records]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw if v is not None) and \
                len({v for v in raw if v is not None}) > MAX_LEVELS:
            out[f"tag.{key}"] = _bins([float(v) if v is not None else math.nan for v in raw])
            continue
        values = ["none" if v is None else str(v) for v in raw]
        if len(set(values)) <= MAX_LEVELS:
            out[f"tag.{key}"] = values
    return out


def _bins(values: Sequence[float]) -> list[str]:
    """Tertiles of the probe's own cases: low / mid / high (ties stay together)."""
    x = np.asarray(values, dtype=float)
    ok = x[~np.isnan(x)]
    if len(ok) < 3 or np.ptp(ok) == 0:
        return ["all"] * len(x)
    lo, hi = np.quantile(ok, [1 / 3, 2 / 3])
    return ["none" if math.isnan(v) else "low" if v <= lo else "high" if v > hi else "mid" for v in x]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def input_perplexity(model: Backend, texts: Sequence[str]) -> list[float] | None:
    """Per-token perplexity of each text under the model itself (rolling log-probs, batched), or None."""
    from lmcritic.requests import Capability, RollingRequest

    if not getattr(model, "supports", lambda c: False)(Capability.ROLLING_LOGPROBS):
        return None
    # by length, so each chunk's rows are padded to similar lengths (alphabetical chunks padded ~35% more tokens)
    unique = sorted({t for t in texts if t.strip()}, key=lambda t: (len(t), t))
    ppl: dict[str, float] = {}
    for start in range(0, len(unique), PPL_CHUNK):
        chunk = unique[start : start + PPL_CHUNK]
        for text, res in zip(chunk, model.rolling_logprobs([RollingRequest(t) for t in chunk])):
            ppl[text] = math.exp(-res.total / max(1, res.n_tokens))
    return [ppl.get(t, math.nan) for t in texts]
