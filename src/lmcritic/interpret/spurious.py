"""Spurious-feature signal: the share of attribution mass on words that should not decide the output.

Categories: identity terms (``lmcritic.lexicon.find_identity_terms`` when the bias area provides it, else
the small fallback list below), punctuation, and any planted trigger strings the user names. The share is
sum |score| over flagged words / sum |score| over all words of the span, per category and in total.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from lmcritic.interpret._words import is_punctuation
from lmcritic.interpret.types import Explanation

# Used only when lmcritic.lexicon is absent: common identity terms from CrowS-Pairs/HolisticBias categories.
FALLBACK_IDENTITY_TERMS = frozenset("""
man men woman women boy boys girl girls male female he she him her his hers husband wife mother father son
daughter brother sister gay lesbian bisexual transgender trans queer straight black white asian african
american hispanic latino latina latinx mexican chinese indian arab jewish jew jews muslim muslims christian
christians catholic hindu buddhist atheist immigrant immigrants poor rich old young elderly disabled blind deaf
autistic""".split())


def identity_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of identity terms in ``text`` (the bias lexicon when installed, else the fallback)."""
    try:
        from lmcritic.lexicon import find_identity_terms
    except ImportError:
        return [m.span() for m in re.finditer(r"\w+", text) if m.group().lower() in FALLBACK_IDENTITY_TERMS]
    return [(int(m.start), int(m.end)) for m in find_identity_terms(text)]


def spurious_share(ex: Explanation, triggers: Sequence[str] = ()) -> dict[str, Any]:
    """Per-category share of the span's absolute attribution mass, and the flagged words."""
    idx = ex.in_span()
    total = sum(abs(ex.word_scores[i]) for i in idx)
    flags = _flags(ex, idx, triggers)
    out: dict[str, Any] = {"words": {}, "total_mass": total}
    union: set[int] = set()
    for cat, hits in flags.items():
        union |= hits
        out[cat] = sum(abs(ex.word_scores[i]) for i in hits) / total if total > 0 else 0.0
        out["words"][cat] = [ex.words[i] for i in sorted(hits)]
    out["share"] = sum(abs(ex.word_scores[i]) for i in union) / total if total > 0 else 0.0
    return out


def _flags(ex: Explanation, idx: list[int], triggers: Sequence[str]) -> dict[str, set[int]]:
    ident = identity_spans(ex.target.text)
    trig = [m.span() for t in triggers if t for m in re.finditer(re.escape(t), ex.target.text, re.IGNORECASE)]
    within = lambda i, spans: any(a < ex.word_offsets[i][1] and ex.word_offsets[i][0] < b for a, b in spans)  # noqa: E731
    return {"identity": {i for i in idx if within(i, ident)},
            "punctuation": {i for i in idx if is_punctuation(ex.words[i])},
            "trigger": {i for i in idx if within(i, trig)}}
