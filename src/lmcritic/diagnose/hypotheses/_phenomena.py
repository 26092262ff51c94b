"""The text phenomena a defect's label noise is tested on: the defect's own predicate (negation, contrast, a word),
else each phenomenon its failures lean to, and the words this diagnosis confirmed as shortcut tokens."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from lmcritic.diagnose import _text
from lmcritic.diagnose.crossfit import CorpusFit, corpus_fit
from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses.base import DefectContext
from lmcritic.diagnose.slices import cluster_ids, slice_stats

PHENOMENA = ("negation", "contrast")


class Phenomenon(NamedTuple):
    """A text phenomenon tested for label noise: its display name, its predicate and, for a plain word, the word
    (the content check masks it; reading it back from the display name lost words with an apostrophe)."""

    name: str
    has: Callable[[str], bool]
    word: str | None = None

    @classmethod
    def of_word(cls, word: str) -> Phenomenon:
        """A plain word, whole and in any case."""
        return cls(f"word {word!r}", lambda t: word in _text.lower_words(t), word)

    @property
    def data(self) -> dict[str, str | None]:
        """What names it in a culprit's data (JSON): :meth:`from_data` rebuilds it."""
        return {"name": self.name, "word": self.word}

    @classmethod
    def from_data(cls, data: Any) -> Phenomenon | None:
        """The phenomenon a culprit's data names; None for anything else (older diagnoses carry none)."""
        if not isinstance(data, dict):
            return None
        if data.get("word"):
            return cls.of_word(str(data["word"]))
        return cls(data["name"], _feature(data["name"])) if data.get("name") in PHENOMENA else None


def phenomena(ctx: DefectContext) -> list[Phenomenon]:
    """The defect's text predicate, else every text feature on which the probe's failures are over-represented
    (failure rate higher with it than without), the most significant by Fisher first. Significance is not required:
    noisy training labels of a phenomenon need not make a 200-case evaluation fail much more often on it (41%
    flipped negation labels moved held-out error only from 18% to 23% on a fine-tuned MiniLM), and this choice
    only picks what to test — the model contradicting its training labels of it more than its held-out error
    predicts is the test that decides."""
    for f, v in ctx.defect.predicates:
        if f in PHENOMENA and v == "yes":
            return [Phenomenon(f, _feature(f))]
        if f.startswith("word:") and v == "yes":
            kind = _word_phenomenon(f[5:])  # "but" is contrast, "not" negation: test the whole phenomenon
            return [Phenomenon(kind, _feature(kind)) if kind else Phenomenon.of_word(f[5:])]
    err = np.array([r.passed is False for r in ctx.records])
    found = []
    for f in PHENOMENA:
        col = ctx.table.columns.get(f)
        if col is None:
            continue
        s = slice_stats(((f, "yes"),), np.asarray(col) == "yes", err, clusters=cluster_ids(ctx.table.clusters))
        if s.risk_ratio > 1:
            found.append((s.p_value, f))
    return [Phenomenon(f, _feature(f)) for _, f in sorted(found)] + _cue_words(ctx)


def _cue_words(ctx: DefectContext) -> list[Phenomenon]:
    """Words this diagnosis confirmed as shortcut tokens by insertion that recur (2+) in the defect's failures. A
    word the model reads as a label was learnt from rows that were selected (labels right: a spurious feature) or
    relabelled (an annotation heuristic: label noise); the label mix and the content check tell which. Without
    them, noise on a word whose failures make no slice of their own went untested (held-out plant word_noise:
    "no text phenomenon on which the failures are more frequent")."""
    from lmcritic.diagnose.hypotheses.spurious import confirmed_tokens

    words = [w for w in confirmed_tokens(getattr(ctx, "token_tests", ()))
             if w.replace("'", "").isalpha() and _word_phenomenon(w) is None]
    if not words:
        return []
    failing = [set(_text.lower_words(input_text(r) or "")) for r in ctx.failing()]
    return [Phenomenon.of_word(w) for w in words if sum(w in f for f in failing) >= 2]


def fit_outside(ctx: Any) -> CorpusFit | str:
    """The diagnosis's whole-corpus fit without the training rows and evaluated texts of ``ctx.left_out``: the
    phenomena whose label noise a cause of their own explains. Noise on one phenomenon is noise in the corpus too
    (directed noise on negation rows made the label-share test read 'negative' inflated), so the corpus-wide
    claim — labels flipped beyond any one phenomenon — is tested on the rest."""
    cf = corpus_fit(ctx.profile, ctx.seed)
    if isinstance(cf, str) or not getattr(ctx, "left_out", ()):
        return cf
    return cf.without(lambda t: not outside(ctx, t))[0]


def outside(ctx: Any, text: str) -> bool:
    """Whether ``text`` holds none of the phenomena ``ctx.left_out`` (see :func:`fit_outside`)."""
    return not any(ph.has(text) for ph in getattr(ctx, "left_out", ()))


def other_cues(ctx: Any, ph: Phenomenon) -> tuple[str, ...]:
    """The confirmed shortcut tokens other than ``ph``'s own word (and none ``ph`` itself holds, such as 'not' for
    negation). Training rows and evaluated texts holding one fail for that reason, on both sides of a
    phenomenon's difference in differences: a 'plot' cue planted in negative rows inflated held-out error without
    negation (36 % vs 24 % with it) and made negation's labels look noisy (word_noise seed 1)."""
    from lmcritic.diagnose.hypotheses.spurious import confirmed_tokens

    return tuple(sorted({w for w in confirmed_tokens(getattr(ctx, "token_tests", ())) if w != ph.word
                         and not ph.has(w)}))


def holds_any(tokens: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a text holds one of ``tokens`` (as :func:`_text.tokens` splits it; a phrase whole)."""
    runs = tuple(w for w in tokens if _text.is_phrase(w))
    wanted = frozenset(tokens).difference(runs)
    return lambda t: (bool(wanted) and not wanted.isdisjoint(_text.tokens(t))) or any(_text.holds(t, w) for w in runs)


def _word_phenomenon(word: str) -> str | None:
    if word in _text.CONTRAST:
        return "contrast"
    if word in _text.NEGATIONS or word.endswith("n't"):
        return "negation"
    return None


def _feature(name: str) -> Callable[[str], bool]:
    from lmcritic.diagnose.profile import text_feature

    return lambda t: text_feature(name, t) == "yes"


__all__ = ["PHENOMENA", "Phenomenon", "fit_outside", "holds_any", "other_cues", "outside", "phenomena"]
