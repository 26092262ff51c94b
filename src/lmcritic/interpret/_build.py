"""Assemble an :class:`Explanation` from token scores: pool to words, attach timings and details."""
from __future__ import annotations

from typing import Any, Sequence

from lmcritic.interpret._words import pool_to_words, word_spans
from lmcritic.interpret.types import Explanation, Target


def build(method: str, target: Target, tokens: Sequence[str], offsets: Sequence[tuple[int, int]],
          scores: Sequence[float], **extra: Any) -> Explanation:
    spans = word_spans(target.text)
    words = tuple(target.text[a:b] for a, b in spans)
    pooled = pool_to_words(offsets, scores, spans)
    return Explanation(method=method, target=target, tokens=tuple(tokens),
                       offsets=tuple((int(a), int(b)) for a, b in offsets), scores=tuple(float(s) for s in scores),
                       words=words, word_offsets=tuple(spans), word_scores=tuple(float(s) for s in pooled), **extra)
