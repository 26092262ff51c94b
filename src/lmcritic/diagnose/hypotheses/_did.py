"""The difference in differences of label-noise tests: training disagreement against held-out error, with and
without a phenomenon (or a class), its bootstrap CI and p, and the excess flip rate it implies."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from lmcritic.probes.base import Estimate

N_BOOT = 2000


def rates(train: dict[bool, list], held: dict[bool, list]) -> dict[str, float]:
    """The four shares of a difference in differences, named as the evidence lines read them."""
    return {f"{side}{'' if k else ' (without)'}": float(np.mean(v)) for side, d in (("train", train),
            ("held-out", held)) for k, v in d.items()}


def diff_in_diff(train: dict[bool, list], held: dict[bool, list], seed: int, flip_rate: bool = False,
                 classes: int = 2) -> tuple:
    """The difference in differences, a percentile bootstrap CI and a one-sided bootstrap p (effect <= 0); with
    ``flip_rate`` also the excess flip rate of :func:`excess_flip_rate` and its CI from the same resamples.

    Each group is resampled with one right and one wrong answer added (the Agresti–Caffo adjustment; the point
    estimate is the plain one): a small group whose answers are all right has no bootstrap variance at all, so
    the plain bootstrap read 13 evaluated texts with the word 'story', almost none wrong, as p = 0.0005 for label
    noise on a planted-bias model (adjusted: p = 0.045, CI across 0); on large groups the two agree."""
    groups = [np.asarray(g, float) for g in (train[True], held[True], train[False], held[False])]
    if min(len(g) for g in groups) == 0:
        raise ValueError("a group of the difference in differences is empty")

    def stat(a: Sequence[np.ndarray]) -> np.ndarray | float:
        return (a[0] - a[1]) - (a[2] - a[3])

    means = [g.mean() for g in groups]
    point = float(stat(means))
    rng = np.random.default_rng(seed)
    padded = [np.append(g, (0.0, 1.0)) for g in groups]
    boots = [g[rng.integers(0, len(g), (N_BOOT, len(g)))].mean(1) for g in padded]
    boot = stat(boots)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    p = float((np.sum(boot <= 0) + 1) / (N_BOOT + 1))
    did = Estimate(point, sum(len(g) for g in groups), float(lo), float(hi), "bootstrap")
    if not flip_rate:
        return did, p
    return did, p, excess_flip_rate(did, boot, means[1], boots[1], classes)


def excess_flip_rate(did: Estimate, boot: Any, held_err: float, held_boot: np.ndarray,
                     classes: int) -> Estimate | None:
    """η = DiD / (1 − e·k/(k − 1)) for k classes: a learner with error e disagrees with a label flipped to a random
    other class on 1 − e/(k − 1) of them, so labels flipped at rate η raise its disagreement by η(1 − e·k/(k − 1))
    (1 − 2e for two classes). None where that factor is 0.1 or less (the learner is near chance there); η is a
    rate, so the estimate and its CI are kept within [−1, 1] (a factor of 0.16 read a DiD of −0.08 as −4.75)."""
    k = max(2, classes)
    factor = 1 - held_err * k / (k - 1)
    if factor <= 0.1:
        return None
    ratio = np.clip(boot / np.maximum(1 - held_boot * k / (k - 1), 0.1), -1.0, 1.0)
    rlo, rhi = np.quantile(ratio, [0.025, 0.975])
    return Estimate(float(np.clip(did.value / factor, -1.0, 1.0)), did.n, float(rlo), float(rhi), "bootstrap")
