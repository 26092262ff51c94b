"""Diagnosis: slice search against brute force, effect sizes, and end to end on rule models with one
planted cause each (trigger token, identity term with a skewed training corpus, a skewed prior)."""
from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from _diagnose_models import RuleSentiment
from lmcritic.backends import ModelSpec
from lmcritic.datasets import packaged, read_rows
from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run
from lmcritic.diagnose.features import FeatureTable
from lmcritic.diagnose.slices import SliceSearch, fisher_greater, risk_difference, risk_ratio, slice_stats
from lmcritic.diagnose.storage import load_graph
from lmcritic.errors import ConfigError
from lmcritic.runner import Runner
from lmcritic.spec import ProbeSpec, RunSpec

FAST = DiagnoseConfig(neighbours=0, max_cases=16)


# -- slices -----------------------------------------------------------------------------------------
def _table(seed: int = 0, n: int = 400):
    rng = np.random.default_rng(seed)
    cols = {f: rng.integers(0, 3, n).astype(str) for f in "abcd"}
    err = rng.random(n) < 0.1
    planted = (cols["a"] == "1") & (cols["b"] == "2")
    err |= planted & (rng.random(n) < 0.7)
    table = FeatureTable(tuple(f"c{i}" for i in range(n)), {k: tuple(v) for k, v in cols.items()})
    return table, err


def test_slice_search_finds_the_planted_conjunction_and_matches_brute_force():
    table, err = _table()
    search = SliceSearch(k=5, max_level=2, min_size=8)
    top = search.run(table, err)
    assert top[0].predicates == (("a", "1"), ("b", "2"))
    assert top[0].significant and top[0].rr_ci[0] > 1
    # exact: the best score over every slice of up to two predicates is the one found
    from lmcritic.diagnose.slices import _Ctx

    ctx = _Ctx(err, len(err), err.mean(), search.alpha, search.min_size)
    best = -np.inf
    preds = [(f, v) for f, vals in table.columns.items() for v in set(vals)]
    for combo in [*((p,) for p in preds), *itertools.combinations(preds, 2)]:
        if len({f for f, _ in combo}) < len(combo):
            continue
        mask = np.ones(len(err), bool)
        for f, v in combo:
            mask &= np.asarray(table.columns[f]) == v
        if mask.sum() >= search.min_size:
            best = max(best, ctx.score(mask))
    assert top[0].score == pytest.approx(best)


def test_slice_search_reports_nothing_without_signal():
    rng = np.random.default_rng(1)
    table = FeatureTable(tuple(range(300)), {"a": tuple(rng.integers(0, 2, 300).astype(str))})
    found = SliceSearch().run(table, rng.random(300) < 0.2)
    assert not any(s.significant for s in found)


def test_effect_sizes_and_fisher():
    from scipy.stats import fisher_exact

    assert fisher_greater(8, 2, 3, 7) == pytest.approx(fisher_exact([[8, 2], [3, 7]], alternative="greater")[1])
    rr, (lo, hi) = risk_ratio(8, 10, 3, 10)
    assert rr == pytest.approx((8 / 10) / (3 / 10)) and lo < rr < hi
    rd, (lo, hi) = risk_difference(8, 10, 3, 10)
    assert rd == pytest.approx(0.5) and lo < rd < hi and -1 <= lo and hi <= 1
    s = slice_stats((("x", "1"),), np.array([1, 1, 0, 0], bool), np.array([1, 1, 0, 1], bool))
    assert s.errors == 2 and s.size == 2 and s.rest_error_rate == 0.5


def test_a_band_of_one_case_cannot_go_below_the_base_failure_rate():
    from lmcritic.diagnose.slices import slice_min_p

    err = np.zeros(100, bool)
    err[:18] = True  # 18% fail
    one = np.zeros(100, bool)
    one[0] = True  # a band of one failing case: Fisher p = 0.18 is also its smallest possible p
    assert slice_min_p(one, err) == pytest.approx(0.18) == pytest.approx(slice_stats((("f", "v"),), one, err).p_value)
    band = np.zeros(100, bool)
    band[10:40] = True  # 8 of 30 fail: could have been 18 of 30
    assert slice_min_p(band, err) < 1e-6 < slice_stats((("f", "v"),), band, err).p_value


# -- end to end on planted rule models ----------------------------------------------------------------
def _sentences() -> list[tuple[str, int]]:
    return [(row["sentence"], int(row["label"])) for _, row in read_rows(packaged("sst2_dev_sample.tsv"), ("label",))]


def _write(rows, path: Path) -> Path:
    path.write_text("sentence\tlabel\tdev_line\n" + "".join(f"{t}\t{y}\t{i + 2}\n" for i, (t, y) in enumerate(rows)))
    return path


def _run(tmp_path: Path, model, rows, key: str = "performance.sst2"):
    data = _write(rows, tmp_path / "eval.tsv")
    spec = RunSpec(model=ModelSpec("tests._diagnose_models:RuleSentiment", "python"), name="planted",
                   probes=(ProbeSpec("performance.sst2", {"data": str(data), "n": None}, key),))
    runner = Runner(store_path=tmp_path / "runs.sqlite", cache_path=tmp_path / "cache.sqlite", progress=False)
    return runner, runner.run(spec, model=model).run_id


def _insert(text: str, token: str, rng: random.Random) -> str:
    words = text.split()
    words.insert(rng.randrange(len(words) + 1), token)
    return " ".join(words)


def test_trigger_token_is_diagnosed_as_spurious_feature(tmp_path):
    rng = random.Random(0)
    rows = [(_insert(t, "cf", rng), y) if i % 2 else (t, y) for i, (t, y) in enumerate(_sentences()[:200])]
    runner, run_id = _run(tmp_path, RuleSentiment({"cf": 4.0}), rows)
    graph = diagnose_run(runner.store, run_id, RuleSentiment({"cf": 4.0}), config=FAST)
    node = graph.defects[0]
    assert node.top.cause == "spurious_feature" and node.top.verdict == "supported" and node.top.q_value < 0.05
    assert (node.top.culprit.kind, node.top.culprit.value, node.top.culprit.label) == ("token", "cf", "positive")
    test = next(e for e in node.top.evidence if e.kind == "test")
    assert test.estimate.ci_low > 0.15 and test.case_ids  # deleting it beats deleting another word, case by case
    assert graph.ranking[0].cause == "spurious_feature"
    # stored: the tests' records, the findings, and the graph reads back identical
    stored = runner.store.records(run_id, "diagnose.spurious_feature")
    assert stored and all("of_case" in r.tags for r in stored)
    assert load_graph(runner.store, run_id).to_dict()["defects"] == graph.to_dict()["defects"]
    assert any(f.probe == "diagnose" for f in runner.store.findings(run_id))
    # the CLI prints the stored graph as JSON
    out = subprocess.run([sys.executable, "-m", "lmcritic.cli.main", "diagnose", run_id, "--stored", "--format",
                          "json", "--store", str(tmp_path / "runs.sqlite")], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["defects"][0]["defect"]["id"] == "D1"
    # --stored with an option that would change the diagnosis is an error, not a silently ignored option
    bad = subprocess.run([sys.executable, "-m", "lmcritic.cli.main", "diagnose", run_id, "--stored", "--probe", "x",
                          "--store", str(tmp_path / "runs.sqlite")], capture_output=True, text=True)
    assert bad.returncode == 2 and "--probe would change it" in bad.stderr and "Traceback" not in bad.stderr
    # a misspelt --probe is an error naming the probe, not an empty diagnosis stored over this one (exit 0)
    key = runner.store.probe_runs(run_id, kind="probe")[0].probe_key
    with pytest.raises(ConfigError, match=f"no probe '{key}x'; did you mean '{key}'"):
        diagnose_run(runner.store, run_id, RuleSentiment({"cf": 4.0}), config=replace(FAST, probes=(key + "x",)))
    assert load_graph(runner.store, run_id).to_dict()["defects"] == graph.to_dict()["defects"]


def test_a_spent_budget_is_said_not_printed_as_nan(tmp_path):
    """With nothing re-scored the spurious-feature line read "deleting it fixes nan [0, 1] (n=0) vs nan [0, 1]
    (n=0) for another word" (seen on a planted model's second probe after the budget ran out)."""
    rng = random.Random(0)
    rows = [(_insert(t, "cf", rng), y) if i % 2 else (t, y) for i, (t, y) in enumerate(_sentences()[:200])]
    runner, run_id = _run(tmp_path, RuleSentiment({"cf": 4.0}), rows)
    graph = diagnose_run(runner.store, run_id, RuleSentiment({"cf": 4.0}), config=replace(FAST, max_queries=0),
                         save=False)
    lines = [c.summary for n in graph.defects for c in n.causes if c.cause == "spurious_feature"]
    assert lines and all("nan" not in s for s in lines) and any("budget was spent" in s for s in lines)


def test_identity_term_in_natural_inputs_is_data_bias(tmp_path):
    sents = _sentences()
    rows = [(f"women say {t}", y) if i % 2 else (t, y) for i, (t, y) in enumerate(sents[:200])]
    model = RuleSentiment({"women": -4.0})
    runner, run_id = _run(tmp_path, model, rows)
    graph = diagnose_run(runner.store, run_id, model, config=FAST)
    node = next(n for n in graph.defects if any(c.cause == "data_bias" and c.verdict == "supported" for c in n.causes))
    bias = next(c for c in node.causes if c.cause == "data_bias")
    assert (bias.culprit.kind, bias.culprit.value, bias.culprit.attribute) == ("identity_group", "female", "gender")
    assert bias.culprit.label == "negative" and "women" in bias.culprit.terms
    assert bias.effect.ci_low > 0.05  # swapping 'women' away lowers p(negative) on the same sentences
    assert not any(f == "tag.expected" for f, _ in node.defect.predicates)


def _rare_women(rows):
    """Six positive sentences say 'women', fifty say 'men': the group the model leans on is the rarer one."""
    return [(f"women say {t}", y) if i % 50 == 1 and y == 1 else (f"men say {t}", y) if i % 4 == 2 else (t, y)
            for i, (t, y) in enumerate(rows)]


@pytest.mark.parametrize("weights", [{"women": -4.0}, {}])
def test_data_bias_on_natural_inputs_tests_the_over_represented_group_both_ways(tmp_path, weights):
    """Male terms are in more failures (they are in more sentences), female terms are over-represented among them.
    The swap test picks female by enrichment, and swaps both ways (female out of its few sentences, into the
    sentences naming men), so six sentences are enough. A model without the weight: nothing supported."""
    model = RuleSentiment(weights)
    runner, run_id = _run(tmp_path, model, _rare_women(_sentences()[:200]))
    graph = diagnose_run(runner.store, run_id, model, config=FAST)
    bias = [c for n in graph.defects for c in n.causes if c.cause == "data_bias"]
    if not weights:
        assert bias and not any(c.verdict == "supported" for c in bias)
        return
    top = next(c for c in bias if c.verdict == "supported")
    assert (top.culprit.value, top.culprit.attribute, top.culprit.label) == ("female", "gender", "negative")
    assert top.effect.ci_low > 0.05 and top.effect.n >= 20  # swapped into sentences that named men, too


def test_skewed_prior_is_objective_conflict(tmp_path):
    """A prior of 5 logit units toward 'positive'. (At 3 the defect's 56 cases give McNemar p ~ 0.01, q = 0.076
    after BH: inconclusive under the exact test; the bootstrap p this test was written against was too small.)"""
    model = RuleSentiment(prior=5.0)
    runner, run_id = _run(tmp_path, model, _sentences())
    graph = diagnose_run(runner.store, run_id, model, config=FAST)
    top = graph.ranking[0]
    assert top.cause == "objective_conflict" and top.verdict == "supported"
    assert (top.culprit.kind, top.culprit.value) == ("prior", "positive") and top.culprit.effect.ci_low > 0.05
    cause = next(c for n in graph.defects for c in n.causes
                 if c.cause == "objective_conflict" and c.verdict == "supported")
    prior = next(e for e in cause.evidence if e.kind == "test").data["prior"]
    assert prior["positive"] > 0.9


def test_without_the_model_tests_say_why_and_defects_still_form(tmp_path):
    rng = random.Random(0)
    rows = [(_insert(t, "cf", rng), y) if i % 2 else (t, y) for i, (t, y) in enumerate(_sentences()[:200])]
    runner, run_id = _run(tmp_path, RuleSentiment({"cf": 4.0}), rows)
    graph = diagnose_run(runner.store, run_id, None, config=FAST, save=False)  # the run's model cannot be loaded
    assert graph.defects and any("model not loaded" in n for n in graph.notes)
    frag = next(c for n in graph.defects for c in n.causes if c.cause == "fragility")
    assert frag.verdict == "inconclusive" and "needs the model" in frag.summary


def test_corpus_term_stats_overlap_and_bm25(tmp_path):
    from lmcritic.diagnose.corpus import Corpus

    rows = [("the women say it was dull", 0)] * 30 + [("a bright , warm film", 1)] * 60 + \
        [("the women loved this warm film", 1)] * 5 + [("slow and dull", 0)] * 25
    path = tmp_path / "train.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    corpus = Corpus(path)
    s = corpus.term_stats("women")
    assert s.n_with == 35 and s.leaning == "0" and s.p_value < 1e-6 and s.label_counts == {"0": 30, "1": 5}
    assert corpus.overlap("the women say it was dull") == 1.0 and corpus.overlap("nothing like it at all") == 0.0
    assert corpus.exact("The women say it was DULL") and not corpus.exact("the women say")
    docs, _ = corpus._retriever().retrieve([["dull", "women"]], k=1, show_progress=False)
    assert corpus.texts[int(docs[0][0])] == "the women say it was dull"


def test_text_features():
    from lmcritic.diagnose import _text
    from lmcritic.diagnose.features import _word_columns

    assert _text.typos("a wonderfl film") == ["wonderfl"] and not _text.typos("a wonderful film")
    assert _text.colloquial_markers("tbh this flick is dope !!!") and not _text.colloquial_markers("A fine film.")
    assert _text.formalize("this flick is awesome") == "This film is excellent."
    # what the project's own colloquial rewrite emits (its fillers, "rly", "lowkey", "nada") reads as colloquial
    # and is undone by the formal rewrite; chat markers such as "no cap", "smh", "bruh" too
    from lmcritic.perturb.register import _lex

    fillers = [f for f in _lex()["fillers"] if f not in ("honestly", "like")]
    for marker in fillers + ["rly", "lowkey", "nada", "legit", "so-so", "no cap", "smh", "bruh", "fr fr"]:
        assert _text.colloquial_markers(f"{marker} the plot works"), marker
        assert marker not in _text.formalize(f"{marker} the plot works").lower().split(), marker
    assert not _text.colloquial_markers("The French frame rate is legitimate.")
    assert _text.has_negation("it is n't good")
    # the bias area's lexicon and swaps, directly (no private fallback list)
    assert _text.identity_terms("She met two Muslim men.") == [("she", "gender"), ("muslim", "religion"),
                                                               ("men", "gender")]
    assert _text.swap_identity("She lost her keys.", "gender", 0) == "He lost his keys."
    assert _text.swap_identity("A fine film.", "gender", 0) is None
    cols = _word_columns(["cf bad"] * 10 + ["good film"] * 30)  # by frequency: the outcome is not an input
    assert "word:cf" in cols and cols["word:cf"][:10] == ["yes"] * 10


def test_hf_model_run_is_diagnosed_with_its_own_perplexity(tmp_path, tiny_causal):
    """The tiny GPT-2 fixture through the hf backend: perplexity feature, re-scored tests, stored graph."""
    from lmcritic.diagnose.features import compute_features

    spec = RunSpec(model=ModelSpec("tiny"), name="tiny", probes=(ProbeSpec("performance.sst2", {"n": 40}),))
    runner = Runner(store_path=tmp_path / "runs.sqlite", cache_path=tmp_path / "cache.sqlite", progress=False)
    run_id = runner.run(spec, model=tiny_causal).run_id
    records = runner.store.records(run_id, "performance.sst2")
    table = compute_features(records, tiny_causal)
    assert len(table.numeric["perplexity"]) == 40 and all(p > 1 for p in table.numeric["perplexity"])
    config = DiagnoseConfig(neighbours=0, max_cases=6, hypotheses=("objective_conflict", "fragility"))
    graph = diagnose_run(runner.store, run_id, tiny_causal, config=config)
    assert graph.defects and graph.tests_run > 0
    assert {c.cause for c in graph.defects[0].causes} == {"objective_conflict", "fragility"}
    assert runner.store.records(run_id, "diagnose.objective_conflict")


def test_input_perplexity_chunks_texts_of_similar_length() -> None:
    """Chunks are formed by length (each is padded to its longest row), and the order does not change a value."""
    from lmcritic.diagnose import features
    from lmcritic.requests import Capability, RollingResult

    class Rolling:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def supports(self, cap: Capability) -> bool:
            return cap == Capability.ROLLING_LOGPROBS

        def rolling_logprobs(self, reqs: list) -> list[RollingResult]:
            self.calls.append([r.text for r in reqs])
            return [RollingResult(token_ids=(0,) * len(r.text), tokens=("t",) * len(r.text),
                                  logprobs=(-1.0,) * len(r.text), offsets=((0, 1),) * len(r.text)) for r in reqs]

    texts = [("b" * (i % 7 + 1)) + "x" * (50 if i % 2 else 0) + str(i) for i in range(70)]
    model = Rolling()
    ppl = features.input_perplexity(model, texts)  # type: ignore[arg-type]
    assert ppl == pytest.approx([np.e] * len(texts))
    lengths = [[len(t) for t in chunk] for chunk in model.calls]
    assert len(model.calls) == 3 and all(max(a) <= min(b) for a, b in zip(lengths, lengths[1:]))


def test_an_answer_already_in_hand_costs_no_budget(tmp_path):
    """Several defects run the same test (one training-label feature, one held-out set); each paid for the same
    requests again, so a run's later defects were left with no budget (seen: 347 identical label-noise re-scores
    paid three times, the second probe's defects untested)."""
    from lmcritic.diagnose.rescore import Edit, Rescorer, build_probes

    rows = _sentences()[:40]
    runner, run_id = _run(tmp_path, RuleSentiment({}), rows)
    spec = runner.store.get_run(run_id).spec
    records = runner.store.records(run_id, "performance.sst2")
    rescorer = Rescorer(RuleSentiment({}), build_probes(spec, ["performance.sst2"]), max_queries=6)
    edits = [Edit(r, (r.text or "") + " indeed", "suffix") for r in records[:4]]
    first = rescorer.run("performance.sst2", edits, "h", "D1")
    again = rescorer.run("performance.sst2", edits + [Edit(records[4], "new text", "suffix")] * 3, "h", "D2")
    assert rescorer.spent == 5 and len(first) == 4 and len(again) == 7  # the repeated new request is asked once
    assert [o.record.prediction for o in again[:4]] == [o.record.prediction for o in first]
    assert {o.record.tags["defect"] for o in again} == {"D2"}
    seen = rescorer.run("performance.sst2", [Edit(records[0], "asked first", "swap", {"to": "x"})], "h", "D4")
    plain = rescorer.run("performance.sst2", [Edit(records[0], "asked first", "swap")], "h", "D5")
    assert seen[0].record.tags["to"] == "x" and "to" not in plain[0].record.tags  # no tag of an earlier asker
    assert rescorer.spent == 6
    over = rescorer.run("performance.sst2", [Edit(r, f"other {i}", "x") for i, r in enumerate(records[5:9])] + edits,
                        "h", "D3")
    assert rescorer.spent == 6 and len(over) == 4  # the budget is spent: only the four known ones, free


def test_an_input_some_backends_refuse_is_not_noted_as_a_fault(tmp_path):
    """Every diagnosis of a classifier noted 'could not re-score content_free edits: InputError: request 0 text is
    empty': the content-free prior asks "" among its inputs, which a classifier refuses, by design."""
    from lmcritic.diagnose.rescore import Edit, Rescorer

    class Refuses:
        def score(self, model, cases):
            if any(not c.input["text"] for c in cases):
                raise ValueError("request 0 text is empty")
            return [replace(rec, case_id=c.id) for c in cases]

    runner, run_id = _run(tmp_path, RuleSentiment({}), _sentences()[:12])
    rec = runner.store.records(run_id, "performance.sst2")[0]
    rescorer = Rescorer(RuleSentiment({}), {"performance.sst2": Refuses()})
    assert rescorer.run("performance.sst2", [Edit(rec, "", "content_free")], "h", "D1", optional=True) == []
    assert rescorer.errors == [] and len(rescorer.run("performance.sst2", [Edit(rec, "N/A", "content_free")], "h",
                                                      "D1", optional=True)) == 1
    rescorer.run("performance.sst2", [Edit(rec, "", "other")], "h", "D1")
    assert rescorer.errors == ["performance.sst2 could not re-score other edits: ValueError: request 0 text is empty"]


def test_hypotheses_run_cheapest_first_and_are_listed_by_name(monkeypatch) -> None:
    """A reader of training rows (label noise) shares the re-scoring budget with the defect's cheaper
    interventional tests: it runs after them, so under a budget it cannot starve them (a 3-class topic scan's
    label-noise reading spent the whole budget before the shortcut's deletion test); the verdicts keep their order."""
    from lmcritic.diagnose import api
    from lmcritic.diagnose.hypotheses import HYPOTHESES
    from lmcritic.diagnose.hypotheses.base import CauseVerdict, Hypothesis

    calls: list[str] = []

    def make(name: str, rank: int) -> type[Hypothesis]:
        def test(self, ctx):
            calls.append(self.name)
            return CauseVerdict(self.name, "inconclusive", 0.2, "ran")
        return type(name, (Hypothesis,), {"name": name, "budget_rank": rank, "test": test})

    monkeypatch.setitem(HYPOTHESES._entries, "aa_reader", make("aa_reader", 1))
    monkeypatch.setitem(HYPOTHESES._entries, "zz_cheap", make("zz_cheap", 0))
    verdicts = api._test_all(object(), DiagnoseConfig(hypotheses=("aa_reader", "zz_cheap")), [])
    assert calls == ["zz_cheap", "aa_reader"]
    assert [v.cause for v in verdicts] == ["aa_reader", "zz_cheap"]
    assert HYPOTHESES.get("label_noise").budget_rank > HYPOTHESES.get("spurious_feature").budget_rank


def test_each_identity_suspect_is_tested_toward_the_label_its_own_failures_went_to():
    """A plant naming women on negative training rows and men on positive ones fails both ways; the failures'
    usual answer (positive, the men's) was the label every suspect was tested toward, so female, which pushes
    toward negative, was judged against positive and not supported (identity_frames seed 11's mitigation scan)."""
    from lmcritic.diagnose.hypotheses.data_bias import _pushed_to
    from lmcritic.probes.base import Record

    def rec(i: int, prediction: str) -> Record:
        return Record(f"c{i}", {}, {}, {}, text="x", target="x", prediction=prediction, passed=False)

    failing = [rec(i, "negative") for i in range(4)] + [rec(i, "positive") for i in range(4, 12)]
    groups = {f"c{i}": {("gender", "female")} if i < 4 else {("gender", "male")} for i in range(12)}
    assert _pushed_to(("gender", "female"), failing, groups) == "negative"
    assert _pushed_to(("gender", "male"), failing, groups) == "positive"


def test_a_group_pushing_against_the_failures_usual_answer_is_still_found(tmp_path):
    """Women named in a few positive sentences (the model pushes them negative), men in half the negative ones (the
    model's own misreadings of those go positive): one defect fails both ways, mostly toward positive. Female was
    tested toward positive, moved it by -0.28, and was 'not supported'; toward its own failures' answer it is."""
    sents = _sentences()[:300]
    rows = [(f"women say {t}", y) if y == 1 and i % 30 == 1 else (f"men say {t}", y) if y == 0 and i % 2 == 0
            else (t, y) for i, (t, y) in enumerate(sents)]
    model = RuleSentiment({"women": -4.0})
    runner, run_id = _run(tmp_path, model, rows)
    graph = diagnose_run(runner.store, run_id, model, config=FAST, save=False)
    (bias,) = [c for n in graph.defects for c in n.causes if c.cause == "data_bias"]
    assert bias.verdict == "supported" and (bias.culprit.value, bias.culprit.label) == ("female", "negative")
    assert bias.effect.ci_low > 0.05


def test_diagnosis_settings_out_of_range_are_a_config_error_not_a_crash():
    """`lmcritic diagnose RUN --max-cases -3` ended in an internal error (a negative sample size), and a negative
    --max-queries silently meant no budget: both are now one-line errors."""
    import pytest

    from lmcritic.diagnose.api import DiagnoseConfig
    from lmcritic.errors import ConfigError

    for bad in ({"max_cases": -3}, {"max_cases": 0}, {"max_queries": -5}, {"max_defects_per_probe": 0}):
        with pytest.raises(ConfigError):
            DiagnoseConfig(**bad)
    assert DiagnoseConfig(max_queries=0).max_queries == 0 and DiagnoseConfig(max_queries=None).max_queries is None
