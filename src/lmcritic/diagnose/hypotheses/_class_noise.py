"""Class-conditional label noise: the training rows of one label hold texts of another (annotators who confuse
two classes, a labelling rule that files one class under another), anywhere in the corpus.

The whole-corpus test (:mod:`._global_noise`) reads underconfidence on the rows the models are most confident
on, where a text of another class filed under L is not (a 3-class topic corpus with 40 % of one class relabelled:
its corpus model agreed with 100 % of the confident half). Here, per label L, the cross-fitted corpus model's
(:func:`lmcritic.diagnose.crossfit.crossfit_all`) out-of-fold disagreement with the training rows labelled L is
compared with its error on evaluated texts whose gold label is L, beyond the same for the other labels:

    d_L = (disagreement on training rows labelled L − error on gold-L evaluated texts) − (the same for not L)

With clean labels both sides of each term estimate one learner's error on class L (same learner, same amount of
data, p(text | label) shared by the corpus and the evaluated sample; a label shift between them moves neither);
texts of other classes filed under L add disagreement on the training side only. Bootstrap CI and one-sided p
per label (label_noise's difference in differences), Bonferroni over the labels; the culprit names L and the
training lines labelled L the corpus model reads as another label, most confident first (candidates to relabel).
It assumes the evaluated texts sample the corpus's population, and checks it: where a classifier on the same
embeddings tells the evaluated texts from the training rows (Mann–Whitney p < 0.05 on its out-of-fold scores) the
test is not run (on the planted SST-2 suite, whose evaluation rows are built apart from the corpus, the test
without that check called label noise on 7 of 18 models with none planted in their labels).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lmcritic.diagnose.crossfit import CorpusFit
from lmcritic.diagnose.hypotheses import _did
from lmcritic.diagnose.hypotheses._phenomena import fit_outside
from lmcritic.probes.base import Estimate

MIN_PER_SIDE = 20  # training rows and evaluated texts with the label, and without it


@dataclass(frozen=True)
class ClassTest:
    label: str  # the label whose training rows hold other classes' texts
    did: Estimate  # d_L
    rate: Estimate | None  # implied share of L's training rows filed from other labels
    p: float  # one-sided, Bonferroni over the labels tested
    rates: dict[str, float]  # the four rates of d_L
    domain: tuple[float, float] | None  # (AUC, p): how well a classifier tells the evaluated texts from the corpus
    read_as: dict[str, int]  # what the corpus model reads L's contradicted training rows as: label -> rows
    texts: tuple[str, ...]  # those rows' texts, most confident contradiction first

    def describe(self) -> str:
        r = self.rates
        rate = f"; implied share of its rows filed from other labels {self.rate}" if self.rate else ""
        read = ", ".join(f"{k} {v}" for k, v in sorted(self.read_as.items(), key=lambda kv: -kv[1]))
        return (f"training rows labelled {self.label!r}: a cross-fitted corpus model disagrees with {r['train']:.0%} "
                f"of them (reads them as {read or 'nothing else'}) but errs on only {r['held-out']:.0%} of evaluated "
                f"texts whose gold label is {self.label!r}; for the other labels {r['train (without)']:.0%} vs "
                f"{r['held-out (without)']:.0%}: difference in differences {self.did}, p={self.p:.2g} (Bonferroni "
                f"over the labels){rate}{_sampled(self.domain)}")

    @property
    def data(self) -> dict[str, Any]:
        return {"rates": self.rates, "read_as": self.read_as}

    @property
    def effect_name(self) -> str:
        return f"implied share of {self.label!r} training rows filed from other labels" if self.rate else \
            "(train disagreement − held-out error) for the label − for the others"


def class_test(ctx: Any) -> ClassTest | str:
    """The test on the diagnosis's corpus profile (its cached corpus model); a reason when it cannot be run."""
    cf = fit_outside(ctx)  # without the rows of phenomena whose label noise is explained
    if isinstance(cf, str):
        return cf
    if cf.domain is not None and cf.domain[1] < 0.05:
        return (f"the evaluated texts are not a sample of the training corpus's population (a classifier tells them "
                f"apart: AUC {cf.domain[0]:.2f}, p={cf.domain[1]:.2g}), which this test assumes")
    y, gold = cf.labels
    labels = [lab for lab in sorted(set(y.tolist())) if _testable(y, gold, lab)]
    if not labels:
        return f"no label has {MIN_PER_SIDE} training rows and evaluated texts with it and without it"
    tests = [_one(cf, lab, ctx.seed, len(set(y.tolist()))) for lab in labels]
    best = min(tests, key=lambda t: t.p)
    return replace(best, p=min(1.0, best.p * len(labels)), domain=cf.domain)


def _testable(y: np.ndarray, gold: np.ndarray, label: str) -> bool:
    return min(int((y == label).sum()), int((y != label).sum()), int((gold == label).sum()),
               int((gold != label).sum())) >= MIN_PER_SIDE


def _one(cf: CorpusFit, label: str, seed: int, classes: int) -> ClassTest:
    (ok, _), (ev_ok, _) = cf.train, cf.evaluated
    y, gold = cf.labels
    train = {k: (1.0 - ok[(y == label) == k]).tolist() for k in (True, False)}
    held = {k: (1.0 - ev_ok[(gold == label) == k]).tolist() for k in (True, False)}
    did, p, rate = _did.diff_in_diff(train, held, seed, flip_rate=True, classes=classes)
    read_as, texts = contradicted(cf, label)
    return ClassTest(label, did, rate, p, _did.rates(train, held), None, read_as, texts)


def contradicted(cf: CorpusFit, label: str) -> tuple[dict[str, int], tuple[str, ...]]:
    """The training rows labelled ``label`` the corpus model reads out of fold as another label: what it reads
    them as (label -> rows) and their texts, most confident contradiction first (candidates to relabel)."""
    (ok, conf), (y, _) = cf.train, cf.labels
    wrong = np.flatnonzero((y == label) & (ok == 0))
    order = wrong[np.argsort(-conf[wrong], kind="stable")]
    read_as = {str(k): int(v) for k, v in zip(*np.unique(cf.predicted[wrong], return_counts=True))}
    return read_as, tuple(cf.texts[i] for i in order)


def _sampled(domain: tuple[float, float] | None) -> str:
    if domain is None:
        return ""
    return (f"; the evaluated texts pass for a sample of the corpus (a classifier tells them apart at AUC "
            f"{domain[0]:.2f}, p={domain[1]:.2g})")
