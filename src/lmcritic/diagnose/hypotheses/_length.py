"""A length shortcut: the label is read off how long the text is, not what it says.

Screened on the corpus: one label's training rows are longer than the other labels' (Mann–Whitney AUC, ties
half) far more than its evaluated texts are (a training artefact; a task where long texts really lean one way
shows it in both). Tested on the model like a shortcut token's insertion: each evaluated input the model does not
give that label is doubled — the same words twice, longer with nothing new to read — and paired with a neutral
edit (casing or final punctuation) of the same input; the flip rate toward the label under doubling minus under
the neutral edit is the effect (Newcombe paired CI, exact McNemar). A content-driven model keeps its answer on a
doubled text; one that learnt length moves toward the long label. (The mean shift of p(label) was tried as the
effect: more sensitive, but on its smaller scale the strongest plant ranked below a side cause.)
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from lmcritic import stats
from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses._rewrite import neutral_edit
from lmcritic.diagnose.hypotheses.base import rescore_pairs
from lmcritic.diagnose.rescore import Edit
from lmcritic.probes.base import Estimate

if TYPE_CHECKING:
    from lmcritic.diagnose.hypotheses.base import DefectContext
    from lmcritic.diagnose.profile import CorpusProfile

MIN_ROWS = 20  # per side, in training and among the evaluated texts
MIN_AUC = 0.65  # training: a row of the label is longer than a row of another label at least this often
MIN_GAP = 0.15  # ... and this much more often than among the evaluated texts
P_SCREEN = 0.001
CASES = 100  # inputs doubled (fewer when the probe has fewer): flips near a boundary are rare, so n matters


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
    """Doubling inputs the model does not give ``label``: how many it then does, against a neutral edit."""

    label: str
    flips: Estimate
    control: Estimate
    effect: Estimate | None
    p_value: float | None
    min_p: float | None
    case_ids: tuple[str, ...]
    scored: int


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


def push_test(ctx: DefectContext, label: str, hypothesis: str) -> PushTest:
    """Double the evaluated inputs the model does not give ``label`` (a sample, the probe's natural cases) and
    count flips toward it, paired with a neutral edit of each."""
    pool = [r for r in ctx.records if r.prediction is not None and str(r.prediction) != label and input_text(r)]
    rng = random.Random(ctx.seed)
    pool = rng.sample(pool, min(len(pool), max(CASES, ctx.max_cases)))
    edits, ctrl = [], []
    for r in pool:
        text = input_text(r) or ""
        other = neutral_edit(text, rng)
        if other:
            edits.append(Edit(r, f"{text} {text}", "double_length"))
            ctrl.append(Edit(r, other, "neutral_edit"))
    mine, base, scored = rescore_pairs(ctx, edits, ctrl, hypothesis)
    hit, ctl = [o.prediction == label for o in mine], [o.prediction == label for o in base]
    if not hit:
        return PushTest(label, stats.proportion(hit), stats.proportion(ctl), None, None, None, (), scored)
    effect, p = stats.paired_proportions(ctl, hit)
    ids = tuple(o.edit.record.case_id for o, h in zip(mine, hit) if h)
    return PushTest(label, stats.proportion(hit), stats.proportion(ctl), effect, p, stats.mcnemar_min_p(ctl, hit),
                    ids, scored)


__all__ = ["LengthAssociation", "PushTest", "association", "push_test"]
