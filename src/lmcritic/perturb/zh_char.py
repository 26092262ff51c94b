"""Chinese character-level noise: homophone typos, similar-shape characters and pinyin abbreviations.

Chinese is typed through pinyin input methods, so the common typo is not a slipped key but the wrong candidate
of the right syllable (在/再, 的/得/地): :class:`Homophones` replaces one character of a word with a common
character read the same (``pypinyin``, in context), ignoring tone by default as input methods do. Readers and
OCR confuse characters that look alike (己/已, 未/末): :class:`Shapes` uses a project-written table. Internet
users abbreviate words to pinyin initials (不好意思 → bhys): :class:`PinyinAbbreviations` uses a lexicon of
abbreviations in wide use, then initials. Each has a word-swap counterpart for attacks.
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import ClassVar, Sequence

from lmcritic.lang._detect import has_han
from lmcritic.perturb import _zh_resources as R
from lmcritic.perturb.base import Edit, Perturbation, Token, WordSwap, finish, tokenize

ZH_ONLY = frozenset({"zh"})


def han_words(text: str, skip_stopwords: bool = True) -> list[Token]:
    """The Chinese words of ``text`` (jieba), function words left out unless asked for."""
    stop = R.stopwords() if skip_stopwords else frozenset()
    return [t for t in tokenize(text) if has_han(t.text) and t.text not in stop]


@functools.lru_cache(maxsize=1)
def _toneless_index() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for reading, chars in R.homophone_index().items():
        out.setdefault(reading.rstrip("12345"), []).extend(chars)
    ranks = R.char_ranks()
    return {k: tuple(sorted(v, key=ranks.__getitem__)) for k, v in out.items()}


def homophones(ch: str, reading: str, tones: bool = False, top: int = 8, traditional: bool | None = None) -> list[str]:
    """Common characters read ``reading`` (toned, e.g. ``zai4``), most frequent first, ``ch`` excluded;
    ``tones=False`` matches the syllable only, as pinyin input methods do. ``traditional``: answer in traditional
    characters (default: when ``ch`` is one; a character written alike in both scripts needs its text's script)."""
    pool = R.homophone_index().get(reading, ()) if tones else _toneless_index().get(reading.rstrip("12345"), ())
    simple = R.converter("t2s").convert(ch)
    variants = {ch, simple, R.converter("s2t").convert(ch)}
    out = [c for c in pool if c not in variants][:top]
    if traditional is None:
        traditional = simple != ch
    return [R.converter("s2t").convert(c) for c in out] if traditional else out  # traditional text stays so


@functools.lru_cache(maxsize=20000)
def homophone_variants(word: str, tones: bool = False, top: int = 4,
                       traditional: bool | None = None) -> tuple[str, ...]:
    """``word`` with one character swapped for a homophone, for every character, best candidates first, in
    ``traditional`` characters or not (default: as ``word`` is written; 電影 -> 電應, never 電应)."""
    reads = R.readings(word)
    if len(reads) != len(word):
        return ()
    if traditional is None:
        traditional = R.is_traditional(word)
    out: list[str] = []
    for i, (ch, reading) in enumerate(zip(word, reads)):
        if has_han(ch) and R.common_char(R.converter("t2s").convert(ch)):
            out += [word[:i] + c + word[i + 1 :] for c in homophones(ch, reading, tones, top, traditional)]
    return tuple(dict.fromkeys(out))


def shape_variants(word: str) -> tuple[str, ...]:
    """``word`` with one character swapped for a similar-shape one (project table)."""
    table = R.shape_neighbours()
    return tuple(dict.fromkeys(word[:i] + c + word[i + 1 :] for i, ch in enumerate(word) for c in table.get(ch, ())))


def abbreviation(word: str) -> str | None:
    """The pinyin abbreviation of a 2–4 character word: the lexicon's, else its initials."""
    known = R.zh_lexicon("pinyin_abbreviations")["words"].get(R.simplified_view(word))
    if known:
        return known
    if 2 <= len(word) <= 4 and all(has_han(c) for c in word):
        return R.initials(word)
    return None


def _pick(tokens: Sequence[Token], rate: float, n_words: int, rng: random.Random) -> list[Token]:
    k = max(1, round(rate * n_words))
    return rng.sample(list(tokens), min(k, len(tokens)))


@dataclass(frozen=True)
class Homophones(Perturbation):
    """Input-method typos: in a share of the words (at least one), one character becomes a homophone."""

    name = "zh_homophones"
    languages: ClassVar[frozenset[str]] = ZH_ONLY
    rate: float = 0.1
    tones: bool = False  # True: same tone only
    top: int = 4  # choose among the most frequent few homophones of each character

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        words = han_words(text)
        trad = R.is_traditional(text)
        options = [t for t in words if homophone_variants(t.text, self.tones, self.top, trad)]
        if not options:
            return None
        picked = _pick(options, self.rate, len(words), rng)
        return finish(text, [Edit(t.start, t.end, t.text,
                                  rng.choice(homophone_variants(t.text, self.tones, self.top, trad)), self.name)
                             for t in picked])


@dataclass(frozen=True)
class Shapes(Perturbation):
    """Look-alike characters: in a share of the words (at least one), one character becomes a similar-shape
    one. Function words count here: 的/得 confusions are among the most common errors."""

    name = "zh_shapes"
    languages: ClassVar[frozenset[str]] = ZH_ONLY
    rate: float = 0.1

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        words = han_words(text, skip_stopwords=False)
        options = [t for t in words if shape_variants(t.text)]
        if not options:
            return None
        picked = _pick(options, self.rate, len(words), rng)
        return finish(text, [Edit(t.start, t.end, t.text, rng.choice(shape_variants(t.text)), self.name)
                             for t in picked])


@dataclass(frozen=True)
class PinyinAbbreviations(Perturbation):
    """Internet pinyin abbreviations for a share of the content words (at least one): 不好意思 → bhys."""

    name = "zh_pinyin"
    languages: ClassVar[frozenset[str]] = ZH_ONLY
    rate: float = 0.15
    lexicon_only: bool = False  # True: only abbreviations in wide use, never bare initials

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        known = R.zh_lexicon("pinyin_abbreviations")["words"]
        words = han_words(text)
        simple = R.simplified_view(text)  # the lexicon is simplified: 什麼 is listed as 什么
        options = [t for t in words
                   if (simple[t.start : t.end] in known if self.lexicon_only else abbreviation(t.text))]
        if not options:
            return None
        listed = [t for t in options if simple[t.start : t.end] in known]  # abbreviations in wide use go first
        picked = _pick(listed or options, self.rate, len(words), rng)
        return finish(text, [Edit(t.start, t.end, t.text, abbreviation(t.text) or t.text, self.name) for t in picked])


@dataclass(frozen=True)
class HomophoneSwap(WordSwap):
    """Word swap: every one-character homophone substitution of a Chinese word."""

    name = "zh_homophone"
    languages: ClassVar[frozenset[str]] = ZH_ONLY
    tones: bool = False
    top: int = 4
    max_candidates: int = 30

    def candidates(self, tokens: Sequence[Token], index: int) -> list[str]:
        word = tokens[index].text
        if not has_han(word):
            return []
        trad = R.is_traditional("".join(t.text for t in tokens))  # the sentence's script, not only this word's
        return list(homophone_variants(word, self.tones, self.top, trad))[: self.max_candidates]


@dataclass(frozen=True)
class ShapeSwap(WordSwap):
    """Word swap: every one-character similar-shape substitution of a Chinese word."""

    name = "zh_shape"
    languages: ClassVar[frozenset[str]] = ZH_ONLY
    max_candidates: int = 30

    def candidates(self, tokens: Sequence[Token], index: int) -> list[str]:
        return list(shape_variants(tokens[index].text))[: self.max_candidates]
