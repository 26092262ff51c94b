"""Consistent (directed) label noise: the training labels of one phenomenon lean to one label more than the
evaluated gold labels of that phenomenon do, beyond any difference in the rest of the corpus.

An annotation heuristic ("negation means negative") flips one label's rows of a phenomenon consistently. A model
fits such labels, so confident learning (noisy labels are those a model cannot fit) does not see them; what does
show is the label mix. For label L, with P the phenomenon:

    d = (share of L among training rows with P − among evaluated texts with P)
        − (the same without P)

is zero in expectation when the evaluated texts are a sample of the corpus's population (a held-out split); the
second line removes a global prior shift between the two. Wald CI and two-sided p; the label whose share
training over-represents is the culprit's label. It needs the evaluated texts with P to carry at least two labels
``MIN_PER_LABEL`` times each: a label-selected evaluation (only negated positives, say) says nothing about the
training mix, and neither does a hand-picked one — the test assumes a representative evaluation and says so.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from lmcritic.diagnose.crossfit import labelled
from lmcritic.probes.base import Estimate

MIN_PER_LABEL = 10
MIN_ROWS = 20
MIN_STRATUM = 5  # rows per group within a length quartile


@dataclass(frozen=True)
class MixTest:
    label: str  # the label training over-represents among the phenomenon's rows
    effect: Estimate  # d above, for ``label``
    p: float  # two-sided; times (labels − 1) when there are more than two labels
    shares: dict[str, dict[str, float]]  # "train" / "evaluated" (with P) / "... (without)": label -> share
    counts: dict[str, int]
    stratified: bool = False  # d within training length quartiles (the corpus ties a label to length)


def mix_test(profile: Any, has: Callable[[str], bool], skip: Callable[[str], bool] | None = None) -> MixTest | str:
    """The test on a corpus profile (training texts and labels, evaluated texts and gold labels); a reason string
    when it cannot be run. Texts ``skip`` picks (those holding another confirmed shortcut cue) are left out of both
    sides: their labels lean by that cue, not by the phenomenon."""
    train, evaluated = labelled(profile)
    labels = sorted({y for _, y in train})
    gold = [(t, y) for t, y in evaluated if y in labels]
    if skip is not None:
        train, gold = [(t, y) for t, y in train if not skip(t)], [(t, y) for t, y in gold if not skip(t)]
    groups = {f"{src}{'' if k else ' (without)'}": [y for t, y in rows if has(t) == k]
              for src, rows in (("train", train), ("evaluated", gold)) for k in (True, False)}
    seen = Counter(groups["evaluated"])
    if sum(seen[y] >= MIN_PER_LABEL for y in labels) < 2:
        return (f"the evaluated texts with the phenomenon carry fewer than two labels {MIN_PER_LABEL} times each "
                "(a label-selected evaluation says nothing about the training labels' mix)")
    if min(len(g) for g in groups.values()) < MIN_ROWS:
        return f"fewer than {MIN_ROWS} training rows or evaluated texts with or without the phenomenon"
    stratum = _length_strata(profile, has)
    tagged = None if stratum is None else {src: [(y, has(t), stratum(t)) for t, y in rows]
                                           for src, rows in (("train", train), ("evaluated", gold))}
    tests = [_one(groups, y) if tagged is None else _stratified(tagged, y) for y in labels]
    label, d, se = max(tests, key=lambda t: t[1] / t[2] if t[2] > 0 else 0.0)
    p = min(1.0, math.erfc(abs(d / se) / math.sqrt(2)) * max(1, len(labels) - 1)) if se > 0 else 1.0
    shares = {k: {y: g.count(y) / len(g) for y in labels} for k, g in groups.items()}
    n = sum(len(g) for g in groups.values())
    return MixTest(label, Estimate(d, n, d - 1.96 * se, d + 1.96 * se, "wald"), p, shares,
                   {k: len(g) for k, g in groups.items()}, stratum is not None)


def _length_strata(profile: Any, has: Callable[[str], bool]) -> Callable[[str], int] | None:
    """The training length quartile of a text, where the corpus ties a label to length among the rows WITHOUT
    the phenomenon too (else None): a phenomenon of long texts then leans to the long label in training by
    selection, not by mislabelling (a corpus whose one label's rows were all long read as consistent label noise on
    contrast and negation). Where only the phenomenon's rows make the tie (its words lengthen them, its labels are
    the noisy ones) length is the phenomenon's proxy and is not stratified on."""
    from lmcritic.diagnose import _text
    from lmcritic.diagnose.hypotheses import _length

    assoc = _length.association(profile, keep=lambda t: not has(t))
    if assoc is None or not assoc.artefact:
        return None
    quartile = _length.quartile_of(profile.word_counts[0])
    return lambda t: quartile(len(_text.words(t)))


def _stratified(tagged: dict[str, list[tuple[str, bool, int]]], label: str) -> tuple[str, float, float]:
    """d within each length quartile (``tagged``: per side, each row's label, phenomenon and quartile), combined by
    inverse variance; quartiles short of rows, or whose training rows length alone labelled, are left out (none
    left: no evidence, d = 0)."""
    parts = []
    for q in range(4):
        groups = {f"{src}{'' if k else ' (without)'}": [y for y, h, s in rows if h == k and s == q]
                  for src, rows in tagged.items() for k in (True, False)}
        if min(len(g) for g in groups.values()) >= MIN_STRATUM and _both_labels(groups, label):
            _, d, _ = _one(groups, label)
            parts.append((d, _adjusted_se(groups, label)))
    if not parts:
        return label, 0.0, 0.0
    w = [1 / se ** 2 for _, se in parts]
    return label, sum(wi * d for wi, (d, _) in zip(w, parts)) / sum(w), 1 / math.sqrt(sum(w))


def _one(groups: dict[str, list[str]], label: str) -> tuple[str, float, float]:
    s = {k: sum(y == label for y in g) / len(g) for k, g in groups.items()}
    d = (s["train"] - s["evaluated"]) - (s["train (without)"] - s["evaluated (without)"])
    se = math.sqrt(sum(s[k] * (1 - s[k]) / len(g) for k, g in groups.items()))
    return label, d, se


def _both_labels(groups: dict[str, list[str]], label: str) -> bool:
    """The quartile's training rows, with and without the phenomenon, carry the label and another one: where
    length alone fixed the training label there is nothing to compare, and the evaluated side alone would read
    the phenomenon's natural lean (negation toward negative) as a difference."""
    return all(MIN_STRATUM <= sum(y == label for y in groups[k]) <= len(groups[k]) - MIN_STRATUM
               for k in ("train", "train (without)"))


def _adjusted_se(groups: dict[str, list[str]], label: str) -> float:
    """The standard error of d with each share shrunk as (k + 1) / (n + 2): a quartile whose groups are all one
    label (a length split leaves such) has no binomial variance, and would weigh infinitely."""
    shares = {k: ((sum(y == label for y in g) + 1) / (len(g) + 2), len(g)) for k, g in groups.items()}
    return math.sqrt(sum(p * (1 - p) / n for p, n in shares.values()))


def describe(name: str, t: MixTest) -> str:
    s = t.shares
    return (f"{name}: '{t.label}' is {s['train'][t.label]:.0%} of the training labels with {name} "
            f"(n={t.counts['train']}) but {s['evaluated'][t.label]:.0%} of the evaluated gold labels with it "
            f"(n={t.counts['evaluated']}); without {name} {s['train (without)'][t.label]:.0%} vs "
            f"{s['evaluated (without)'][t.label]:.0%}: difference in differences {t.effect}"
            + (" within training length quartiles (the corpus ties a label to length)" if t.stratified else "")
            + f", p={t.p:.2g}")
