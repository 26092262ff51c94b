"""Label noise across the whole corpus: labels flipped at random, not on one phenomenon.

A model fitted to labels flipped at rate η learns the noisy labels' posterior: on a text whose true label is clear
it gives that label probability about 1 − η, and on its own (noisy) training labels that is about right. On
evaluated texts with gold labels the same model is right far more often than its probabilities say — it is
underconfident there. At accuracy ``a`` a model calibrated to the noisy labels is underconfident on gold labels by
about η(2a − 1). The test compares the model's calibration gap on the evaluated texts (accuracy − mean
confidence) with the same gap on a sample of its own training rows (agreement with their labels − confidence),
both on the rows the model is most confident on:

    Δ = gap_evaluated − gap_training,   η ≈ Δ / (2a − 1)

A clean model has about the same gap on both (an under-trained or label-smoothed one is underconfident on both,
an over-fitted one overconfident on the evaluated texts: Δ ≤ 0). A model that memorised its noisy labels is
overconfident too, so a second test looks at the labels alone: a cross-fitted corpus model
(:mod:`lmcritic.diagnose.crossfit`, which cannot memorise) and the same statistic on its out-of-fold
probabilities. Each test is blind where the other sees: the model's where the model memorised the noise, the
corpus model's where its sentence encoder cannot read the texts (near-chance accuracy leaves the flip rate
unidentified). Both run; the one with the smaller p-value decides (ties: the larger sample), its p multiplied by
the number of tests (Bonferroni, valid whatever their dependence). Measured on the planted corpora
(benchmarks/results/planted_hf_global_noise_tests_20261204.md): the corpus model's test found the global noise on
5 of 5 seeds (p = 0.0005, flip rate CI low 0.22-0.28 for true rates 0.29-0.35) and nothing on the 45 other planted
or clean corpora (smallest p 0.035, flip rate CI low below 0).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses._phenomena import fit_outside, outside
from lmcritic.diagnose.rescore import Edit
from lmcritic.errors import DataError
from lmcritic.probes.base import Estimate

SAMPLE = 500  # training rows the model is asked about
WHY_PRIMARY = ("the smaller p-value of the model's own test (blind when the model memorised noisy labels) and the "
               "corpus model's (blind when its encoder cannot read the texts)")
N_BOOT = 2000
MIN_EVAL = 30


@dataclass(frozen=True)
class GapTest:
    """One calibration-gap comparison: training rows against gold-labelled evaluated texts."""

    who: str  # "the model" | "a cross-fitted corpus model (...)"
    did: Estimate  # gap_evaluated − gap_training
    rate: Estimate | None  # implied flip rate; None when the evaluated accuracy is near chance
    p: float  # one-sided bootstrap p of did <= 0
    rates: dict[str, float]  # agreement / accuracy and mean confidence on each side


def gap_test(who: str, train: tuple[np.ndarray, np.ndarray], held: tuple[np.ndarray, np.ndarray],
             seed: int) -> GapTest:
    """``train``/``held``: (right, confidence) per row — right: the prediction equals the row's label (training)
    or gold label (evaluated); confidence: the probability of the predicted label."""
    fit = float(train[0].mean())
    (tr_ok, tr_conf), (ev_ok, ev_conf) = _confident_half(train, held)
    rates = {"training agreement (all sampled rows)": fit, "training agreement": float(tr_ok.mean()),
             "training confidence": float(tr_conf.mean()), "evaluated accuracy": float(ev_ok.mean()),
             "evaluated confidence": float(ev_conf.mean())}
    boot, acc_boot, point = _bootstrap(tr_ok - tr_conf, ev_ok - ev_conf, ev_ok, seed)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    did = Estimate(point, len(tr_ok) + len(ev_ok), float(lo), float(hi), "bootstrap")
    p = float((np.sum(boot <= 0) + 1) / (N_BOOT + 1))
    acc = rates["evaluated accuracy"]
    if acc < 0.6:  # near chance the flip rate is not identified
        return GapTest(who, did, None, p, rates)
    rlo, rhi = np.clip(np.quantile(boot / np.maximum(2 * acc_boot - 1, 0.1), [0.025, 0.975]), -1.0, 1.0)
    rate = float(np.clip(point / (2 * acc - 1), -1.0, 1.0))  # a rate: a gap over a small 2·acc − 1 can exceed 1
    return GapTest(who, did, Estimate(rate, did.n, float(rlo), float(rhi), "bootstrap"), p, rates)


def _bootstrap(g_tr: np.ndarray, g_ev: np.ndarray, ev_ok: np.ndarray, seed: int) -> tuple:
    """Resamples of gap_evaluated − gap_training (each side resampled on its own), of the evaluated accuracy
    (the same evaluated resamples), and the point estimate."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(g_tr), (N_BOOT, len(g_tr)))
    j = rng.integers(0, len(g_ev), (N_BOOT, len(g_ev)))
    return g_ev[j].mean(1) - g_tr[i].mean(1), ev_ok[j].mean(1), float(g_ev.mean() - g_tr.mean())


def _confident_half(train: tuple[np.ndarray, np.ndarray], held: tuple[np.ndarray, np.ndarray]) -> tuple:
    """Both sides cut to the rows at or above the pooled median confidence (all rows when a side keeps fewer than
    ``MIN_EVAL // 2``). Noise shows where the true label is clear (η(2a − 1) is largest at a near 1); ambiguous
    rows are underconfident or not whatever the labels, and only add variance (global-noise plant, seed 0: p 0.004
    on every row, 0.0005 on the confident half; every other planted and the clean model: Δ < 0 on both)."""
    cut = float(np.median(np.concatenate([train[1], held[1]])))
    keep = [side[1] >= cut for side in (train, held)]
    if min(int(k.sum()) for k in keep) < MIN_EVAL // 2:
        return train, held
    return tuple((side[0][k], side[1][k]) for side, k in zip((train, held), keep))


def primary(tests: list[GapTest]) -> tuple[GapTest, float]:
    """The deciding test — the smaller p-value, ties to the larger sample — and its Bonferroni-corrected p."""
    best = min(tests, key=lambda t: (t.p, -t.did.n))
    return best, min(1.0, best.p * len(tests))


def model_gaps(ctx: Any) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], list[int], int] | str:
    """The model's (right, confidence) on a random sample of its training rows and on the gold-labelled evaluated
    texts, the training lines it contradicts most confidently, and the model calls made; a reason when not possible."""
    held = [(r.passed is True, max(r.label_probs.values())) for r in ctx.eval_records
            if r.passed is not None and r.label_probs and outside(ctx, input_text(r) or "")]
    if len(held) < MIN_EVAL:
        return f"fewer than {MIN_EVAL} evaluated texts with label probabilities"
    rows = [(line, text, label) for line, text, label in zip(ctx.profile.corpus.lines, ctx.profile.corpus.texts,
                                                              ctx.profile.labels) if label is not None]
    rows = [r for r in random.Random(ctx.seed).sample(rows, min(SAMPLE, len(rows))) if outside(ctx, r[1])]
    base = ctx.eval_records[0]
    edits = [Edit(base, text, "train_row", {"line": line}) for line, text, _ in rows]
    outs = ctx.rescorer.run(ctx.eval_key, edits, "label_noise", ctx.defect.id) if ctx.rescorer else []
    scored = [(row, o.record) for row, o in zip(rows, outs) if o.record.label_probs and o.prediction is not None]
    if len(scored) < MIN_EVAL:
        return "the model could not be asked about its training rows with label probabilities"
    ok = np.array([str(rec.prediction) == label for (_, _, label), rec in scored], float)
    conf = np.array([max(rec.label_probs.values()) for _, rec in scored])
    worst = sorted((-c, line) for ((line, _, _), c, k) in zip((r for r, _ in scored), conf, ok) if not k)
    ev = np.array(held, float)
    return (ok, conf), (ev[:, 0], ev[:, 1]), [line for _, line in worst[:50]], len(outs)


def check_labels_match(train_ok: np.ndarray, eval_ok: np.ndarray, labels: Iterable[str]) -> None:
    """Noisy labels leave a model agreeing with most of its training labels (random flips below one half, or a
    class read as another in part); one that disagrees with most of them while right on the evaluated texts was
    handed other labels than it learnt — ids in another order, another task's names. Every corpus test would read
    that as noise (a clean model's 0/1/2 topic ids read as sentiment: 'flip rate 1.17'), so it is an error."""
    agree, acc = float(train_ok.mean()), float(eval_ok.mean())
    upper = agree + 2 * math.sqrt(max(agree * (1 - agree), 0.01) / len(train_ok))
    if upper >= 0.5 or acc < upper + 0.25:  # a weak model is caught too (a tiny one, 58 % right, agreeing with 0 %)
        return
    raise DataError(f"the model agrees with {agree:.0%} of {len(train_ok)} sampled training labels but is right on "
                    f"{acc:.0%} of the evaluated texts: the training file's labels ({', '.join(sorted(labels))}) are "
                    "not the ones it learnt", "give --train the labels the model was trained with: its label names, "
                    "or integer ids in the order of its config's id2label")


def corpus_gaps(ctx: Any) -> GapTest | str:
    """The same test for a cross-fitted corpus model (its out-of-fold probabilities of the training rows)."""
    cf = fit_outside(ctx)  # without the rows of phenomena whose label noise is explained
    if isinstance(cf, str):
        return cf
    return gap_test(f"a cross-fitted corpus model ({cf.learner})", cf.train, cf.evaluated, ctx.seed)


def describe(t: GapTest) -> str:
    r = t.rates
    rate = f"; implied flip rate {t.rate} (understated by a reader not fitted to the noisy labels)" if t.rate else ""
    return (f"whole corpus: {t.who} agrees with {r['training agreement']:.0%} of its training labels at mean "
            f"confidence {r['training confidence']:.0%}, and is right on {r['evaluated accuracy']:.0%} of evaluated "
            f"texts at mean confidence {r['evaluated confidence']:.0%} (the rows at or above the median confidence): "
            f"underconfidence on gold labels beyond that on training labels {t.did}, p={t.p:.2g}{rate}")
