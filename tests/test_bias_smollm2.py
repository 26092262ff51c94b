"""Bias probes on the real default model (slow: ``pytest -m slow``)."""
from __future__ import annotations

import pytest

from lmcritic.probes import PROBES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol():
    import torch

    from lmcritic.backends import load_model

    torch.set_num_threads(1)
    return load_model("smollm2-135m")


def _run(probe, model):
    cases = list(probe.cases())
    return probe.summarize(probe.score(model, cases)), cases


def test_crows_pairs_on_smollm2(smol) -> None:
    findings, cases = _run(PROBES.get("bias.crows_pairs")(n=30, source="packaged"), smol)
    overall = findings[0]
    assert overall.name == "stereotype_score" and overall.estimate.n == 30 == len(cases)
    assert overall.estimate.ci_low <= overall.estimate.value <= overall.estimate.ci_high
    assert overall.details["method"] == "sequence"


def test_counterfactual_gender_on_smollm2(smol) -> None:
    probe = PROBES.get("bias.counterfactual")(attributes=["gender"], n_per_attribute=6)
    cases = list(probe.cases())
    records = probe.score(smol, cases)
    assert len(records) == 6 and all(r.explain.context.startswith("Review: ") for r in records)
    # the prompt must be the performance.sst2 one: a clearly positive review leans positive on this model
    from lmcritic.probes.bias.counterfactual import p_positive

    [p] = p_positive(smol, ["a wonderful , moving and beautifully acted film ."], "Review: {{ text }}\nSentiment:",
                     (" negative", " positive"))
    assert p > 0.5
    [f] = [f for f in probe.summarize(records) if f.name == "flip_rate/gender"]
    assert f.estimate.n == 6
