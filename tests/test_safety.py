"""Safety probes end to end: runner + store on the tiny model, and known-answer models (plain Python
callables through the python backend) whose toxicity, refusals and PII the probes must measure."""
from __future__ import annotations

import pytest

from lmcritic.backends.python import PythonBackend
from lmcritic.mitigate.output_filter import OutputFilterBackend
from lmcritic.probes.safety.pii import PIIElicitation
from lmcritic.probes.safety.refusal import Refusal
from lmcritic.probes.safety.toxicity import Toxicity
from lmcritic.requests import Capability
from lmcritic.runner import Runner
from lmcritic.spec import RunSpec


def _run(probe, model):
    cases = list(probe.cases())
    records = [r for i in range(0, len(cases), probe.chunk_size)
               for r in probe.score(model, cases[i:i + probe.chunk_size])]
    return records, {f.name: f for f in probe.summarize(records)}


def rude(prompt: str) -> str:
    return "shut up you stupid fucking idiot. Email me at jane.doe@example.com or call 555-867-5309."


def polite(prompt: str) -> str:
    return "That is an interesting thought; I would rather talk about gardening."


def refuser(messages) -> str:
    return "I'm sorry, but I can't help with that."


def helper(messages) -> str:
    return "Sure, here is what you asked for: first, start with the basics."


def test_toxicity_probe_measures_known_models() -> None:
    probe = Toxicity(n_per_source=3, k=2, max_new_tokens=8)
    recs, bad = _run(probe, PythonBackend(rude))
    assert len(recs) == 9 and all(len(r.output["samples"]) == 2 and len(r.output["sample_scores"]) == 2 for r in recs)
    rate = bad["toxicity_probability"]
    assert rate.estimate.value == 1.0 and rate.verdict.value == "fail" and rate.details["content_warning"] is True
    assert rate.details["worst_examples"][0]["text"].startswith("shut up")
    assert bad["expected_max_toxicity"].estimate.value > 0.9
    _, good = _run(probe, PythonBackend(polite))
    assert good["toxicity_probability"].estimate.value == 0.0 and not good["toxicity_probability"].details[
        "content_warning"]
    assert good["expected_max_toxicity"].estimate.ci_high < 0.5
    assert {r.tags["source"] for r in recs} == {"bold", "honest", "provocative"}


def test_output_filter_lowers_toxicity_and_pii_rates() -> None:
    inner = PythonBackend(rude)
    wrapped = OutputFilterBackend(inner)
    assert wrapped.capabilities == inner.capabilities and wrapped.fingerprint() != inner.fingerprint()
    tox = Toxicity(n_per_source=3, k=1, max_new_tokens=8)
    pii = PIIElicitation(n=6)
    before = {**_run(tox, inner)[1], **_run(pii, inner)[1]}
    after = {**_run(tox, wrapped)[1], **_run(pii, wrapped)[1]}
    assert before["toxicity_probability"].estimate.value == 1.0 > after["toxicity_probability"].estimate.value
    assert before["pii_elicitation"].estimate.value == 1.0 and after["pii_elicitation"].estimate.value == 0.0
    assert "[EMAIL]" in wrapped.generate([__import__("lmcritic.requests").requests.GenerateRequest(prompt="x")])[0].text


def test_refusal_probe_rates_and_categories() -> None:
    probe = Refusal(n_per_kind=16)
    recs, refusing = _run(probe, PythonBackend(refuser, chat=True))
    assert len(recs) == 32 and {r.tags["kind"] for r in recs} == {"harmful", "benign"}
    assert refusing["harmful_compliance"].estimate.value == 0.0
    over = refusing["over_refusal"]
    assert over.estimate.value == 1.0 and over.verdict.value == "fail" and over.details["categories_above_allowed"]
    _, helping = _run(probe, PythonBackend(helper, chat=True))
    hc = helping["harmful_compliance"]
    assert hc.estimate.value == 1.0 and hc.details["content_warning"] and hc.estimate.ci_low > 0.7
    assert helping["over_refusal"].estimate.value == 0.0
    assert probe.not_applicable(PythonBackend(helper)) is not None  # not a chat model


def test_pii_probe_ignores_pii_echoed_from_prompt() -> None:
    probe = PIIElicitation(n=25)
    recs, _ = _run(probe, PythonBackend(lambda p: p))  # a parrot: everything it says was in the prompt
    assert all(r.scores["pii"] == 0 for r in recs)


@pytest.mark.parametrize("name", ["safety.toxicity", "safety.pii", "safety.memorization", "safety.refusal"])
def test_runner_stores_safety_records(tmp_path, tiny_causal_dir, tiny_causal, name) -> None:
    small = {"safety.toxicity": {"n_per_source": 2, "k": 2, "max_new_tokens": 6},
             "safety.pii": {"n": 4, "max_new_tokens": 6},
             "safety.memorization": {"n_extract": 3, "n_membership": 6, "max_new_tokens": 6,
                                     "canaries": [{"prefix": "my pin is", "secret": "1 2 3 4"}], "n_candidates": 50},
             "safety.refusal": {"n_per_kind": 4, "max_new_tokens": 6}}
    spec = RunSpec.from_dict({"model": {"name": str(tiny_causal_dir)},
                              "probes": [{"name": name, "config": small[name]}]})
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(spec, model=tiny_causal)
    assert out.status == "done"
    records = runner.store.records(out.run_id, name)
    findings = runner.store.findings(out.run_id)
    assert records and findings and all(f.estimate is None or f.estimate.n > 0 for f in findings)
    assert all(f.estimate.ci_low - 1e-9 <= f.estimate.value <= f.estimate.ci_high + 1e-9
               for f in findings if f.estimate)
    assert all("source" in r.tags and "line" in r.tags for r in records)
    assert Capability.CHAT in tiny_causal.capabilities
