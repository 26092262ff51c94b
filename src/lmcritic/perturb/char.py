"""Character-level noise: realistic typos (a misspelling dictionary, then keyboard slips that make a
non-word) and DeepWordBug-style character edits (Gao et al. 2018: swap, substitute, delete, insert).

A typo that lands on another real word ("form" for "from") changes meaning rather than spelling, so
generated typos are kept only when the result is NOT in symspellpy's 82k-word English dictionary.
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Sequence

from lmcritic.lang._detect import has_han
from lmcritic.perturb.base import Edit, Perturbation, Token, WordSwap, finish, match_case, tokenize

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


@functools.lru_cache(maxsize=1)
def keyboard_neighbours() -> dict[str, str]:
    """QWERTY keys adjacent to each letter (same row and the staggered rows above/below)."""
    pos = {ch: (r, c) for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}
    out = {}
    for ch, (r, c) in pos.items():
        near = [o for o, (r2, c2) in pos.items() if o != ch and abs(r2 - r) <= 1 and
                (c2 - c in (-1, 0, 1) if r2 == r else c2 - c in ((0, 1) if r2 < r else (-1, 0)))]
        out[ch] = "".join(sorted(near))
    return out


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """symspellpy's English frequency dictionary (82,765 words): what counts as a real word."""
    import importlib.resources

    text = importlib.resources.files("symspellpy").joinpath("frequency_dictionary_en_82_765.txt").read_text()
    return frozenset(line.split(" ", 1)[0] for line in text.splitlines() if line)


@functools.lru_cache(maxsize=1)
def misspellings() -> dict[str, tuple[str, ...]]:
    from lmcritic.perturb._resources import lexicon

    return {k: tuple(v) for k, v in lexicon("misspellings")["pairs"].items()}


def keyboard_typos(word: str) -> list[str]:
    """Plausible slips, most likely first: neighbour key, transposition, dropped letter, doubled letter.
    First letters are kept (people rarely mistype them; readers rely on them)."""
    w, near, out = word.lower(), keyboard_neighbours(), []
    for i in range(1, len(w)):
        out += [w[:i] + n + w[i + 1 :] for n in near.get(w[i], "")]
    out += [w[:i] + w[i + 1] + w[i] + w[i + 2 :] for i in range(1, len(w) - 1) if w[i] != w[i + 1]]
    out += [w[:i] + w[i + 1 :] for i in range(1, len(w))]
    out += [w[: i + 1] + w[i] + w[i + 1 :] for i in range(1, len(w)) if w[i].isalpha()]
    real = english_words()
    seen: dict[str, None] = {}
    for t in out:
        if t != w and t not in real:
            seen.setdefault(t, None)
    return list(seen)


def realistic_typos(word: str) -> list[str]:
    """Dictionary misspellings first, then keyboard slips; casing follows the original word."""
    if (not word.isalpha() and "'" not in word) or has_han(word):
        return []  # Chinese words get their own typos (lmcritic.perturb.zh_char)
    known = list(misspellings().get(word.lower(), ()))
    slips = keyboard_typos(word) if len(word) >= 3 and word.isalpha() else []
    return [match_case(word, t) for t in dict.fromkeys(known + slips) if t != word.lower()]


@dataclass(frozen=True)
class Typos(Perturbation):
    """Misspell a share of the words (at least one), realistically."""

    name = "typos"
    rate: float = 0.1
    prefer_dictionary: float = 0.8  # chance of using a known misspelling when one exists

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        tokens = [t for t in tokenize(text) if realistic_typos(t.text)]
        if not tokens:
            return None
        k = max(1, round(self.rate * len(tokenize(text))))
        edits = [Edit(t.start, t.end, t.text, self._typo(t.text, rng), self.name)
                 for t in rng.sample(tokens, min(k, len(tokens)))]
        return finish(text, edits)

    def _typo(self, word: str, rng: random.Random) -> str:
        known = misspellings().get(word.lower())
        if known and rng.random() < self.prefer_dictionary:
            return match_case(word, rng.choice(known))
        slips = keyboard_typos(word) if len(word) >= 3 and word.isalpha() else []
        return match_case(word, rng.choice(slips)) if slips else match_case(word, rng.choice(known or (word,)))


def char_edits(word: str) -> list[str]:
    """DeepWordBug's four operations at every inner position: swap adjacent, substitute (keyboard
    neighbour; the paper substitutes a random letter), delete, insert (keyboard neighbour)."""
    w, near, out = word, keyboard_neighbours(), []
    for i in range(len(w)):
        low = w[i].lower()
        if i + 1 < len(w) and w[i] != w[i + 1]:
            out.append(w[:i] + w[i + 1] + w[i] + w[i + 2 :])
        out += [w[:i] + match_case(w[i], n) + w[i + 1 :] for n in near.get(low, "")[:2]]
        if len(w) > 2:
            out.append(w[:i] + w[i + 1 :])
        out += [w[:i] + match_case(w[i], n) + w[i:] for n in near.get(low, "")[:1]]
    return [c for c in dict.fromkeys(out) if c != w]


@dataclass(frozen=True)
class CharNoise(Perturbation):
    """DeepWordBug-style noise: one random character edit in a share of the words (length >= 3)."""

    name = "char_noise"
    rate: float = 0.1

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        tokens = [t for t in tokenize(text) if len(t.text) >= 3 and t.text.isalpha() and not has_han(t.text)]
        if not tokens:
            return None
        k = max(1, round(self.rate * len(tokenize(text))))
        picked = rng.sample(tokens, min(k, len(tokens)))
        return finish(text, [Edit(t.start, t.end, t.text, rng.choice(char_edits(t.text)), self.name) for t in picked])


@dataclass(frozen=True)
class CharSwap(WordSwap):
    """Word swap for DeepWordBug-style attacks: every single-character edit of the word, up to a cap."""

    name = "char"
    max_candidates: int = 50
    min_length: int = 3

    def candidates(self, tokens: Sequence[Token], index: int) -> list[str]:
        word = tokens[index].text
        if len(word) < self.min_length or not word.isalpha() or has_han(word):
            return []
        return char_edits(word)[: self.max_candidates]


@dataclass(frozen=True)
class TypoSwap(WordSwap):
    """Word swap with realistic misspellings (dictionary first, then keyboard slips that are non-words)."""

    name = "typo"
    max_candidates: int = 30

    def candidates(self, tokens: Sequence[Token], index: int) -> list[str]:
        return realistic_typos(tokens[index].text)[: self.max_candidates]
