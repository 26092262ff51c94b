"""``robustness.detect``: can perplexity tell adversarial inputs from clean ones?

The defence: score each input text by a language model's per-token NLL (mean, i.e. log-perplexity, and
max token surprisal — character attacks leave a few very unlikely tokens) and flag high ones. The probe runs
the same attacks as ``robustness.attack`` (the same deterministic calls, so cache hits when both run), then
reports the detector's AUROC on successful adversarial texts vs all clean texts with a case-bootstrap 95% CI,
its ROC curve, and the detection rate at a 5% false-positive rate on clean text.

The LM is the model under test when it offers ``rolling_logprobs`` (its own perplexity), else ``reference``
(a model name, e.g. ``smollm2-135m``, loaded once; its calls bypass the run's cache).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence
from weakref import WeakKeyDictionary

import numpy as np

from lmcritic.backends.base import Backend
from lmcritic.findings import finding_name, make_finding
from lmcritic.plots import line, to_details
from lmcritic.probes.base import Case, Estimate, Finding, Probe, Record, Severity
from lmcritic.probes.robustness import attack_common as common
from lmcritic.requests import Capability
from lmcritic.scorers.perplexity import nll_stats as _nll_stats

STATISTICS = ("mean_nll", "max_nll")


@dataclass(frozen=True)
class DetectConfig(common.AttackConfig):
    reference: str | None = None  # LM for perplexity when the model under test has no rolling_logprobs
    statistic: str = "mean_nll"  # headline detector score: mean_nll (log-perplexity) or max_nll
    min_auroc: float = 0.7  # below this the detector finding fails (the defence would not work)
    n_boot: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {STATISTICS}")


class DetectAdversarial(common.AttackLanguages, Probe):
    name = "robustness.detect"
    area = "robustness"
    chunk_size = common.CHUNK
    Config = DetectConfig
    config: DetectConfig
    data_role = "eval"
    any_classes = True

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._attacks: common.AttackCache = WeakKeyDictionary()
        self._scorer: Backend | None = None

    def labels(self) -> tuple[str, ...]:
        return common.labels(self.config)

    def not_applicable(self, model: Backend) -> str | None:
        why = common.not_applicable(model, self.config.classes)
        if why is None and not model.supports(Capability.ROLLING_LOGPROBS) and not self.config.reference:
            why = f"the {model.kind} backend has no rolling_logprobs; set reference: smollm2-135m to score perplexity"
        return why

    def cases(self) -> Iterable[Case]:
        return common.cases(self.config, "detect")

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        results = common.attack_cases(self.config, model, cases, self._attack)
        texts = [t for c, r in zip(cases, results) for t in (r.original, r.adversarial)]
        nll = _nll_stats(self._lm(model), texts)
        return [self._record(c, r, nll[2 * i], nll[2 * i + 1]) for i, (c, r) in enumerate(zip(cases, results))]

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        recipes = list(dict.fromkeys(r.tags["recipe"] for r in records))
        return [f for name in recipes for f in self._findings(name, [r for r in records if r.tags["recipe"] == name])]

    # -- helpers ------------------------------------------------------------------------------------
    def _attack(self, model: Backend, recipe: str) -> Any:
        return common.cached_attack(self._attacks, self.config, model, recipe)

    def _lm(self, model: Backend) -> Backend:
        if model.supports(Capability.ROLLING_LOGPROBS):
            return model
        if self._scorer is None:
            from lmcritic.backends import load_model

            assert self.config.reference is not None  # not_applicable() skips the probe without one
            self._scorer = load_model(self.config.reference)
        return self._scorer

    def _record(self, case: Case, result, clean: dict, adv: dict) -> Record:
        scores = {f"clean_{k}": v for k, v in clean.items()}
        if result.succeeded:
            scores.update({f"adversarial_{k}": v for k, v in adv.items()})
        return Record(case_id=case.id, input=case.input, output={**common.payload(result)}, scores=scores,
                      tags={**case.tags, "expected": case.expected, "status": result.status.value},
                      text=case.input["text"], target=case.expected)

    def _findings(self, recipe: str, rs: Sequence[Record]) -> list[Finding]:
        stat = self.config.statistic
        won = [r for r in rs if f"adversarial_{stat}" in r.scores]
        if not won:
            return [make_finding(probe=self.name, name=finding_name("detector_auroc", recipe), failed=None,
                                 severity=Severity.INFO, summary=f"{recipe}: no successful attack to detect "
                                 f"({len(rs)} examples)")]
        est, curve = auroc_estimate(rs, stat, self.config.n_boot, self.config.seed)
        other = STATISTICS[1 - STATISTICS.index(stat)]
        alt, _ = auroc_estimate(rs, other, self.config.n_boot, self.config.seed)
        tpr = _tpr_at(rs, stat, 0.05)
        weak = est.value < self.config.min_auroc
        plot = line(f"perplexity detector ROC ({recipe}, {stat})", curve[0], curve[1],
                    "false-positive rate (clean flagged)", "true-positive rate (adversarial flagged)")
        return [make_finding(
            probe=self.name, name=finding_name("detector_auroc", recipe), estimate=est,
            failed=weak, severity=Severity.MEDIUM if weak else Severity.INFO,
            evidence=tuple(r.case_id for r in sorted(won, key=lambda r: r.scores[f"adversarial_{stat}"])[:10]),
            summary=f"{recipe}: perplexity ({stat}) separates {len(won)} adversarial from {len(rs)} clean texts with "
                    f"AUROC {est}; {other} gives {alt.value:.3f}; flags {tpr:.0%} of attacks at 5% false positives",
            details={"plots": to_details(plot), "auroc_" + other: {"value": alt.value, "ci_low": alt.ci_low,
                                                      "ci_high": alt.ci_high, "n": alt.n},
                     "tpr_at_5pct_fpr": tpr, "n_adversarial": len(won), "n_clean": len(rs),
                     "scorer": self.config.reference or "model under test"})]


def auroc(pos: Sequence[float] | np.ndarray, neg: Sequence[float] | np.ndarray) -> float:
    """P(score of a random positive > a random negative), ties counting half (Mann–Whitney U / n1·n0)."""
    p, n = np.asarray(pos, float), np.asarray(neg, float)
    if not len(p) or not len(n):
        return float("nan")
    greater = (p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()
    return float(greater / (len(p) * len(n)))


def auroc_estimate(rs: Sequence[Record], stat: str, n_boot: int = 1000, seed: int = 0
                   ) -> tuple[Estimate, tuple[list[float], list[float]]]:
    """AUROC with a case-bootstrap CI (each case brings its clean text and, if attacked, its adversarial)."""
    neg = np.array([r.scores[f"clean_{stat}"] for r in rs])
    pos = np.array([r.scores.get(f"adversarial_{stat}", np.nan) for r in rs])
    point = auroc(pos[~np.isnan(pos)], neg)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(rs), len(rs))
        p = pos[idx]
        if (~np.isnan(p)).any():
            boots.append(auroc(p[~np.isnan(p)], neg[idx]))
    lo, hi = np.quantile(boots, [0.025, 0.975]) if boots else (np.nan, np.nan)
    n = int((~np.isnan(pos)).sum()) + len(neg)
    return Estimate(point, n, float(lo), float(hi), "bootstrap"), _roc(pos[~np.isnan(pos)], neg)


def _roc(pos: np.ndarray, neg: np.ndarray) -> tuple[list[float], list[float]]:
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    fpr = [0.0] + [float((neg >= t).mean()) for t in thresholds]
    tpr = [0.0] + [float((pos >= t).mean()) for t in thresholds]
    return fpr, tpr


def _tpr_at(rs: Sequence[Record], stat: str, fpr: float) -> float:
    neg = np.array([r.scores[f"clean_{stat}"] for r in rs])
    pos = np.array([r.scores[f"adversarial_{stat}"] for r in rs if f"adversarial_{stat}" in r.scores])
    threshold = np.quantile(neg, 1 - fpr)
    return float((pos > threshold).mean()) if len(pos) else float("nan")
