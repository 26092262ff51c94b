"""Chinese synonyms from HIT's Tongyici Cilin (extended), as a word swap (attacks) and a perturbation (INV).

Cilin's ``=`` leaves are sets of words with one meaning (its ``#`` leaves, only related words, are not used).
Sets are broad (喜欢 shares one with 高兴 through 欢喜), so candidates are filtered the way counter-fitting
filters embedding neighbours: same length as the word, common (jieba dictionary count), and for the
meaning-preserving perturbation only words of a single sense that share a character with the word (Chinese
synonyms mostly share a morpheme: 电影/影片, 推荐/举荐), which keeps 推荐 from becoming 引进.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, Sequence

from lmcritic.lang._detect import has_han
from lmcritic.perturb import _zh_resources as R
from lmcritic.perturb.base import Edit, Perturbation, Token, WordSwap, finish
from lmcritic.perturb.zh_char import ZH_ONLY, han_words


def synonyms(word: str, min_count: int = 100, strict: bool = False) -> list[str]:
    """Cilin synonyms of ``word`` of the same length, most frequent first. ``strict`` (for meaning-preserving
    rewrites): both words have a single sense in Cilin and share a character (推荐 → 举荐, never → 引进)."""
    table = R.cilin_synonyms()
    sets = table.get(word, ())
    if not sets or (strict and len(sets) > 1):
        return []
    freq = R.word_frequencies()
    found = {w for s in sets for w in s if w != word and freq.get(w, 0) >= min_count and len(w) == len(word)
             and has_han(w) and (not strict or (len(table.get(w, ())) == 1 and set(w) & set(word)))}
    return sorted(found, key=lambda w: (-freq.get(w, 0), w))


@dataclass(frozen=True)
class SynonymSwap(WordSwap):
    """Word swap: Cilin synonyms of a Chinese content word."""

    name = "zh_synonym"
    languages: ClassVar[frozenset[str]] = ZH_ONLY
    min_count: int = 100
    max_candidates: int = 15

    def candidates(self, tokens: Sequence[Token], index: int) -> list[str]:
        word = tokens[index].text
        simple = R.simplified_view(word)  # Cilin is simplified; a traditional sentence gets traditional synonyms
        if not has_han(word) or simple in R.stopwords():
            return []
        found = synonyms(simple, self.min_count)[: self.max_candidates]
        sentence = "".join(t.text for t in tokens)
        return [R.in_script_of(sentence, w) for w in found] if R.is_traditional(sentence) else found


@dataclass(frozen=True)
class Synonyms(Perturbation):
    """Cilin synonyms (single-sense words, same length, common) for ~15% of the content words (at least one)."""

    name = "zh_synonyms"
    languages: ClassVar[frozenset[str]] = ZH_ONLY
    rate: float = 0.15
    top: int = 2  # choose among the most frequent few synonyms
    min_count: int = 100

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        words = han_words(text)
        simple = R.simplified_view(text)  # Cilin is simplified; traditional text gets traditional synonyms
        options = {i: [R.in_script_of(text, w, t.text) for w in s[: self.top]] for i, t in enumerate(words)
                   if (s := synonyms(simple[t.start : t.end], self.min_count, strict=True))}
        if not options:
            return None
        k = max(1, round(self.rate * len(words)))
        picked = rng.sample(sorted(options), min(k, len(options)))
        return finish(text, [Edit(words[i].start, words[i].end, words[i].text, rng.choice(options[i]), self.name)
                             for i in picked])
