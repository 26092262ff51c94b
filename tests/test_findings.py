"""The one finding policy: names, verdicts, the severity table, and old names read in the current scheme."""
from __future__ import annotations

import math

import pytest

from lmcritic.findings import (
    SEVERITY_SCALES,
    canonical_name,
    finding_name,
    grade,
    make_finding,
    rate_severity,
    shortfall,
    verdict,
)
from lmcritic.probes.base import Estimate, Severity, Verdict


@pytest.mark.parametrize(("effect", "scale", "want"), [
    (0.0, "shortfall", Severity.INFO), (-0.3, "shortfall", Severity.INFO), (0.01, "shortfall", Severity.LOW),
    (0.1, "shortfall", Severity.MEDIUM), (0.25, "shortfall", Severity.HIGH), (math.nan, "shortfall", Severity.LOW),
    (0.05, "attack", Severity.INFO), (0.06, "attack", Severity.LOW), (0.3, "attack", Severity.HIGH),
    (0.03, "bias", Severity.LOW), (-0.2, "bias", Severity.HIGH), (0.02, "bias", Severity.INFO),
    (math.nan, "bias", Severity.INFO), (0.05, "excess", Severity.MEDIUM),
])
def test_severity_table(effect: float, scale: str, want: Severity) -> None:
    assert grade(effect, scale) is want


def test_every_scale_is_ordered() -> None:
    assert all(0 <= s.low <= s.medium <= s.high for s in SEVERITY_SCALES.values())


def test_rate_severity_needs_significance_for_more_than_low() -> None:
    assert rate_severity(0.05, 0.0, 0.1, True) is Severity.INFO
    assert rate_severity(0.3, 0.05, 0.1, False) is Severity.LOW
    assert rate_severity(0.3, 0.15, 0.1, True) is Severity.MEDIUM
    assert rate_severity(0.5, 0.3, 0.1, True) is Severity.HIGH


def test_verdict_shortfall_and_factory() -> None:
    assert [verdict(x) for x in (True, False, None)] == [Verdict.FAIL, Verdict.PASS, Verdict.NOT_APPLICABLE]
    assert shortfall(0.7, 0.8) == pytest.approx(0.1) and shortfall(0.7, 0.8, higher_is_better=False) < 0
    assert shortfall(0.7, None) == 0.0
    est = Estimate(0.7, 10, 0.4, 0.9, "wilson")
    f = make_finding("performance.sst2", finding_name("accuracy", "clean"), failed=True, effect=0.1,
                     summary="s", estimate=est, evidence=["a", "b"])
    assert (f.name, f.verdict, f.severity, f.evidence, f.details) == ("accuracy/clean", Verdict.FAIL,
                                                                      Severity.MEDIUM, ("a", "b"), {})
    assert make_finding("p", "n", failed=None, summary="s").severity is Severity.INFO
    assert make_finding("p", "n", failed=True, effect=0.5, severity=Severity.LOW, summary="s").severity is Severity.LOW


@pytest.mark.parametrize(("old", "new"), [
    ("invariance:casing", "invariance/casing"), ("mft:negation", "mft/negation"),
    ("directional:add_positive", "directional/add_positive"),
    ("faithfulness.grad_x_input", "faithfulness/grad_x_input"),
    ("canary_exposure_0", "canary_exposure/0"), ("membership_inference_loss", "membership_inference/loss"),
    ("latency_score", "latency/score"), ("throughput_generate", "throughput/generate"),
    ("D2: mc_knowledge [identity_term=no & perplexity=low]", "D2/mc_knowledge/identity_term=no & perplexity=low"),
])
def test_old_names_read_in_the_current_scheme(old: str, new: str) -> None:
    assert canonical_name(old) == new and canonical_name(new) == new


@pytest.mark.parametrize("name", ["accuracy", "label_skew/race_ethnicity", "accuracy_by_category",
                                  "token_perplexity", "stereotype_score/gender", "memory", "latency_ms"])
def test_current_names_are_left_alone(name: str) -> None:
    assert canonical_name(name) == name


@pytest.mark.parametrize(("ci", "expected"), [((0.25, 0.4), "high"), ((0.2, 0.3), "high"), ((0.1, 0.3), "medium"),
                                              ((0.05, 0.3), "low"), ((-0.4, -0.15), "medium"), ((-0.1, 0.2), "low")])
def test_a_supported_cause_is_graded_on_the_one_severity_table(ci: tuple[float, float], expected: str) -> None:
    from lmcritic.diagnose.calibrate import severity
    from lmcritic.findings import SEVERITY_SCALES

    assert severity(Estimate(sum(ci) / 2, 40, *ci, "bootstrap")) == expected
    assert (SEVERITY_SCALES["cause"].medium, SEVERITY_SCALES["cause"].high) == (0.10, 0.20)
