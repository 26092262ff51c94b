"""Word substitutes: WordNet synonyms and embedding neighbours, as word swaps (for attacks) and as
sentence perturbations (for invariance tests).

Differences from the papers' resources, offline: TextFooler (Jin et al. 2020) draws neighbours from
counter-fitted GloVe vectors, which push antonyms apart; we use wordllama's token embeddings (shipped in
its wheel) over the 20k most frequent English words, so we filter what counter-fitting would have:
WordNet antonyms, morphological variants of the word, words with no WordNet sense of the same part of
speech, and rare words. Without a POS tagger offline, part of speech is guessed from WordNet sense counts
and the previous word (see :func:`guess_pos`).
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any, Sequence

from lmcritic.perturb.base import Edit, Perturbation, Token, WordSwap, finish, match_case, tokenize

_DETERMINERS = frozenset("the a an this that these those his her its their my your our every some no".split())
_DEGREE = frozenset("very too so quite really more most less least rather pretty extremely".split())
_POS = ("n", "v", "a", "r")


@functools.lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """Function words that meaning-preserving swaps (and attack constraints) leave alone."""
    from lmcritic.perturb._resources import lexicon

    return frozenset(lexicon("stopwords")["words"])


def guess_pos(tokens: Sequence[Token], index: int) -> str | None:
    """WordNet POS (n/v/a/r) of ``tokens[index]``: context cues first, else the most frequent sense's POS."""
    from lmcritic.perturb._resources import wordnet

    word = tokens[index].text.lower()
    prev = tokens[index - 1].text.lower() if index else ""
    wn = wordnet()
    has = {p: bool(wn.synsets(word, pos=p)) for p in _POS}
    if prev == "to" and has["v"]:
        return "v"
    if prev in _DEGREE and (has["a"] or has["r"]):
        return "a" if has["a"] else "r"
    if prev in _DETERMINERS and (has["n"] or has["a"]):
        before_noun = index + 1 < len(tokens) and _is_noun(tokens[index + 1].text)
        return "a" if has["a"] and (before_noun or not has["n"] or _most_frequent_pos(word) == "a") else "n"
    if word.endswith("ly") and has["r"]:
        return "r"
    return _most_frequent_pos(word)


def _is_noun(word: str) -> bool:
    from lmcritic.perturb._resources import wordnet

    return _most_frequent_pos(word.lower()) == "n" and bool(wordnet().synsets(word.lower(), pos="n"))


@functools.lru_cache(maxsize=20000)
def _most_frequent_pos(word: str) -> str | None:
    from lmcritic.perturb._resources import wordnet

    counts: dict[str, int] = {}
    for s in wordnet().synsets(word):
        pos = "a" if s.pos() == "s" else s.pos()
        counts[pos] = counts.get(pos, 0) + 1 + sum(lem.count() for lem in s.lemmas() if lem.name().lower() == word)
    return max(counts, key=lambda p: counts[p]) if counts else None


def _pos_match(pos: str | None, synset: Any) -> bool:
    return pos is None or synset.pos() == pos or (pos == "a" and synset.pos() == "s")


@functools.lru_cache(maxsize=20000)
def _synonyms(word: str, pos: str | None, min_zipf: float, max_senses: int) -> tuple[str, ...]:
    from lmcritic.perturb._resources import wordnet, zipf

    wn, out = wordnet(), dict[str, int]()
    lemma = wn.morphy(word, pos) if pos else (wn.morphy(word) or word)
    if lemma is None or lemma != word:
        return ()  # inflected form: WordNet lemmas are base forms and we cannot re-inflect reliably
    senses = [s for s in wn.synsets(word) if _pos_match(pos, s)][:max_senses]
    for rank, s in enumerate(senses):
        for lem in s.lemmas():
            name = lem.name().replace("_", " ")
            if name.lower() != word and " " not in name and zipf(name) >= min_zipf and name.isalpha():
                out.setdefault(name.lower(), rank)
    return tuple(sorted(out, key=lambda w: out[w]))


@functools.lru_cache(maxsize=20000)
def antonyms(word: str) -> frozenset[str]:
    """WordNet antonyms of any sense of ``word`` (and of its adjective-satellite heads)."""
    from lmcritic.perturb._resources import wordnet

    out: set[str] = set()
    for s in wordnet().synsets(word):
        heads = [s] + s.similar_tos()
        for h in heads:
            for lem in h.lemmas():
                out.update(a.name().lower() for a in lem.antonyms())
    return frozenset(out)


@dataclass(frozen=True)
class WordNetSwap(WordSwap):
    """WordNet synonyms of the word, most frequent senses first; ``pos_aware`` keeps its guessed POS."""

    name = "wordnet"
    pos_aware: bool = True
    min_zipf: float = 2.5  # drop rare synonyms ("pic" is fine, "moving-picture_show" is not)
    max_senses: int = 3  # most frequent senses only: later senses are usually another meaning
    max_candidates: int = 50

    def candidates(self, tokens: Sequence[Token], index: int) -> list[str]:
        word = tokens[index].text
        if not word.isalpha() or len(word) < 3:
            return []
        pos = guess_pos(tokens, index) if self.pos_aware else None
        found = _synonyms(word.lower(), pos, self.min_zipf, self.max_senses)
        return [match_case(word, s) for s in found][: self.max_candidates]


@functools.lru_cache(maxsize=1)
def _embedding_vocab(size: int) -> tuple[list[str], dict[str, int], Any]:
    import wordfreq

    from lmcritic.perturb._resources import wordllama

    words = [w for w in wordfreq.top_n_list("en", size * 2) if w.isalpha() and len(w) > 1][:size]
    return words, {w: i for i, w in enumerate(words)}, wordllama().embed(words, norm=True)


def _variant(a: str, b: str) -> bool:
    """Morphological variants (movie/movies, slow/slowly): a shared stem changes nothing an attack needs."""
    from lmcritic.perturb._resources import wordnet

    n = min(len(a), len(b))
    return a[: max(4, n - 2)] == b[: max(4, n - 2)] or wordnet().morphy(b) == a or wordnet().morphy(a) == b


@dataclass(frozen=True)
class EmbeddingSwap(WordSwap):
    """Nearest neighbours in wordllama space, filtered to same-POS, non-antonym, non-variant common words."""

    name = "embedding"
    k: int = 30  # neighbours looked at
    min_similarity: float = 0.5  # cosine; TextFooler uses 0.5 in counter-fitted space
    vocab_size: int = 20000
    min_zipf: float = 3.0
    max_candidates: int = 15

    def candidates(self, tokens: Sequence[Token], index: int) -> list[str]:
        import numpy as np

        word = tokens[index].text
        words, idx, vecs = _embedding_vocab(self.vocab_size)
        i = idx.get(word.lower())
        if i is None or not word.isalpha() or len(word) < 3:
            return []
        sims = vecs @ vecs[i]
        order = np.argsort(-sims)[: self.k + 1]
        pos = guess_pos(tokens, index)
        keep = [words[j] for j in order if j != i and sims[j] >= self.min_similarity
                and self._ok(word.lower(), words[j], pos)]
        return [match_case(word, w) for w in keep][: self.max_candidates]

    def _ok(self, word: str, other: str, pos: str | None) -> bool:
        import difflib

        from lmcritic.perturb._resources import wordnet, zipf

        if other in antonyms(word) or word in antonyms(other) or _variant(word, other) or zipf(other) < self.min_zipf:
            return False
        senses = wordnet().synsets(other)
        if other.startswith(word) or word.startswith(other):
            return False  # shares the word's subword tokens (fun/funerals), the usual wordllama artefact
        if not senses or difflib.SequenceMatcher(None, word, other).ratio() >= 0.7:
            return False  # not a content word, or a look-alike that shares subword tokens (funny/funky)
        return pos is None or any(_pos_match(pos, s) for s in senses)


@dataclass(frozen=True)
class _SwapWords(Perturbation):
    """Replace a share of the content words (not stopwords) by a swap's candidates (top few, at random)."""

    rate: float = 0.15
    top: int = 3  # choose among the first ``top`` candidates (the most faithful ones)

    def swap(self) -> WordSwap:
        raise TypeError

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        tokens, sw = tokenize(text), stopwords()
        swap = self.swap()
        options = {i: c[: self.top] for i, t in enumerate(tokens)
                   if t.text.lower() not in sw and (c := swap.candidates(tokens, i))}
        if not options:
            return None
        k = max(1, round(self.rate * len(tokens)))
        picked = rng.sample(sorted(options), min(k, len(options)))
        return finish(text, [Edit(tokens[i].start, tokens[i].end, tokens[i].text, rng.choice(options[i]), self.name)
                             for i in picked])


@dataclass(frozen=True)
class Synonyms(_SwapWords):
    """WordNet synonyms (POS-aware) for ~15% of the content words (CheckList/TextFooler-style INV test)."""

    name = "synonyms"

    def swap(self) -> WordSwap:
        return WordNetSwap(pos_aware=True, max_senses=1)


@dataclass(frozen=True)
class EmbeddingNeighbours(_SwapWords):
    """wordllama nearest neighbours (filtered) for ~15% of the content words."""

    name = "embedding_neighbours"

    def swap(self) -> WordSwap:
        return EmbeddingSwap(min_similarity=0.6)
