"""Typo correction by a noisy channel: the intended word maximises P(word) · P(typo | word).

P(word) is the word's frequency in current English (wordfreq, which has American spellings such as "humor" that
symspell's 82k web-count list lacks); P(typo | word) is a channel over single Damerau edits with the shape typing
errors have in typing studies (Damerau 1964; Kernighan, Church & Gale 1990): an omitted letter — above all one of
a doubled pair — or two swapped neighbours are common, an extra letter is likely when it repeats or sits next to a
neighbour on the keyboard, a substituted letter is likely when the keys are adjacent (or both are vowels) and
rare otherwise, and the first letter is seldom wrong. Nearest-by-count alone (symspell's CLOSEST) turns "hmor"
into "amor" and "sily" into "silk"; the channel keeps "humor" and "silly". Candidates are the known words one
edit away: :func:`_text.is_known`, the test :func:`_text.is_typo` negates.
"""
from __future__ import annotations

import functools
import math

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEYS = {c: (r, i + 0.5 * r) for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
_VOWELS = frozenset("aeiou")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# log P(typo | word) per edit kind, in nats
CHANNEL = {"omit": -1.0, "omit_double": -0.3, "insert": -1.5, "insert_near": -0.8, "swap": -1.0,
           "sub_adjacent": -1.2, "sub_vowel": -1.5, "sub": -3.0, "first_letter": -1.5}


def adjacent(a: str, b: str) -> bool:
    """Whether two letters are neighbouring keys on a QWERTY keyboard."""
    if a == b or a not in _KEYS or b not in _KEYS:
        return False
    (ra, ca), (rb, cb) = _KEYS[a], _KEYS[b]
    return abs(ra - rb) <= 1 and abs(ca - cb) <= 1.0


def channel(typo: str, word: str) -> float:
    """log P(typo | word) for a typo one Damerau edit from ``word`` (both lower-case)."""
    n, m = len(typo), len(word)
    if m == n + 1:  # a letter of word left out
        i = next((k for k in range(n) if typo[k] != word[k]), n)
        doubled = (i > 0 and word[i - 1] == word[i]) or (i + 1 < m and word[i + 1] == word[i])
        return CHANNEL["omit_double" if doubled else "omit"] + _first(i)
    if m == n - 1:  # an extra letter typed
        i = next((k for k in range(m) if typo[k] != word[k]), m)
        near = any(typo[i] == typo[j] or adjacent(typo[i], typo[j]) for j in (i - 1, i + 1) if 0 <= j < n)
        return CHANNEL["insert_near" if near else "insert"] + _first(i)
    diff = [k for k in range(n) if typo[k] != word[k]]
    i = diff[0]
    if len(diff) == 2 and diff[1] == i + 1 and typo[i] == word[i + 1] and typo[i + 1] == word[i]:
        return CHANNEL["swap"] + _first(i)
    a, b = typo[i], word[i]
    kind = "sub_adjacent" if adjacent(a, b) else "sub_vowel" if a in _VOWELS and b in _VOWELS else "sub"
    return CHANNEL[kind] + _first(i)


def _first(i: int) -> float:
    return CHANNEL["first_letter"] if i == 0 else 0.0


def edits1(word: str) -> set[str]:
    """Every string one Damerau edit (delete, swap, replace, insert) from ``word``."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    out |= {a + c + b for a, b in splits for c in _LETTERS}
    out.discard(word)
    return out


@functools.lru_cache(maxsize=200_000)
def known(word: str) -> bool:
    from lmcritic.diagnose import _text

    return len(word) >= 2 and _text.is_known(word)


@functools.lru_cache(maxsize=50_000)
def correct_word(typo: str) -> str | None:
    """The most probable intended word for a lower-case ``typo`` (None when no known word is one edit away)."""
    from lmcritic.diagnose import _text

    cands = [c for c in edits1(typo) if known(c)]
    if not cands:
        return None
    return max(cands, key=lambda c: (_text.zipf(c) * math.log(10) + channel(typo, c), c))


__all__ = ["CHANNEL", "adjacent", "channel", "correct_word", "edits1", "known"]
