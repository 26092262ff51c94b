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

Resolution beyond the simulation: a raw Monte Carlo p-value cannot go below ``(1 + charts)/(B+1)`` (the
smallest tail a stream reaches, counted over the charts), about 5e-4 for four charts and B ≈ 9,300. That is above
the Benjamini–Hochberg bar of a lone signal among ~30 tests at 0.01 (3.3e-4), so a CUSUM could only alert in a
window where other tests were significant too: in practice the first *fully* changed window, which is what
the charts were meant to beat. So the far tails are extrapolated, as for permutation p-values (Knijnenburg et
al. 2009): above each chart's top :data:`TAIL_FRACTION` of simulated maxima, an exponential tail fitted to the
exceedances (a CUSUM's maximum has an exponential tail, rate 1 for likelihood-ratio charts, Siegmund 1985);
below the simulated smallest tails, ``P(min tail ≤ t) = c·t`` with ``c``, the effective number of independent
charts, read off the simulation where it resolves and clipped to ``[1, charts]`` (Bonferroni's bound).
:func:`tail_fit` reports the fitted rates, so a reader can check them against 1.
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
TAIL_FRACTION = 0.02  # the share of simulated streams the tail extrapolation is fitted on (per chart, and overall)
MIN_TAIL = 20  # fewer exceedances than this: no extrapolation (the raw Monte Carlo p-value)


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
        self._null: dict[tuple[int, bool], Null] = {}
        self.running = np.ones(0)  # the last window's p-value after each of its requests (non-increasing)

    def update(self, values: Sequence[float]) -> tuple[float, float]:
        """Feed one window's values in order; (p-value, estimated shift since the change point).

        :attr:`running` then holds the p-value the window would have had after each request (calibrated on
        the whole window, so conservative for the prefix): where it first falls under the cut-off the window's
        tests set is the request by which the evidence sufficed (:func:`first_below`)."""
        if not len(values):
            self.running = np.ones(0)
            return 1.0, 0.0
        null = self._calibration(len(values))
        path, effect = self._run(np.asarray(values, float))
        self.running = null.p_values(null.tails(path))
        self.fresh = False
        return float(self.running[-1]), effect

    def restart(self) -> None:
        """After an alert: the charts start again from 0, so the next alert needs new evidence."""
        self.s[:] = 0.0
        self.seg_sum[:], self.seg_n[:] = 0.0, 0
        self.fresh = True

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """The running window maximum of each chart after each request (shape requests × charts), and the shift
        since the change point of the chart whose final tail is smallest."""
        top, path = self.s.copy(), np.empty((len(x), len(self.a)))
        effects = np.zeros(len(self.a))
        for i, v in enumerate(x):
            self.s = np.maximum(0.0, self.s + self.a * v + self.b)
            live = self.s > 0
            self.seg_sum = np.where(live, self.seg_sum + v, 0.0)
            self.seg_n = np.where(live, self.seg_n + 1, 0)
            up = self.s > top
            top = np.where(up, self.s, top)
            effects = np.where(up, self.seg_sum / np.maximum(self.seg_n, 1) - self.design.reference, effects)
            path[i] = top
        final = self._calibration(len(x)).tails(path[-1:])[0]
        return path, float(effects[int(np.argmin(final))])

    def tail_fit(self, n: int) -> tuple[float, ...]:
        """The fitted exponential rates of the charts' window maxima (n requests; NaN: not extrapolated)."""
        return tuple(float(t) for t in self._calibration(n).rate)

    def _calibration(self, n: int) -> "Null":
        key = (_grid(n), self.fresh)
        if key not in self._null:
            self._null[key] = _null(self.design, key[0], key[1], self.seed)
        return self._null[key]


@dataclass(frozen=True)
class Null:
    """The in-control calibration of one design for one window size: per chart the sorted simulated window
    maxima and the exponential tail fitted above ``u``; the sorted per-stream smallest tails and ``c``."""

    maxima: np.ndarray  # charts × streams, sorted per chart
    u: np.ndarray  # per chart: the tail fit's threshold (inf: none)
    rate: np.ndarray  # per chart: the fitted exponential rate (NaN: none)
    share: np.ndarray  # per chart: the share of streams above u
    min_tails: np.ndarray  # sorted
    t0: float  # below this smallest tail, p = c·t
    c: float

    def tails(self, tops: np.ndarray) -> np.ndarray:
        """Per-chart tail probabilities of window maxima ``tops`` (… × charts)."""
        streams = self.maxima.shape[1]
        tops = np.atleast_2d(tops)
        out = np.empty(tops.shape)
        for j in range(tops.shape[1]):
            count = streams - np.searchsorted(self.maxima[j], tops[:, j], "left")
            out[:, j] = (1 + count) / (streams + 1)
            far = tops[:, j] > self.u[j]
            if far.any():
                out[far, j] = self.share[j] * np.exp(-self.rate[j] * (tops[far, j] - self.u[j]))
        return out

    def p_values(self, tails: np.ndarray) -> np.ndarray:
        """The p-value of each row's smallest tail: P(min over charts ≤ t) under no change."""
        t = tails.min(axis=1)
        p = (1 + np.searchsorted(self.min_tails, t, "right")) / (len(self.min_tails) + 1)
        return np.where(t < self.t0, self.c * t, p)


def first_below(running: np.ndarray, cutoff: float) -> int | None:
    """The index of the first request whose running p-value is at or under ``cutoff`` (None: never)."""
    hit = np.flatnonzero(running <= cutoff)
    return int(hit[0]) if len(hit) else None


def _grid(n: int) -> int:
    return n if n <= 20 else int(math.ceil(GRID ** math.ceil(math.log(n, GRID))))


def _null(d: Design, n: int, fresh: bool, seed: int) -> Null:
    """Simulate in-control streams (from 0 when ``fresh``, else after a burn-in) and fit the tails."""
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
    fits = [_exp_tail(row) for row in maxima]
    u, rate, share = (np.array([f[i] for f in fits]) for i in range(3))
    partial = Null(maxima, u, rate, share, np.zeros(0), 0.0, 1.0)
    min_tails = np.sort(partial.tails(top.T).min(axis=1))
    t0, c = _linear_tail(min_tails, len(d.a))
    return Null(maxima, u, rate, share, min_tails, t0, c)


def _exp_tail(sorted_maxima: np.ndarray) -> tuple[float, float, float]:
    """(u, rate, share): an exponential fitted to the top ``TAIL_FRACTION`` of maxima over ``u``; (inf, nan, 0)
    when too few distinct exceedances. The rate is its one-sided 95% lower confidence bound (``Σ excess`` is
    Gamma(K, 1/rate); Wilson–Hilferty quantile), so an uncertain fit errs toward a heavier tail, larger p."""
    streams = len(sorted_maxima)
    k = int(math.ceil(TAIL_FRACTION * streams))
    if k < MIN_TAIL or k >= streams:
        return math.inf, math.nan, 0.0
    u = float(sorted_maxima[streams - k - 1])
    excess = sorted_maxima[sorted_maxima > u] - u
    if len(excess) < MIN_TAIL or not excess.sum() > 0:
        return math.inf, math.nan, 0.0
    k = len(excess)
    low = k * (1 - 1 / (9 * k) - 1.645 / (3 * math.sqrt(k))) ** 3  # 5% quantile of Gamma(k, 1)
    return u, low / float(excess.sum()), (1 + k) / (streams + 1)


def _linear_tail(min_tails: np.ndarray, charts: int) -> tuple[float, float]:
    """(t0, c): below the smallest tail ``t0`` that still has ``TAIL_FRACTION`` of the streams at or under it,
    ``P(min tail ≤ t) = c·t``, ``c`` matched at ``t0`` and clipped to [1, charts]."""
    streams = len(min_tails)
    k = int(math.ceil(TAIL_FRACTION * streams))
    if k < MIN_TAIL:
        return 0.0, 1.0
    t0 = float(min_tails[k - 1])
    at_t0 = (1 + np.searchsorted(min_tails, t0, "right")) / (streams + 1)
    return t0, float(min(charts, max(1.0, at_t0 / t0)))


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


__all__ = ["Cusum", "Design", "MULTIPLIERS", "Null", "SIMULATIONS", "design", "first_below", "seed_of"]
