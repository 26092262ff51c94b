"""Counterfactual data augmentation (data bias): identity-swapped copies of training rows with their labels,
Kamiran-Calders reweighing of the identity terms that lean to a label, and, when the run's weights train on,
counterfactual logit pairing.

One fine-tune of ``steps`` on every copy. Training in rounds until copies held out of training showed no gap was
tried and not adopted: the gauge starts from rows the run's model memorised and did not track what is left on
unseen text (``benchmarks/results/rounds_20261207/``); ``--set steps=N`` buys more training where it is wanted.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from lmcritic.errors import ConfigError
from lmcritic.mitigate.base import MitigationContext
from lmcritic.mitigate.data import Row, TrainingSet
from lmcritic.mitigate.trainers import TrainConfig, train_config
from lmcritic.mitigate.training import PAIRING_NOTE, Retrain, paired_when_continuing

REWEIGH = ("auto", "yes", "no")


@dataclass(frozen=True)
class CounterfactualConfig(TrainConfig):
    attributes: tuple[str, ...] | None = None  # None: the culprit's, else attributes skewed in the corpus
    pair: tuple[str, str] | None = None  # swap between these two groups only (None: the culprit's group pair;
    # without one, each mention moves to another group of its attribute at random)
    copies: int = 1  # swapped copies per row that mentions the attribute
    reweigh: str = "auto"  # Kamiran–Calders group reweighing: auto = when a group leans to a label in the corpus
    max_weight: float = 20.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reweigh not in REWEIGH or self.copies < 1:
            raise ValueError(f"reweigh must be one of {REWEIGH} and copies >= 1")
        if self.pair is not None and (len(self.pair) != 2 or self.pair[0] == self.pair[1]):
            raise ValueError("pair must be two different groups, e.g. [black, white]")


class CounterfactualAugmentation(Retrain):
    """Identity-swapped copies of training rows (same label), optionally group-reweighed."""

    name = "counterfactual_augmentation"
    title = "counterfactual data augmentation (identity swaps) + group reweighing"
    treats = frozenset({"data_bias"})
    probes = ("bias.counterfactual",)
    culprits = frozenset({"identity_group"})
    preference = 0.9
    Config = CounterfactualConfig
    pairing_note = PAIRING_NOTE

    def transform(self, ctx: MitigationContext, data: TrainingSet) -> tuple[TrainingSet, dict[str, Any]]:
        from lmcritic.lexicon import find_identity_terms

        attrs, skewed = self._attributes(ctx, data)
        pair = self._pair(ctx, attrs)
        rng = random.Random(ctx.seed)
        added: list[Row] = []
        swaps: Counter[str] = Counter()
        for r in data.rows:
            for attr in sorted({m.attribute for m in find_identity_terms(r.text, attrs)}):
                added += swapped_copies(r, attr, pair if pair and pair[0] == attr else None, self.config.copies,
                                        rng, swaps)
        rows = list(data.rows) + added
        culprit = ctx.target.culprit
        terms = skewed_terms(rows, attrs) | {t.lower() for t in (culprit.terms if culprit else ())}
        reweigh = self.config.reweigh == "yes" or (self.config.reweigh == "auto" and bool(skewed))
        if reweigh and terms:
            rows = term_reweigh(rows, terms, self.config.max_weight)
        return data.with_rows(rows), {"attributes": list(attrs), "skewed_groups": skewed,
                                      "pair": list(pair) if pair else None, "swaps": dict(swaps),
                                      "counterfactual_rows": len(added), "reweighed": reweigh,
                                      "reweighed_terms": sorted(terms) if reweigh else []}

    def settings(self) -> TrainConfig:
        """Counterfactual logit pairing when the run's weights train on: they hold the association, and
        cross-entropy on the swapped copies removes only as much of it as puts each copy on the right side of
        the boundary; the pairing loss trains the invariance itself (a copy's class probabilities onto its
        original's). A fresh start (``base``, ``from_scratch``) has no association to remove, and the balanced
        corpus teaches none: no pairing unless asked for."""
        return paired_when_continuing(train_config(self.config))

    def _pair(self, ctx: MitigationContext, attrs: Sequence[str]) -> tuple[str, str, str] | None:
        """(attribute, group, group) to swap between: the configured pair, else the diagnosed group and the group
        it was compared with; None when neither names two groups of one swapped attribute."""
        from lmcritic.lexicon import groups

        c = ctx.target.culprit
        if self.config.pair is not None:
            if len(attrs) != 1:
                raise ConfigError("pair needs exactly one attribute", "pass --set attributes=[ATTRIBUTE]")
            a, b = self.config.pair
            attr = attrs[0]
        elif c is not None and c.kind == "identity_group" and c.attribute in attrs:
            attr, a, b = str(c.attribute), c.value, str(c.contrast or "")
        else:
            return None
        known = set(groups(attr)) | set(groups(attr, "zh"))
        if a in known and b in known and a != b:
            return attr, a, b
        if self.config.pair is not None:
            raise ConfigError(f"pair {a}/{b} is not two groups of {attr}", f"known: {', '.join(sorted(known))}")
        return None  # the diagnosis compared with "another group": swap to the attribute's groups

    def _attributes(self, ctx: MitigationContext, data: TrainingSet) -> tuple[tuple[str, ...], list[str]]:
        """The attributes to swap, and the groups whose label skew in the corpus is significant (BH q < 0.05)."""
        from lmcritic.diagnose import _text
        from lmcritic.lexicon.association import associate

        assoc = associate([r.text for r in data.rows], [str(r.label) for r in data.rows])
        skewed = [a for a in assoc.groups if a.p_adjusted < 0.05]
        c = ctx.target.culprit
        attrs = self.config.attributes or ((c.attribute,) if c and c.attribute else ())
        if not attrs and c and c.terms:
            attrs = tuple(dict.fromkeys(a for t in c.terms for _, a in _text.identity_terms(t)))
        if not attrs:
            attrs = tuple(dict.fromkeys(a.attribute for a in skewed))
        if not attrs:
            raise ConfigError("no identity attribute to swap: the diagnosis names none and no group leans to a "
                              "label in the corpus", "pass --set attributes=[gender]")
        return tuple(attrs), [a.term for a in skewed if a.attribute in attrs]


def swapped_copies(row: Row, attribute: str, pair: tuple[str, str, str] | None, copies: int, rng: random.Random,
                   swaps: Counter[str]) -> list[Row]:
    """``copies`` identity-swapped copies of ``row`` (same label). With a ``pair`` (attribute, a, b) a row that
    mentions a becomes b and one that mentions b becomes a; rows with both or neither are left alone (a swap
    would not change which of the pair the row is about). Without, each group moves to another one at random.
    ``swaps`` counts the copies by direction."""
    from lmcritic.lexicon import find_identity_terms, swap

    to: str | None = None
    if pair is not None:
        present = {m.group for m in find_identity_terms(row.text, attribute)}
        a, b = pair[1], pair[2]
        if (a in present) == (b in present):
            swaps["both groups: left alone" if a in present else "neither group: left alone"] += 1
            return []
        to = b if a in present else a
    out = []
    for _ in range(copies):
        text, edits = swap(row.text, attribute, rng, to=to)
        if edits:
            out.append(Row(text, row.label, row.weight, "counterfactual", row.line, twin=row.text))
            swaps[f"{pair[2] if to == pair[1] else pair[1]}->{to}" if pair else f"{attribute}: random group"] += 1
    return out


def skewed_terms(rows: Sequence[Row], attributes: Sequence[str]) -> set[str]:
    """Identity terms of ``attributes`` whose label distribution differs from the corpus (Fisher, BH q < 0.05)."""
    from lmcritic.lexicon.association import associate

    assoc = associate([r.text for r in rows], [str(r.label) for r in rows], attributes=list(attributes))
    return {a.term.lower() for a in assoc.terms if a.p_adjusted < 0.05}


def term_reweigh(rows: Sequence[Row], terms: set[str], max_weight: float) -> list[Row]:
    """Kamiran & Calders (2012) reweighing, w(g, y) = P(g) P(y) / P(g, y), with the sensitive variable g = which
    of the skewed identity ``terms`` a row mentions: each term becomes independent of the label in the weighted
    data (a group-level variable would leave a single skewed word, e.g. "women", as biased as before)."""
    import re
    from dataclasses import replace

    alternatives = "|".join(map(re.escape, sorted(terms, key=len, reverse=True)))
    pattern = re.compile(r"(?i)(?<![\w'])(" + alternatives + r")(?![\w'])")
    keys = ["|".join(sorted({m.lower() for m in pattern.findall(r.text)})) or "-" for r in rows]
    n = len(rows)
    pg, py = Counter(keys), Counter(str(r.label) for r in rows)
    pgy = Counter(zip(keys, (str(r.label) for r in rows)))
    out = []
    for r, g in zip(rows, keys):
        w = (pg[g] / n) * (py[str(r.label)] / n) / (pgy[(g, str(r.label))] / n)
        out.append(replace(r, weight=r.weight * min(max_weight, w)))
    return out
