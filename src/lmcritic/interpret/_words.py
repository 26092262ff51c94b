"""Words from character offsets: splitting a text, pooling sub-word token scores into words, deleting words.

Words are runs of letters/digits (with inner apostrophes) or single punctuation marks, so punctuation gets
its own score (it is one of the "should not matter" features the spurious signal counts).
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"[ \t]{2,}")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the words of ``text``, in order."""
    return [m.span() for m in _WORD.finditer(text)]


def is_punctuation(word: str) -> bool:
    return bool(word) and not any(ch.isalnum() for ch in word)


def pool_to_words(offsets: Sequence[tuple[int, int]], scores: Sequence[float],
                  spans: Sequence[tuple[int, int]]) -> list[float]:
    """Sum each token's score into the words its character span overlaps (split by overlap length).

    A token that covers no word (a space, a special token with an empty span) contributes to none: its
    score stays visible at the token level only.
    """
    out = [0.0] * len(spans)
    starts = [s for s, _ in spans]
    for (a, b), score in zip(offsets, scores):
        if b <= a:
            continue
        hits = _overlaps(a, b, spans, starts)
        total = sum(n for _, n in hits)
        for i, n in hits:
            out[i] += score * n / total
    return out


def _overlaps(a: int, b: int, spans: Sequence[tuple[int, int]], starts: Sequence[int]) -> list[tuple[int, int]]:
    import bisect

    i = max(0, bisect.bisect_right(starts, a) - 1)
    hits = []
    while i < len(spans) and spans[i][0] < b:
        n = min(b, spans[i][1]) - max(a, spans[i][0])
        if n > 0:
            hits.append((i, n))
        i += 1
    return hits


def remove_words(text: str, spans: Sequence[tuple[int, int]], drop: Iterable[int]) -> str:
    """``text`` with the words at indices ``drop`` deleted; the whitespace left behind is collapsed."""
    gone = sorted(set(drop))
    if not gone:
        return text
    pieces, last = [], 0
    for i in gone:
        a, b = spans[i]
        pieces.append(text[last:a])
        last = b
    pieces.append(text[last:])
    return _tidy("".join(pieces))


def keep_words(text: str, spans: Sequence[tuple[int, int]], keep: Iterable[int], editable: Sequence[int]) -> str:
    """``text`` with every editable word deleted except those in ``keep`` (ERASER's sufficiency input)."""
    kept = set(keep)
    return remove_words(text, spans, [i for i in editable if i not in kept])


def _tidy(text: str) -> str:
    """Collapse the double spaces a deletion leaves and drop spaces stranded before line ends."""
    text = _SPACES.sub(" ", text)
    return re.sub(r" +\n", "\n", re.sub(r"\n +", "\n", text))
