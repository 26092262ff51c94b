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


@dataclass(frozen=True)
class MixTest:
    label: str  # the label training over-represents among the phenomenon's rows
    effect: Estimate  # d above, for ``label``
    p: float  # two-sided; times (labels − 1) when there are more than two labels
    shares: dict[str, dict[str, float]]  # "train" / "evaluated" (with P) / "... (without)": label -> share
    counts: dict[str, int]


def mix_test(profile: Any, has: Callable[[str], bool]) -> MixTest | str:
    """The test on a corpus profile (training texts and labels, evaluated texts and gold labels); a reason string
    when it cannot be run."""
    train, evaluated = labelled(profile)
    labels = sorted({y for _, y in train})
    gold = [(t, y) for t, y in evaluated if y in labels]
    groups = {f"{src}{'' if k else ' (without)'}": [y for t, y in rows if has(t) == k]
              for src, rows in (("train", train), ("evaluated", gold)) for k in (True, False)}
    seen = Counter(groups["evaluated"])
    if sum(seen[y] >= MIN_PER_LABEL for y in labels) < 2:
        return (f"the evaluated texts with the phenomenon carry fewer than two labels {MIN_PER_LABEL} times each "
                "(a label-selected evaluation says nothing about the training labels' mix)")
    if min(len(g) for g in groups.values()) < MIN_ROWS:
        return f"fewer than {MIN_ROWS} training rows or evaluated texts with or without the phenomenon"
    tests = [_one(groups, y) for y in labels]
    label, d, se = max(tests, key=lambda t: t[1] / t[2] if t[2] > 0 else 0.0)
    p = min(1.0, math.erfc(abs(d / se) / math.sqrt(2)) * max(1, len(labels) - 1)) if se > 0 else 1.0
    shares = {k: {y: g.count(y) / len(g) for y in labels} for k, g in groups.items()}
    n = sum(len(g) for g in groups.values())
    return MixTest(label, Estimate(d, n, d - 1.96 * se, d + 1.96 * se, "wald"), p, shares,
                   {k: len(g) for k, g in groups.items()})


def _one(groups: dict[str, list[str]], label: str) -> tuple[str, float, float]:
    s = {k: sum(y == label for y in g) / len(g) for k, g in groups.items()}
    d = (s["train"] - s["evaluated"]) - (s["train (without)"] - s["evaluated (without)"])
    se = math.sqrt(sum(s[k] * (1 - s[k]) / len(g) for k, g in groups.items()))
    return label, d, se


def describe(name: str, t: MixTest) -> str:
    s = t.shares
    return (f"{name}: '{t.label}' is {s['train'][t.label]:.0%} of the training labels with {name} "
            f"(n={t.counts['train']}) but {s['evaluated'][t.label]:.0%} of the evaluated gold labels with it "
            f"(n={t.counts['evaluated']}); without {name} {s['train (without)'][t.label]:.0%} vs "
            f"{s['evaluated (without)'][t.label]:.0%}: difference in differences {t.effect}, p={t.p:.2g}")
