"""Constraints: which words may change (before any candidate is built) and which candidates are kept.

``modifiable`` is checked per word before transformation (cheap: no model, no encoder); ``check`` sees a
batch of candidate states at once (so MiniLM encodes a whole candidate set in one pass).
"""
from __future__ import annotations

import functools
import math
from abc import ABC
from typing import ClassVar, Sequence

from lmcritic.attacks.base import State
from lmcritic.errors import ConfigError

# The English stopword list TextFooler and TextAttack use (TextAttack's default for StopwordModification).
STOPWORDS = frozenset(
    "a about above across after afterwards again against ain all almost alone along already also although am "
    "among amongst an and another any anyhow anyone anything anyway anywhere are aren aren't around as at back "
    "been before beforehand behind being below beside besides between beyond both but by can cannot could couldn "
    "couldn't d didn didn't doesn doesn't don don't down due during either else elsewhere empty enough even ever "
    "everyone everything everywhere except first for former formerly from hadn hadn't hasn hasn't haven haven't "
    "he hence her here hereafter hereby herein hereupon hers herself him himself his how however hundred i if in "
    "indeed into is isn isn't it it's its itself just latter latterly least ll may me meanwhile mightn mightn't "
    "mine more moreover most mostly must mustn mustn't my myself namely needn needn't neither never nevertheless "
    "next no nobody none noone nor not nothing now nowhere o of off on once one only onto or other others "
    "otherwise our ours ourselves out over per please s same shan shan't she she's should've shouldn shouldn't "
    "somehow something sometime somewhere such t than that that'll the their theirs them themselves then thence "
    "there thereafter thereby therefore therein thereupon these they this those through throughout thru thus to "
    "too toward towards under unless until up upon used ve was wasn wasn't we were weren weren't what whatever "
    "when whence whenever where whereafter whereas whereby wherein whereupon wherever whether which while whither "
    "who whoever whole whom whose why with within without won won't would wouldn wouldn't y yet you you'd you'll "
    "you're you've your yours yourself yourselves".split()
)


class Constraint(ABC):  # noqa: B024 - both hooks are optional: the base allows everything
    """Base: allows everything. Subclasses override one or both hooks."""

    name: ClassVar[str] = "constraint"

    def modifiable(self, state: State, index: int) -> bool:
        """Whether word ``index`` of ``state`` may be changed next."""
        return True

    def check(self, start: State, candidates: Sequence[State], index: int) -> list[bool]:
        """Which candidates (``start`` with word ``index`` swapped) are kept."""
        return [True] * len(candidates)


class NoRepeat(Constraint):
    """Each word is changed at most once (TextAttack's RepeatModification)."""

    name = "no_repeat"

    def modifiable(self, state: State, index: int) -> bool:
        return index not in state.changed


class NoStopwords(Constraint):
    """Stopwords are never changed (they carry little meaning, and edits there read as noise)."""

    name = "no_stopwords"

    def __init__(self, stopwords: Sequence[str] | None = None) -> None:
        self.stopwords = frozenset(w.lower() for w in stopwords) if stopwords is not None else STOPWORDS

    def modifiable(self, state: State, index: int) -> bool:
        return state.tokens[index].text.lower() not in self.stopwords


class MaxWordsChanged(Constraint):
    """At most ``fraction`` of the words (rounded down, at least one) may differ from the original."""

    name = "max_words_changed"

    def __init__(self, fraction: float = 0.25) -> None:
        if not 0 < fraction <= 1:
            raise ConfigError(f"max_words_changed fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction

    def limit(self, state: State) -> int:
        return max(1, math.floor(self.fraction * len(state.tokens)))

    def modifiable(self, state: State, index: int) -> bool:
        return index in state.changed or len(state.changed) < self.limit(state)


class MaxEditDistance(Constraint):
    """Character Levenshtein distance of the whole text to the original ≤ ``max_distance`` (DeepWordBug's)."""

    name = "max_edit_distance"

    def __init__(self, max_distance: int = 30) -> None:
        self.max_distance = max_distance

    def check(self, start: State, candidates: Sequence[State], index: int) -> list[bool]:
        return [self._within(c) for c in candidates]

    def _within(self, state: State) -> bool:
        """Word edits are disjoint, so the sum of per-word distances bounds the text's distance from above:
        the quadratic whole-text distance is computed only when that bound exceeds the limit."""
        bound = sum(levenshtein(state.tokens[i].text, w) for i, w, _ in state.subs)
        return bound <= self.max_distance or levenshtein(state.original, state.text) <= self.max_distance


class Similarity(Constraint):
    """MiniLM (all-MiniLM-L6-v2) cosine of candidate vs original ≥ ``threshold``.

    TextFooler uses the Universal Sentence Encoder on a 15-word window (threshold ~0.84 in angular
    similarity); USE is not available offline, so MiniLM stands in. ``window`` (words each side of the change,
    None: whole text) reproduces the windowing.
    """

    name = "similarity"

    def __init__(self, threshold: float = 0.8, window: int | None = None) -> None:
        if not -1 <= threshold <= 1:
            raise ConfigError(f"similarity threshold must be in [-1, 1], got {threshold}")
        self.threshold, self.window = threshold, window

    def check(self, start: State, candidates: Sequence[State], index: int) -> list[bool]:
        if not candidates:
            return []
        sims = self.scores(start, candidates, index)
        return [s >= self.threshold for s in sims]

    def scores(self, start: State, candidates: Sequence[State], index: int | None = None) -> list[float]:
        from lmcritic import _minilm

        a = [self._window(start.original, start, index) for _ in candidates]
        b = [self._window(c.text, c, index) for c in candidates]
        return [float(x) for x in _minilm.pair_cosine(a, b)]

    def _window(self, text: str, state: State, index: int | None) -> str:
        if self.window is None or index is None:
            return text
        from lmcritic.perturb.base import tokenize

        toks = tokenize(text)
        lo, hi = max(0, index - self.window), min(len(toks), index + self.window + 1)
        return text[toks[lo].start : toks[hi - 1].end] if toks and lo < len(toks) else text


class POSMatch(Constraint):
    """The replacement may take the same part of speech as the word it replaces.

    TextFooler/TextAttack tag the sentence with NLTK's perceptron tagger; its data is not installable offline
    here, so this uses WordNet's POS lexicon (the POS sets a word form can have, after morphy lemmatizing):
    a swap is kept when the two sets overlap. Words WordNet does not know (function words, typos, names)
    cannot be judged and are kept. Context-free, so it is more permissive than a tagger.
    """

    name = "pos_match"

    def check(self, start: State, candidates: Sequence[State], index: int) -> list[bool]:
        want = pos_set(start.tokens[index].text)
        out = []
        for c in candidates:
            new = dict((i, w) for i, w, _ in c.subs).get(index, start.tokens[index].text)
            have = pos_set(new)
            out.append(not want or not have or bool(want & have))
        return out


@functools.lru_cache(maxsize=50_000)
def pos_set(word: str) -> frozenset[str]:
    """WordNet parts of speech (n, v, a, r) ``word`` can take; empty when unknown. ``s`` counts as ``a``."""
    from lmcritic.perturb._resources import wordnet

    wn = wordnet()
    w = word.lower().replace(" ", "_")
    return frozenset("a" if s.pos() == "s" else s.pos() for s in wn.synsets(w))


def levenshtein(a: str, b: str) -> int:
    """Character edit distance (insert/delete/substitute, each 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
