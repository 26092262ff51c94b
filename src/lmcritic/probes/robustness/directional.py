"""CheckList DIRectional expectation tests: negating a sentence should lower the model's confidence in
its original label; appending "I loved it." should not lower p(positive), "I hated it." should not raise
it (CheckList's monotonic expectation with tolerance 0.1). Failure rate per test with CI, BH-corrected."""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from lmcritic import stats
from lmcritic._serde import to_jsonable
from lmcritic.findings import finding_name, make_finding, rate_severity
from lmcritic.perturb import perturbation
from lmcritic.plots import to_details
from lmcritic.probes.base import Estimate, Finding, Record
from lmcritic.probes.robustness._suite import PairedSuite, SuiteConfig, Variant, bars, binomial_tail

if TYPE_CHECKING:
    import random
    from typing import Callable

TESTS = ("negation", "add_positive", "add_negative")


@dataclass(frozen=True)
class DirectionalConfig(SuiteConfig):
    tests: tuple[str, ...] = TESTS
    tolerance: float = 0.1  # add_phrase: p(positive) may move the wrong way by this much
    max_failure_rate: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.classes:
            raise ValueError("directional tests are sentiment tests (negation, added positive/negative phrases): "
                             "classes cannot be set")
        unknown = set(self.tests) - set(TESTS)
        if unknown:
            raise ValueError(f"unknown directional tests {sorted(unknown)}; known: {', '.join(TESTS)}")


class Directional(PairedSuite):
    name = "robustness.directional"
    Config = DirectionalConfig
    any_classes = False  # negation and added positive/negative phrases: sentiment tests

    def variants(self, text: str, rng_for: Callable[[str], random.Random]) -> list[Variant]:
        out = []
        for name in self.config.tests:
            done = perturbation(name)(text, rng_for(name))
            if done is not None:
                out.append(Variant(name, done[0], done[1], text))
        return out

    def score(self, model, cases):
        return [self._judge(r) for r in super().score(model, cases)]

    def _judge(self, r: Record) -> Record:
        """passed = the prediction moved in the expected direction (the expectation is stored with it)."""
        kind, tol = r.tags["perturbation"], self.config.tolerance
        if kind == "negation":
            ok, expect = r.scores["delta_p_true"] < 0, "p(original label) decreases"
        elif kind == "add_positive":
            ok, expect = r.scores["delta_p_positive"] >= -tol, f"p(positive) does not fall by more than {tol}"
        else:
            ok, expect = r.scores["delta_p_positive"] <= tol, f"p(positive) does not rise by more than {tol}"
        return dataclasses.replace(r, output={**r.output, "expectation": expect}, passed=ok)

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        by: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by[r.tags["perturbation"]].append(r)
        if not by:
            return []
        tests = [t for t in self.config.tests if by.get(t)]
        rates = {t: stats.proportion([not r.passed for r in by[t]]) for t in tests}
        pvals = [binomial_tail(sum(not r.passed for r in by[t]), len(by[t]), self.config.max_failure_rate)
                 for t in tests]
        adjusted = dict(zip(tests, stats.benjamini_hochberg(pvals)))
        findings = [self._finding(t, rates[t], adjusted[t], by[t]) for t in tests]
        if findings:
            plot = bars("Directional failure rate (95% CI)", tests, [rates[t] for t in tests])
            findings[0] = dataclasses.replace(findings[0], details={**findings[0].details, "plots": to_details(plot)})
        return findings

    def _finding(self, test: str, rate: Estimate, p_adj: float, recs: list[Record]) -> Finding:
        failed = sorted((r for r in recs if not r.passed), key=lambda r: -abs(r.scores["delta_p_positive"]))
        thr = self.config.max_failure_rate
        mean_shift = stats.mean([r.scores["delta_p_true"] for r in recs])
        return make_finding(
            probe=self.name, name=finding_name("directional", test), failed=rate.value > thr,
            severity=rate_severity(rate.value, rate.ci_low, thr, p_adj < 0.05),
            summary=f"{test}: expectation ({recs[0].output['expectation']}) fails on {rate} of sentences "
            f"(tolerated {thr:g}, BH p={p_adj:.3g}); mean change of p(true label) {mean_shift.value:+.3f}",
            estimate=rate, evidence=tuple(r.case_id for r in failed[:10]),
            details={"test": test, "p_bh": p_adj, "mean_delta_p_true": to_jsonable(mean_shift)},
        )
