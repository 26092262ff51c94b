"""Sequential change detection on per-request values: one-sided CUSUM charts calibrated on the reference.

Why not only a window test: when a change starts inside a window, the window's rate or mean averages the requests
before and after it, so a change of twice the threshold looks like one at the threshold, and the test waits for
the first *fully* changed window. A CUSUM (Page 1954) reads the requests one by one: ``S = max(0, S + a·x + b)``
grows while the values sit above the in-control level and returns to 0 otherwise, so it carries the evidence of
a change from its onset, across window boundaries, and the requests since ``S`` last left 0 estimate the change
(the effect reported is their rate/mean minus the reference's, not the diluted window's).

Design: the rule's ``threshold`` is the smallest shift worth detecting, ``δ``. A chart tuned to ``δ`` is slow to
confirm a much larger shift, so each rule runs charts tuned to ``δ, 2δ, 4δ, 8δ`` (a multi-chart CUSUM, a cheap
stand-in for the generalised likelihood ratio over unknown shift sizes), per direction asked. Rates use the
Bernoulli log-likelihood ratio of ``p0 + mδ`` against ``p0``; means use ``x − (μ0 + mδ/2)``.

Calibration: the window's statistic is the smallest, over charts, of each chart's tail probability at its
largest value in the window. Its p-value comes from :data:`SIMULATIONS` simulated in-control streams drawn from
the reference: Bernoulli draws with the rate drawn per stream from its Jeffreys posterior (a reference with
few events does not pass for a precise one), or values resampled from the reference sample for a mean. Each
simulated stream starts where the real chart does: at 0 after an alert (the chart restarts), else in its
stationary state (a burn-in). So under no change, a window's p-value is (up to Monte Carlo error, resolution
1/(B+1)) uniform, and it enters the window's Benjamini–Hochberg family like any other test.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

MULTIPLIERS = (1, 2, 4, 8)
SIMULATIONS = 10_000  # in-control streams per calibration (fewer for very long windows, see _budget)
STEP_BUDGET = 40_000_000  # simulated chart steps per calibration
BURN_IN = 500  # requests simulated before a window that starts from the stationary state (at least the window)
GRID = 1.15  # window sizes are rounded up to this geometric grid for calibration (longer: conservative)


@dataclass(frozen=True)
class Design:
    """The charts of one rule on one metric: ``S_j = max(0, S_j + a_j·x + b_j)`` and the in-control model."""

    kind: str  # rate | mean
    a: tuple[float, ...]
    b: tuple[float, ...]
    reference: float  # p0 or μ0
    k: int = 0  # reference events (rate)
    n: int = 0  # reference requests (rate)
    sample: tuple[float, ...] = ()  # reference values (mean)


def design(kind: str, delta: float, direction: str, *, k: int = 0, n: int = 0,
           sample: Sequence[float] = ()) -> Design | None:
    """Charts for shifts of ``δ·(1, 2, 4, 8)`` in ``direction``; None when no shift of that size is possible."""
    if kind == "rate":
        p0 = (k + 0.5) / (n + 1)  # Jeffreys: a reference without events still has a rate above 0
        a, b = _rate_charts(p0, delta, direction)
        return Design("rate", tuple(a), tuple(b), p0, k, n) if a else None
    mu = float(np.mean(sample)) if len(sample) else math.nan
    if len(sample) < 2 or math.isnan(mu):
        return None
    signs = [s for s, d in ((1.0, "up"), (-1.0, "down")) if direction in (d, "both")]
    a = [s for s in signs for _ in MULTIPLIERS]
    b = [-s * mu - m * delta / 2 for s in signs for m in MULTIPLIERS]
    return Design("mean", tuple(a), tuple(b), mu, sample=tuple(float(x) for x in sample))


def _rate_charts(p0: float, delta: float, direction: str) -> tuple[list[float], list[float]]:
    a, b = [], []
    for sign in [s for s, d in ((1, "up"), (-1, "down")) if direction in (d, "both")]:
        for m in MULTIPLIERS:
            p1 = p0 + sign * m * delta
            if not 0 < p1 < 1:
                continue
            lo = math.log((1 - p1) / (1 - p0))
            a.append(math.log(p1 / p0) - lo)
            b.append(lo)
    return a, b


class Cusum:
    """One rule's charts on one metric (and group), carried from window to window."""

    def __init__(self, d: Design, seed: int = 0) -> None:
        self.design, self.seed = d, seed
        self.a, self.b = np.asarray(d.a), np.asarray(d.b)
        self.s = np.zeros(len(d.a))
        self.seg_sum, self.seg_n = np.zeros(len(d.a)), np.zeros(len(d.a), dtype=int)
        self.fresh = True  # the charts are known to be at 0 (start, or restarted after an alert)
        self._null: dict[tuple[int, bool], tuple[np.ndarray, np.ndarray]] = {}

    def update(self, values: Sequence[float]) -> tuple[float, float]:
        """Feed one window's values in order; (p-value, estimated shift since the change point)."""
        if not len(values):
            return 1.0, 0.0
        top, effect = self._run(np.asarray(values, float))
        p = self.p_value(top, len(values))
        self.fresh = False
        return p, effect

    def restart(self) -> None:
        """After an alert: the charts start again from 0, so the next alert needs new evidence."""
        self.s[:] = 0.0
        self.seg_sum[:], self.seg_n[:] = 0.0, 0
        self.fresh = True

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        top, effect = self.s.copy(), np.zeros(len(self.a))
        for v in x:
            self.s = np.maximum(0.0, self.s + self.a * v + self.b)
            live = self.s > 0
            self.seg_sum = np.where(live, self.seg_sum + v, 0.0)
            self.seg_n = np.where(live, self.seg_n + 1, 0)
            up = self.s > top
            top = np.where(up, self.s, top)
            effect = np.where(up, self.seg_sum / np.maximum(self.seg_n, 1) - self.design.reference, effect)
        tails = self._tails(top, len(x))
        return tails, float(effect[int(np.argmin(tails))])

    def _tails(self, top: np.ndarray, n: int) -> np.ndarray:
        maxima, _ = self._calibration(n)
        count = maxima.shape[1] - np.array([np.searchsorted(maxima[j], top[j], "left") for j in range(len(top))])
        return (1 + count) / (maxima.shape[1] + 1)

    def p_value(self, tails: np.ndarray, n: int) -> float:
        _, min_tails = self._calibration(n)
        return float((1 + np.searchsorted(min_tails, tails.min(), "right")) / (len(min_tails) + 1))

    def _calibration(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        key = (_grid(n), self.fresh)
        if key not in self._null:
            self._null[key] = _null(self.design, key[0], key[1], self.seed)
        return self._null[key]


def _grid(n: int) -> int:
    return n if n <= 20 else int(math.ceil(GRID ** math.ceil(math.log(n, GRID))))


def _null(d: Design, n: int, fresh: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per chart, the sorted window maxima of in-control streams; and the sorted per-stream smallest tails."""
    burn = 0 if fresh else max(BURN_IN, n)
    streams = _budget(len(d.a), burn + n)
    rng = np.random.default_rng([seed, n, int(fresh)])
    draw = _sampler(d, streams, rng)
    a, b = np.asarray(d.a)[:, None], np.asarray(d.b)[:, None]
    s = np.zeros((len(d.a), streams))
    for _ in range(burn):
        s = np.maximum(0.0, s + a * draw() + b)
    top = s.copy()  # as the real chart's: the window's maximum counts the value it starts from
    for _ in range(n):
        s = np.maximum(0.0, s + a * draw() + b)
        np.maximum(top, s, out=top)
    maxima = np.sort(top, axis=1)
    ranks = np.stack([streams - np.searchsorted(maxima[j], top[j], "left") for j in range(len(d.a))])
    return maxima, np.sort((ranks / (streams + 1)).min(axis=0))  # ranks count the stream itself: the "1 +"


def _sampler(d: Design, streams: int, rng: np.random.Generator) -> Callable[[], np.ndarray]:
    if d.kind == "rate":
        p = rng.beta(d.k + 0.5, d.n - d.k + 0.5, size=streams)
        return lambda: (rng.random(streams) < p).astype(float)
    pool = np.asarray(d.sample, float)
    return lambda: pool[rng.integers(0, len(pool), streams)]


def _budget(charts: int, steps: int) -> int:
    return int(min(SIMULATIONS, max(1000, STEP_BUDGET // max(1, charts * steps))))


def seed_of(*parts: object) -> int:
    """A stable seed from a rule's identity (the same calibration on every run)."""
    return zlib.crc32("|".join(map(str, parts)).encode())


__all__ = ["Cusum", "Design", "MULTIPLIERS", "SIMULATIONS", "design", "seed_of"]
