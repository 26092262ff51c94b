"""Compare two runs (two models, or one model before and after a change) case by case.

For every probe both runs share and every per-case metric (each score, plus the pass rate), the change
B − A is estimated on the cases both runs scored: a pair is the same case id AND the same input (a hash of
the stored input), so the same task run on other data does not pair unrelated texts; cases left unpaired
are counted and reported. McNemar's exact test for pass/fail, a paired bootstrap CI and sign-flip test for
scores; where fewer than two cases pair, a two-sample bootstrap. All p-values of a comparison are
Benjamini–Hochberg corrected together. Findings are matched by (probe, name) to list the defects that appeared
or disappeared. Probes of A that did not run to the end in B (failed, partial, skipped or missing) are listed
as gaps: a gate on them fails rather than passing on missing evidence.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lmcritic import stats
from lmcritic.probes.base import Estimate

PASS_RATE = "pass_rate"
# Rates per unit of time (tokens_per_s, requests_per_second) are throughputs: higher is better, although the
# name ends like a duration. Checked before the lower-is-better rules, whose ``_s$`` would read them as seconds.
_RATE = re.compile(r"(_per_s|_per_sec|_per_second|throughput)($|_)")
_LOWER = re.compile(r"(nll|perplex|(^|_)ppl(_|$)|loss|error|ece|brier|latency|_ms$|seconds|_s$|surprisal|bits_per|"
                    r"toxic|leak|flip|attack_success|success_rate|(^|_)ter$|gap|disparity|bias|memor|harm|"
                    r"refusal_fail|disagree)")
_HIGHER = re.compile(r"(pass_rate|correct|accura|f1|bleu|chrf|rouge|cosine|recall|precision|exact|p_true|"
                     r"throughput|tokens_per|robust|consisten|agreement)")


@dataclass(frozen=True)
class MetricDelta:
    """B − A for one metric of one probe, with its test."""

    probe: str
    metric: str
    test: str  # mcnemar | paired-bootstrap | two-sample-bootstrap
    n_a: int
    n_b: int
    n_paired: int
    mean_a: float
    mean_b: float
    delta: Estimate  # mean B − mean A with a 95% CI
    p_value: float
    p_adjusted: float = float("nan")
    higher_is_better: bool | None = None
    n_mismatched: int = 0  # ids in both runs whose inputs differ: not paired
    n_unpaired: int = 0  # cases of either run left out of the pairs (n_a + n_b - 2 n_paired)

    @property
    def key(self) -> str:
        return f"{self.probe}:{self.metric}"

    @property
    def regression(self) -> float | None:
        """How much worse B is than A in the metric's own units (negative: better); None if direction unknown."""
        if self.higher_is_better is None:
            return None
        return -self.delta.value if self.higher_is_better else self.delta.value

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_adjusted < alpha


@dataclass(frozen=True)
class FindingChange:
    """A finding in either run: ``appeared`` (fails only in B), ``disappeared`` (failed only in A),
    ``persists`` (fails in both) or ``unchanged`` (fails in neither)."""

    probe: str
    name: str
    change: str
    verdict_a: str | None
    verdict_b: str | None
    severity_a: str | None
    severity_b: str | None
    estimate_a: Estimate | None
    estimate_b: Estimate | None


@dataclass(frozen=True)
class ProbeGap:
    """A probe of A that B did not finish: its status in B (``missing`` if B never ran it), why, and the
    metrics A has for it (what a gate on it would have compared)."""

    probe: str
    status_b: str
    reason_b: str | None
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    run_a: str
    run_b: str
    model_a: str
    model_b: str
    metrics: tuple[MetricDelta, ...]
    findings: tuple[FindingChange, ...]
    probes_only_a: tuple[str, ...] = ()
    probes_only_b: tuple[str, ...] = ()
    gaps: tuple[ProbeGap, ...] = ()

    def changed(self, alpha: float = 0.05) -> list[MetricDelta]:
        return [m for m in self.metrics if m.significant(alpha)]

    def select(self, spec: str) -> list[MetricDelta]:
        """Metrics named ``PROBE:METRIC`` or ``METRIC`` (that metric in every shared probe)."""
        probe, _, metric = spec.rpartition(":")
        return [m for m in self.metrics if m.metric == metric and (not probe or m.probe == probe)]


def compare_runs(store, run_a: str, run_b: str, n_boot: int = 5000, seed: int = 0) -> Comparison:
    """Compare run B against run A (A is the baseline) in one store."""
    a, b = store.resolve(run_a), store.resolve(run_b)
    keys_a, keys_b = _probe_keys(store, a), _probe_keys(store, b)
    shared = [k for k in keys_a if k in keys_b]
    deltas: list[MetricDelta] = []
    for key in shared:
        deltas += compare_records(key, store.records(a, key), store.records(b, key), n_boot=n_boot, seed=seed)
    adjusted = stats.benjamini_hochberg([d.p_value for d in deltas]) if deltas else []
    deltas = [_with(d, p_adjusted=p) for d, p in zip(deltas, adjusted)]
    return Comparison(a, b, _model(store, a), _model(store, b), tuple(deltas),
                      tuple(finding_changes(store.findings(a), store.findings(b))),
                      tuple(k for k in keys_a if k not in keys_b), tuple(k for k in keys_b if k not in keys_a),
                      tuple(_gaps(store, a, b, keys_a)))


def compare_records(probe: str, recs_a: Sequence, recs_b: Sequence, n_boot: int = 5000,
                    seed: int = 0) -> list[MetricDelta]:
    """One :class:`MetricDelta` per metric both record sets carry (p-values not yet corrected)."""
    out = []
    ids_a, ids_b = _input_ids(recs_a), _input_ids(recs_b)
    pa = {ids_a[r.case_id]: r.passed for r in recs_a if r.passed is not None}
    pb = {ids_b[r.case_id]: r.passed for r in recs_b if r.passed is not None}
    if pa and pb:
        out.append(_unpaired_counts(_binary(probe, pa, pb, n_boot, seed), pa, pb))
    for metric in _shared_scores(recs_a, recs_b):
        sa = {ids_a[r.case_id]: float(r.scores[metric]) for r in recs_a if _finite(r.scores.get(metric))}
        sb = {ids_b[r.case_id]: float(r.scores[metric]) for r in recs_b if _finite(r.scores.get(metric))}
        if sa and sb:
            out.append(_unpaired_counts(_continuous(probe, metric, sa, sb, n_boot, seed), sa, sb))
    return out


def _input_ids(records: Sequence) -> dict[str, tuple[str, str]]:
    """Each case's pairing key: (case id, hash of its stored input)."""
    from lmcritic._serde import stable_hash

    return {r.case_id: (r.case_id, stable_hash(r.input)[:16]) for r in records}


def _unpaired_counts(d: MetricDelta, a: dict, b: dict) -> MetricDelta:
    """How many cases did not pair: same id but another input (``n_mismatched``), and all left out."""
    ids_b = {cid for cid, _ in b}
    mismatched = sum(1 for key in a if key not in b and key[0] in ids_b)
    return _with(d, n_mismatched=mismatched, n_unpaired=len(a) + len(b) - 2 * d.n_paired)


def finding_changes(fa: Sequence, fb: Sequence) -> list[FindingChange]:
    by_a = {(f.probe, f.name): f for f in fa}
    by_b = {(f.probe, f.name): f for f in fb}
    out = []
    for key in [*by_a, *(k for k in by_b if k not in by_a)]:
        x, y = by_a.get(key), by_b.get(key)
        fail_a, fail_b = bool(x and x.verdict.value == "fail"), bool(y and y.verdict.value == "fail")
        change = {(False, True): "appeared", (True, False): "disappeared", (True, True): "persists"}.get(
            (fail_a, fail_b), "unchanged")
        out.append(FindingChange(key[0], key[1], change, x and x.verdict.value, y and y.verdict.value,
                                 x and x.severity.value, y and y.severity.value, x and x.estimate, y and y.estimate))
    order = {"appeared": 0, "disappeared": 1, "persists": 2, "unchanged": 3}
    return sorted(out, key=lambda c: order[c.change])


def higher_is_better(metric: str) -> bool | None:
    """Direction of a metric: the metrics registry if it knows the name, else the name's usual meaning."""
    from lmcritic.metrics import METRICS

    try:
        return METRICS.get(metric).higher_is_better
    except Exception:  # noqa: BLE001 - unknown names fall through to the name rules
        pass
    name = metric.lower()
    if _RATE.search(name):
        return True
    if _LOWER.search(name):
        return False
    return True if _HIGHER.search(name) else None


def two_sample_bootstrap(a: Sequence[float], b: Sequence[float], n_boot: int = 5000,
                         seed: int = 0) -> tuple[Estimate, float]:
    """Difference of means B − A of independent samples: percentile CI and a two-sided bootstrap p-value
    (both samples centred on their own mean to simulate no difference)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    boots = y[rng.integers(0, len(y), (n_boot, len(y)))].mean(1) - x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)
    obs = float(y.mean() - x.mean())
    lo, hi = np.quantile(boots, [0.025, 0.975])
    xc, yc = x - x.mean(), y - y.mean()
    null = yc[rng.integers(0, len(y), (n_boot, len(y)))].mean(1) - xc[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)
    p = max(float((np.abs(null) >= abs(obs) - 1e-12).mean()), 1.0 / n_boot)
    return Estimate(obs, len(x) + len(y), float(lo), float(hi), "two-sample bootstrap"), p


# -- helpers ---------------------------------------------------------------------------------------
def _binary(probe: str, pa: dict, pb: dict, n_boot: int, seed: int) -> MetricDelta:
    common = [c for c in pa if c in pb]
    mean_a, mean_b = float(np.mean(list(pa.values()))), float(np.mean(list(pb.values())))
    if len(common) >= 2:
        xa, xb = [bool(pa[c]) for c in common], [bool(pb[c]) for c in common]
        est, _ = stats.paired_bootstrap([float(v) for v in xa], [float(v) for v in xb], n_boot=n_boot, seed=seed)
        est = Estimate(est.value, est.n, est.ci_low, est.ci_high, "paired bootstrap")
        return MetricDelta(probe, PASS_RATE, "mcnemar", len(pa), len(pb), len(common), _mean(xa), _mean(xb), est,
                           stats.mcnemar(xa, xb), higher_is_better=True)
    est, p = two_sample_bootstrap([float(v) for v in pa.values()], [float(v) for v in pb.values()], n_boot, seed)
    return MetricDelta(probe, PASS_RATE, "two-sample-bootstrap", len(pa), len(pb), 0, mean_a, mean_b, est, p,
                       higher_is_better=True)


def _continuous(probe: str, metric: str, sa: dict, sb: dict, n_boot: int, seed: int) -> MetricDelta:
    common = [c for c in sa if c in sb]
    direction = higher_is_better(metric)
    if len(common) >= 2:
        xa, xb = [sa[c] for c in common], [sb[c] for c in common]
        est, p = stats.paired_bootstrap(xa, xb, n_boot=n_boot, seed=seed)
        if np.allclose(xa, xb, rtol=0, atol=1e-12):
            p = 1.0  # identical on every shared case: no evidence of change
        est = Estimate(est.value, est.n, est.ci_low, est.ci_high, "paired bootstrap")
        return MetricDelta(probe, metric, "paired-bootstrap", len(sa), len(sb), len(common), _mean(xa), _mean(xb),
                           est, p, higher_is_better=direction)
    est, p = two_sample_bootstrap(list(sa.values()), list(sb.values()), n_boot, seed)
    return MetricDelta(probe, metric, "two-sample-bootstrap", len(sa), len(sb), 0, _mean(list(sa.values())),
                       _mean(list(sb.values())), est, p, higher_is_better=direction)


def _shared_scores(recs_a: Sequence, recs_b: Sequence) -> list[str]:
    keys_a = {k for r in recs_a for k in r.scores}
    keys_b = {k for r in recs_b for k in r.scores}
    return sorted(keys_a & keys_b)


def _probe_keys(store, run_id: str) -> list[str]:
    """Probes with results to compare (``partial`` ones too: their scored cases are real)."""
    return [p.probe_key for p in store.probe_runs(run_id) if p.status in ("done", "partial")]


def _gaps(store, a: str, b: str, keys_a: list[str]) -> list[ProbeGap]:
    """Probes A finished that B did not (failed, partial, skipped, still running, or never run)."""
    runs_b = {p.probe_key: p for p in store.probe_runs(b)}
    out = []
    for key in keys_a:
        pb = runs_b.get(key)
        if pb is not None and pb.status == "done":
            continue
        recs = store.records(a, key)
        metrics = ([PASS_RATE] if any(r.passed is not None for r in recs) else []) + sorted(
            {k for r in recs for k in r.scores})
        out.append(ProbeGap(key, pb.status if pb else "missing", pb.reason if pb else None, tuple(metrics)))
    return out


def _model(store, run_id: str) -> str:
    info = store.get_run(run_id)
    return str((info.model or {}).get("name") or (info.spec.get("model") or {}).get("name", "?"))


def _with(d: MetricDelta, **kw) -> MetricDelta:
    from dataclasses import replace

    return replace(d, **kw)


def _mean(xs: Sequence) -> float:
    return float(np.mean([float(x) for x in xs])) if len(xs) else float("nan")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
