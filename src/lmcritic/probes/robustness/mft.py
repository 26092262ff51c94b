"""CheckList Minimum Functionality Tests: short templated sentences whose label is unambiguous
(vocabulary, intensifiers, negation, contrast). Accuracy per test with CIs; a test fails when its
failure rate exceeds the tolerated rate (one-sided binomial test, BH-corrected across tests)."""
from __future__ import annotations

import dataclasses
import itertools
import random
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Sequence

from lmcritic import stats
from lmcritic.backends.base import Backend
from lmcritic.findings import finding_name, make_finding, rate_severity
from lmcritic.perturb._resources import lexicon
from lmcritic.plots import to_details
from lmcritic.probes.base import Case, Finding, Probe, ProbeConfig, Record
from lmcritic.probes.robustness import _classify
from lmcritic.probes.robustness._suite import DEFAULT_TEMPLATE, bars, binomial_tail

_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class MFTConfig(ProbeConfig):
    n_per_test: int = 20  # sentences sampled per test from all template fillings
    tests: tuple[str, ...] | None = None  # None: every test in the template file
    template: str = DEFAULT_TEMPLATE
    label_words: tuple[str, ...] = (" negative", " positive")
    max_failure_rate: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_per_test <= 0:
            raise ValueError("n_per_test must be > 0")


class MinimumFunctionality(Probe):
    name = "robustness.mft"
    area = "robustness"
    requires = frozenset()
    chunk_size = 32
    Config = MFTConfig

    def labels(self) -> tuple[str, ...]:
        return _classify.LABELS

    def not_applicable(self, model: Backend) -> str | None:
        return _classify.not_applicable(model)

    def cases(self) -> Iterable[Case]:
        spec = lexicon("mft_templates")
        tests = self.config.tests or tuple(spec["tests"])
        for test in tests:
            if test not in spec["tests"]:
                raise ValueError(f"unknown MFT test {test!r}; known: {', '.join(spec['tests'])}")
            for i, (template, text) in enumerate(self._fill(test, spec)):
                yield Case(id=f"mft-{test}-{i}", input={"text": text, "template": template},
                           expected=spec["tests"][test]["label"],
                           tags={"source": "mft_templates", "line": i, "test": test, "template": template})

    def _fill(self, test: str, spec: dict[str, Any]) -> list[tuple[str, str]]:
        filled = []
        for template in spec["tests"][test]["templates"]:
            slots = _SLOT.findall(template)
            for values in itertools.product(*(spec["slots"][s] for s in slots)):
                filled.append((template, _SLOT.sub(_filler(values), template)))
        rng = random.Random(f"{self.config.seed}:{test}")
        return sorted(rng.sample(filled, min(self.config.n_per_test, len(filled))))

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        helper = _classify.sst2_helper(None, self.config.template, self.config.label_words)
        preds = _classify.predict(model, [c.input["text"] for c in cases], helper, [c.expected for c in cases])
        return [Record(c.id, c.input, {"p_positive": p.p_positive},
                       {"correct": float(p.label == c.expected), "p_true": p.p(c.expected)},
                       {**c.tags, "expected": c.expected}, passed=p.label == c.expected, text=c.input["text"],
                       target=c.expected, prediction=p.label, explain=replace(p.explain, span=c.input["text"]))
                for c, p in zip(cases, preds)]

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        by: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by[r.tags["test"]].append(r)
        tests = list(by)
        if not tests:
            return []
        thr = self.config.max_failure_rate
        fails = {t: stats.proportion([not r.passed for r in by[t]]) for t in tests}
        adjusted = stats.benjamini_hochberg([binomial_tail(sum(not r.passed for r in by[t]), len(by[t]), thr)
                                             for t in tests])
        findings = []
        for t, p_adj in zip(tests, adjusted):
            rate = fails[t]
            wrong = sorted((r for r in by[t] if not r.passed), key=lambda r: r.scores["p_true"])
            findings.append(make_finding(
                probe=self.name, name=finding_name("mft", t), failed=rate.value > thr,
                severity=rate_severity(rate.value, rate.ci_low, thr, p_adj < 0.05),
                summary=f"{t}: fails on {rate} of templated sentences (expected {by[t][0].tags['expected']}; "
                f"tolerated {thr:g}, BH p={p_adj:.3g})",
                estimate=rate, evidence=tuple(r.case_id for r in wrong[:10]),
                details={"test": t, "p_bh": p_adj, "examples_failed": [r.input["text"] for r in wrong[:3]]}))
        acc = [stats.proportion([bool(r.passed) for r in by[t]]) for t in tests]
        findings[0] = dataclasses.replace(findings[0], details={
            **findings[0].details,
            "plots": to_details(bars("Minimum-functionality accuracy per test (95% CI)", tests, acc))})
        return findings


def _filler(values: Iterable[str]) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement giving the slot values in order, one per match."""
    it = iter(values)
    return lambda _match: next(it)
