"""A length shortcut: the label is read off how long the text is, not what it says.

Screened on the corpus: one label's training rows are longer than the other labels' (Mann–Whitney AUC, ties
half) far more than its evaluated texts are (a training artefact; a task where long texts really lean one way
shows it in both). Tested on the model like a shortcut token's insertion, always with the same words made longer
vs not — repeated, at least twice and until as long as the label's median training row (at most ``MAX_REPEAT``
copies): longer with nothing new to read. Two kinds of pair from the probe's natural cases: an input the model
does not give the label, repeated vs a neutral edit (casing or final punctuation); and the first half of an input
it does give the label, repeated vs the half alone. The effect is P(label | longer) − P(label | not), paired
(Newcombe CI, exact McNemar). A content-driven model answers the same words alike at any length; one that learnt
length moves toward the long label. (Models that learnt length from natural long rows as one cue among several
rarely moved when a short input was repeated; their halves, shorter than anything the label had in training, do
move. The mean shift of p(label) was tried as the effect: more sensitive, but on its smaller scale the strongest
plant ranked below a side cause.)
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from lmcritic import stats
from lmcritic.diagnose._text import words
from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses._rewrite import neutral_edit
from lmcritic.diagnose.hypotheses.base import rescore_pairs
from lmcritic.diagnose.rescore import Edit
from lmcritic.probes.base import Estimate, Record

if TYPE_CHECKING:
    from lmcritic.diagnose.hypotheses.base import DefectContext
    from lmcritic.diagnose.profile import CorpusProfile

MIN_ROWS = 20  # per side, in training and among the evaluated texts
MIN_AUC = 0.65  # training: a row of the label is longer than a row of another label at least this often
MIN_GAP = 0.15  # ... and this much more often than among the evaluated texts
P_SCREEN = 0.001
MIN_HALVED = 6  # words an input needs before its first half is a text of its own
MAX_REPEAT = 6  # copies of an input at most: beyond that the text says nothing a model was trained to read
CASES = 100  # inputs repeated (fewer when the probe has fewer): flips near a boundary are rare, so n matters


@dataclass(frozen=True)
class LengthAssociation:
    """How much longer the texts of ``label`` are than the others', in training and among the evaluated texts."""

    label: str
    auc_train: float  # P(a training row of the label is longer than one of another label), ties half
    p_train: float  # Mann–Whitney, one-sided
    auc_eval: float
    medians: tuple[float, float]  # training words: the label's rows, the others'
    n: tuple[int, int]  # training rows, evaluated texts

    @property
    def artefact(self) -> bool:
        return self.p_train < P_SCREEN and self.auc_train >= MIN_AUC and self.auc_train - self.auc_eval >= MIN_GAP

    def describe(self) -> str:
        return (f"{self.label!r} training rows are longer than the others' in {self.auc_train:.0%} of pairs (median "
                f"{self.medians[0]:.0f} vs {self.medians[1]:.0f} words, Mann–Whitney p={self.p_train:.2g}, "
                f"{self.n[0]} rows) but in {self.auc_eval:.0%} among the {self.n[1]} evaluated texts")


@dataclass(frozen=True)
class PushTest:
    """P(``label``) with the same words made longer (``flips``) vs not (``control``), paired."""

    label: str
    flips: Estimate
    control: Estimate
    effect: Estimate | None
    p_value: float | None
    min_p: float | None
    case_ids: tuple[str, ...]  # pairs whose longer version got the label and the shorter did not
    scored: int
    pairs: tuple[int, int] = (0, 0)  # (inputs repeated vs a neutral edit, first halves repeated vs the half)


def association(profile: CorpusProfile, keep: Callable[[str], bool] | None = None) -> LengthAssociation | None:
    """The label whose training rows are longest relative to the others (None: too few labelled rows); ``keep``:
    only the training rows and evaluated texts it accepts."""
    train_words, eval_words = profile.word_counts
    lengths, labels = _kept(train_words, profile.corpus.texts, profile.labels, keep)
    ev_len, ev_lab = _kept(eval_words, profile.eval_texts, profile.eval_labels, keep)
    best = None
    for lab in sorted({x for x in labels if x is not None}):
        mine, other = _split(lengths, labels, lab)
        e_mine, e_other = _split(ev_len, ev_lab, lab)
        if min(len(mine), len(other), len(e_mine), len(e_other)) < MIN_ROWS:
            continue
        auc, p = _auc(mine, other)
        cand = LengthAssociation(lab, auc, p, _auc(e_mine, e_other)[0],
                                 (float(np.median(mine)), float(np.median(other))), (len(lengths), len(ev_len)))
        if best is None or cand.auc_train - cand.auc_eval > best.auc_train - best.auc_eval:
            best = cand
    return best


def _kept(lengths: np.ndarray, texts: Sequence[str], labels: Sequence[str | None],
          keep: Callable[[str], bool] | None) -> tuple[np.ndarray, list[str | None]]:
    if keep is None:
        return lengths, list(labels)
    mask = np.array([keep(t) for t in texts], bool)
    return lengths[mask] if len(mask) else lengths, [y for y, k in zip(labels, mask) if k]


def quartile_of(lengths: Sequence[float]) -> Callable[[float], int]:
    """The quartile (0-3) a length falls in among ``lengths``, cut at their 25th, 50th and 75th order statistics."""
    s = sorted(lengths)
    cuts = [s[len(s) * k // 4] for k in (1, 2, 3)]
    return lambda n: sum(n >= c for c in cuts)


def _split(lengths: np.ndarray, labels: Sequence[str | None], lab: str) -> tuple[np.ndarray, np.ndarray]:
    is_lab = np.array([x == lab for x in labels])
    known = np.array([x is not None for x in labels])
    return lengths[is_lab], lengths[known & ~is_lab]


def _auc(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from scipy.stats import mannwhitneyu

    res = mannwhitneyu(a, b, alternative="greater")
    return float(res.statistic) / (len(a) * len(b)), float(res.pvalue)


def repeated(text: str, target_words: float) -> str:
    """``text`` twice, or more often until it has ``target_words`` words (at most ``MAX_REPEAT`` copies); words
    counted as the training medians count them (punctuation is not a word)."""
    n = max(1, len(words(text)))
    return " ".join([text] * min(MAX_REPEAT, max(2, math.ceil(target_words / n))))


def push_test(ctx: DefectContext, assoc: LengthAssociation, hypothesis: str) -> PushTest:
    """P(the long label) with the same words made longer vs not, over two samples of the probe's natural cases:
    inputs the model does not give the label, repeated vs a neutral edit; and the first halves of inputs it does
    give the label, repeated vs the half alone (a model that reads length calls the short half something else and
    the repeated half the label again)."""
    label, rng = assoc.label, random.Random(ctx.seed)
    pairs = _lengthened(ctx, label, assoc.medians[0], rng) + _halved(ctx, label, assoc.medians[0], rng)
    rng.shuffle(pairs)  # a spent re-scoring budget drops pairs of both kinds alike
    mine, base, scored = rescore_pairs(ctx, [e for e, _ in pairs], [c for _, c in pairs], hypothesis)
    hit, ctl = [o.prediction == label for o in mine], [o.prediction == label for o in base]
    halves = sum(o.edit.test == "half_repeated" for o in mine)
    if not hit:
        return PushTest(label, stats.proportion(hit), stats.proportion(ctl), None, None, None, (), scored)
    effect, p = stats.paired_proportions(ctl, hit)
    ids = tuple(o.edit.record.case_id for o, h, c in zip(mine, hit, ctl) if h and not c)
    return PushTest(label, stats.proportion(hit), stats.proportion(ctl), effect, p, stats.mcnemar_min_p(ctl, hit),
                    ids, scored, (len(hit) - halves, halves))


def _natural(ctx: DefectContext, keep: Callable[[Record], bool], rng: random.Random) -> list[Record]:
    pool = [r for r in ctx.records if r.prediction is not None and input_text(r) and keep(r)]
    return rng.sample(pool, min(len(pool), max(CASES, ctx.max_cases)))


def _lengthened(ctx: DefectContext, label: str, goal: float, rng: random.Random) -> list[tuple[Edit, Edit]]:
    """Inputs not given ``label``: repeated up to ``goal`` words, against a neutral edit of the same input."""
    out = []
    for r in _natural(ctx, lambda r: str(r.prediction) != label, rng):
        text = input_text(r) or ""
        other = neutral_edit(text, rng)
        if other:
            out.append((Edit(r, repeated(text, goal), "repeat_to_length"), Edit(r, other, "neutral_edit")))
    return out


def _halved(ctx: DefectContext, label: str, goal: float, rng: random.Random) -> list[tuple[Edit, Edit]]:
    """Inputs given ``label`` with ``MIN_HALVED`` words or more: their first half repeated, against the half."""
    out = []
    keep = lambda r: str(r.prediction) == label and len(words(input_text(r) or "")) >= MIN_HALVED  # noqa: E731
    for r in _natural(ctx, keep, rng):
        pieces = (input_text(r) or "").split()
        half = " ".join(pieces[: len(pieces) // 2])
        out.append((Edit(r, repeated(half, goal), "half_repeated"), Edit(r, half, "half")))
    return out


__all__ = ["LengthAssociation", "PushTest", "association", "push_test", "repeated"]
