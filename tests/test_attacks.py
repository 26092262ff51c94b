"""Adversarial attacks: goals, constraints, search, budgets and the attack/detect probes, on tiny models."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import pytest

from lmcritic.attacks import (
    Attack,
    BeamSearch,
    BelowRival,
    ClassifierVictim,
    Example,
    GenerationContains,
    MaxEditDistance,
    MaxWordsChanged,
    NoRepeat,
    NoStopwords,
    Oracle,
    POSMatch,
    PromptedVictim,
    Similarity,
    State,
    Status,
    UntargetedFlip,
    build_recipe,
)
from lmcritic.perturb.base import Token, WordSwap, apply_edits
from lmcritic.requests import ClassifyRequest, LoglikelihoodRequest

TEMPLATE = "Review: {text}\nSentiment:"
SENTENCES = [
    ("a gorgeous , witty , seductive movie .", "positive"),
    ("the film is a charming and often affecting journey .", "positive"),
    ("unflinchingly bleak and desperate", "negative"),
    ("it 's slow -- very , very slow .", "negative"),
    ("a sometimes tedious film with a terrific cast .", "positive"),
    ("the acting is dull and the story is boring .", "negative"),
]


@dataclass(frozen=True)
class ToySwap(WordSwap):
    """Swaps any word for a few sentiment-laden ones (a strong, fixed candidate set for tests)."""

    name = "toy"
    words: tuple[str, ...] = ("awful", "great", "dull", "charming", "boring", "terrific")

    def candidates(self, tokens: Sequence[Token], index: int) -> list[str]:
        return [w for w in self.words if w != tokens[index].text.lower()]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("LMCRITIC_HOME", str(tmp_path))


# The tiny GPT-2 says " negative" to everything, so attack tests use two answers it is torn between (" ," and " ."; each
# sentence labelled with the model's own clean answer): flips are then reachable and checkable.
ANSWERS, WORDS = ("comma", "dot"), (" ,", " .")


def _goal() -> UntargetedFlip:
    return UntargetedFlip(PromptedVictim(TEMPLATE, ANSWERS, WORDS))


def _model_label(model, text: str) -> str:
    res = model.loglikelihood([LoglikelihoodRequest(TEMPLATE.replace("{text}", text), w) for w in WORDS])
    return ANSWERS[int(res[1].logprob > res[0].logprob)]


def _examples(model) -> list[Example]:
    """The model's own answers as labels, except the last sentence (wrong on purpose: must be skipped)."""
    out = [Example(t, label=_model_label(model, t)) for t, _ in SENTENCES]
    last = out[-1]
    return out[:-1] + [Example(last.text, label=ANSWERS[1 - ANSWERS.index(last.label)])]


def test_state_tracks_edits_in_original_offsets() -> None:
    s = State.start("the movie was great fun")
    s2 = s.with_sub(3, "awful", "toy").with_sub(1, "film", "toy")
    assert s2.text == "the film was awful fun" and s.text == "the movie was great fun"
    assert apply_edits(s.original, s2.edits) == s2.text and s2.changed == {1, 3}
    assert s2.with_sub(3, "dull", "toy").text == "the film was dull fun"  # re-editing replaces, not stacks
    assert s2.without(2) == "the film awful fun"


def test_attack_results_are_consistent_with_the_model(tiny_causal) -> None:
    attack = Attack(_goal(), [ToySwap()], [NoRepeat(), NoStopwords()], BeamSearch(importance="loo"), budget=80)
    examples = _examples(tiny_causal)
    results = [attack.attack(tiny_causal, ex) for ex in examples]
    assert any(r.status is Status.SUCCEEDED for r in results) and results[-1].status is Status.SKIPPED
    for (text, label), r in zip([(e.text, e.label) for e in examples], results):
        assert r.original == text and apply_edits(text, r.edits) == r.adversarial
        assert 1 <= r.queries <= 80
        clean = _model_label(tiny_causal, text)
        if r.status is Status.SKIPPED:
            assert clean != label and r.queries == 1
        elif r.status is Status.SUCCEEDED:
            assert clean == label and _model_label(tiny_causal, r.adversarial) != label  # the flip is real
            assert r.edits and all(e.before.lower() not in {"the", "a", "and", "is", "it"} for e in r.edits)
            assert 0 < r.changed_fraction <= 1 and r.similarity is not None and -1 <= r.similarity <= 1
        else:
            assert r.adversarial == text and not r.edits


def test_budget_stops_search_and_is_never_exceeded(tiny_causal) -> None:
    attack = Attack(_goal(), [ToySwap()], [NoRepeat()], BeamSearch(importance="loo"), budget=4)
    statuses = set()
    for ex in _examples(tiny_causal)[:-1]:
        r = attack.attack(tiny_causal, ex)
        assert r.queries <= 4 and r.status in (Status.BUDGET, Status.SUCCEEDED)
        statuses.add(r.status)
    assert Status.BUDGET in statuses


def test_oracle_memoizes_and_counts_distinct_texts(tiny_causal) -> None:
    oracle = Oracle(_goal(), tiny_causal, Example("a fine film", label="comma"), budget=3)
    first = oracle.evaluate(["a fine film", "a fine film", "a bad film"])
    assert oracle.queries == 2 and first[0] == first[1]
    second = oracle.evaluate(["a bad film", "a dull film", "a great film"])
    assert oracle.queries == 3 and oracle.exhausted and second[2] is None and second[1] is not None


def test_gradient_ranking_costs_one_query_and_loo_one_per_word(tiny_causal, tiny_classifier) -> None:
    ex = _examples(tiny_causal)[1]
    words = sum(1 for t in State.start(ex.text).tokens if t.text.lower() not in NoStopwords().stopwords)
    for importance, expected in (("gradient", 1), ("loo", words)):
        attack = Attack(_goal(), [ToySwap(words=())], [NoStopwords()], BeamSearch(importance=importance))
        r = attack.attack(tiny_causal, ex)
        assert r.importance == importance and r.status is Status.FAILED
        assert r.queries == 1 + expected  # 1 clean query + ranking; no candidates to score
    clf = Attack(UntargetedFlip(ClassifierVictim()), [ToySwap()], [NoRepeat()], BeamSearch(importance="auto"),
                 budget=60)
    labels = tiny_classifier.classify([ClassifyRequest("x")])[0].labels
    r = clf.attack(tiny_classifier, Example(SENTENCES[0][0], label=labels[0]))
    assert r.importance in ("gradient", "")  # auto picks gradients on a white-box backend


def test_gradient_importance_is_per_word_and_finite(tiny_causal, tiny_classifier) -> None:
    from lmcritic.attacks import _gradients

    state = State.start("a gorgeous witty movie").with_sub(1, "awful", "toy")
    be = _gradients.white_box(tiny_causal)
    w = _gradients.prompted_importance(be, state, TEMPLATE.replace("{text}", state.text), 8,
                                       (" negative", " positive"), 1).norms
    assert len(w) == 4 and all(math.isfinite(x) and x >= 0 for x in w) and max(w) > 0
    c = _gradients.classifier_importance(_gradients.white_box(tiny_classifier), state, 0).norms
    assert len(c) == 4 and max(c) > 0


def test_beam_search_scores_whole_candidate_sets(tiny_causal) -> None:
    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner, self.capabilities = inner, inner.capabilities

        def supports(self, cap):
            return cap in self.capabilities

        def loglikelihood(self, reqs):
            calls.append(len(reqs))
            return self.inner.loglikelihood(reqs)

    attack = Attack(_goal(), [ToySwap()], [NoRepeat()], BeamSearch(width=3, importance="order"), budget=200)
    r = attack.attack(Counting(tiny_causal), _examples(tiny_causal)[0])
    assert r.status in (Status.SUCCEEDED, Status.FAILED, Status.BUDGET)
    assert max(calls) > 2 * 6 or (r.succeeded and r.words_changed == 1)  # a beam expansion in one call


def test_constraints() -> None:
    s = State.start("the movie was quickly forgotten by everyone")
    assert not NoStopwords().modifiable(s, 0) and NoStopwords().modifiable(s, 1)
    assert not NoRepeat().modifiable(s.with_sub(1, "film", "t"), 1)
    mw = MaxWordsChanged(0.3)  # 7 words -> at most 2
    two = s.with_sub(1, "film", "t").with_sub(4, "lost", "t")
    assert mw.modifiable(two, 1) and not mw.modifiable(two, 3)
    cands = [s.with_sub(3, "speedily", "t"), s.with_sub(3, "house", "t")]
    assert POSMatch().check(s, cands, 3) == [True, False]  # adverb for adverb, not a noun/verb
    assert MaxEditDistance(3).check(s, [s.with_sub(1, "moive", "t"), s.with_sub(1, "documentary", "t")], 1) == [
        True, False]
    sim = Similarity(0.8)
    near, far = s.with_sub(1, "film", "t"), s.with_sub(1, "spaceship", "t")
    scores = sim.scores(s, [near, far])
    assert scores[0] > scores[1] and scores[0] > 0.8


def test_below_rival_goal_matches_raw_loglikelihoods(tiny_causal) -> None:
    goal = BelowRival(PromptedVictim(TEMPLATE, ANSWERS, WORDS), margin=0.0)
    texts = [t for t, _ in SENTENCES]
    got = goal.evaluate(tiny_causal, Example(texts[0], label="dot"), texts)
    for t, g in zip(texts, got):
        res = tiny_causal.loglikelihood([LoglikelihoodRequest(TEMPLATE.replace("{text}", t), w) for w in WORDS])
        assert g.score == pytest.approx(res[0].logprob - res[1].logprob, abs=1e-4)
        assert g.success == (g.score > 0)


def test_generation_goal_checks_the_real_generation(tiny_causal) -> None:
    goal = GenerationContains("Review: {text}\nThe film is", target="the", max_new_tokens=8)
    oracle = Oracle(goal, tiny_causal, Example("a gorgeous movie"))
    got = oracle.evaluate(["a gorgeous movie", "a dull movie", "a great movie"])
    assert oracle.queries == 4  # three guided scores + one generation
    best = max(range(3), key=lambda i: got[i].score)
    assert got[best].prediction is not None and got[best].success == ("the" in got[best].prediction.lower())
    assert all(not g.success for i, g in enumerate(got) if i != best)


def test_recipes_build_with_the_shared_word_swaps(tiny_causal) -> None:
    attack = build_recipe("deepwordbug", _goal(), budget=30, max_words=0.3)
    assert attack.recipe == "deepwordbug" and attack.swaps[0].name == "char"
    s = State.start("a gorgeous witty movie")
    cands = attack.candidates(s, 1)
    assert 4 < len(cands) <= 50 and all(c.text != s.text for c in cands)  # every edit: guided search orders them
    assert type(attack.search).__name__ == "GuidedGreedy"
    assert type(build_recipe("deepwordbug", _goal(), search="beam").search).__name__ == "BeamSearch"
    with pytest.raises(Exception, match="search"):
        build_recipe("deepwordbug", _goal(), search="genetic")
    r = attack.attack(tiny_causal, _examples(tiny_causal)[0])
    assert r.queries <= 30 and r.recipe == "deepwordbug"
    with pytest.raises(Exception, match="recipe|did you mean"):
        build_recipe("deepwordbugg", _goal())


def test_auroc() -> None:
    from lmcritic.probes.robustness.detect import auroc

    assert auroc([3, 4, 5], [0, 1, 2]) == 1.0 and auroc([0, 1], [3, 4]) == 0.0
    assert auroc([1, 2], [1, 2]) == 0.5


def test_attack_and_detect_probes_in_the_runner(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    from lmcritic.backends import ModelSpec
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    cfg = {"n": 6, "recipes": ["deepwordbug", "typo"], "budget": 25, "label_words": [" the", " ."]}
    spec = RunSpec(model=ModelSpec(name=str(tiny_causal_dir)), probes=(
        ProbeSpec("robustness.attack", cfg), ProbeSpec("robustness.detect", {**cfg, "recipes": ["deepwordbug"]})))
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(spec, model=tiny_causal)
    assert out.status == "done", out.message
    recs = runner.store.records(out.run_id, "robustness.attack")
    assert len(recs) == 12 and {r.tags["recipe"] for r in recs} == {"deepwordbug", "typo"}
    for r in recs:
        assert r.output["queries"] <= 25 and r.tags["attack"] == r.tags["recipe"] and "line" in r.tags
        assert r.explain.context.startswith("Review: ") and r.explain.target in (" the", " .")
        assert (r.explain_variant.context != r.explain.context) == (
            r.output["status"] == "succeeded")
        assert r.passed == (r.output["status"] in ("failed", "budget"))
    findings = {f.name: f for f in runner.store.findings(out.run_id)}
    rate = findings["attack_success_rate/deepwordbug"].estimate
    attacked = [r for r in recs if r.tags["recipe"] == "deepwordbug" and r.output["status"] != "skipped"]
    assert rate.n == len(attacked) and rate.ci_low <= rate.value <= rate.ci_high
    acc = findings["accuracy_under_attack/deepwordbug"]
    assert acc.details["clean_accuracy"]["value"] >= acc.estimate.value and "p_adjusted" in acc.details
    assert findings["worst_case_accuracy"].estimate.value <= acc.estimate.value
    det = [r for r in runner.store.records(out.run_id, "robustness.detect")]
    assert len(det) == 6 and all(r.scores["clean_mean_nll"] > 0 for r in det)
    won = [r for r in det if r.output["status"] == "succeeded"]
    d = findings["detector_auroc/deepwordbug"]
    if won:
        assert 0 <= d.estimate.value <= 1 and d.details["plots"][0]["kind"] == "line"
    # the detect probe re-ran the same attacks: identical outcomes
    by_line = {r.tags["line"]: r.output["adversarial"] for r in recs if r.tags["recipe"] == "deepwordbug"}
    assert all(by_line[r.tags["line"]] == r.output["adversarial"] for r in det)


def test_attack_probe_on_a_classifier_head(tiny_classifier) -> None:
    from lmcritic.probes.robustness.attack import AttackProbe

    probe = AttackProbe(n=4, recipes=["deepwordbug"], budget=20)
    assert probe.not_applicable(tiny_classifier) is None
    recs = probe.score(tiny_classifier, list(probe.cases()))
    assert all(r.explain.kind == "label" and r.explain.context == r.text for r in recs)
    assert all(r.tags["importance"] in ("gradient", "") for r in recs)  # white-box: gradient ranking
    assert probe.summarize(recs)


def _sentiment(text: str) -> dict[str, float]:
    """A black box whose positive probability falls with each negative word (and 'ok' helps a little)."""
    t = text.split()
    neg = sum(w in ("awful", "dull") for w in t) + 0.2 * sum(w == "ok" for w in t)
    p = max(0.02, 0.8 - 0.25 * neg)
    return {"negative": 1 - p, "positive": p}


def test_guided_search_queries_one_candidate_at_a_time_and_keeps_the_first_gain() -> None:
    from lmcritic.attacks.guided import GuidedGreedy
    from lmcritic.backends.python import PythonBackend

    be = PythonBackend(_sentiment, task="classify", labels=("negative", "positive"))
    swap = ToySwap(words=("awful", "dull", "ok", "nice"))
    ex = Example("a fine film", label="positive")
    guided = Attack(UntargetedFlip(ClassifierVictim()), [swap], [NoRepeat()], GuidedGreedy(importance="order"))
    r = guided.attack(be, ex)
    # word 0 → "awful" gains (0.8 → 0.55) and is kept untried-others; word 1 → "awful" flips: clean + 1 + 1
    assert r.succeeded and r.adversarial == "awful awful film" and r.queries == 3
    beam = Attack(UntargetedFlip(ClassifierVictim()), [swap], [NoRepeat()], BeamSearch(importance="order"))
    rb = beam.attack(be, ex)
    assert rb.succeeded and rb.queries == 1 + 4 + 4  # TextAttack's greedy scores every candidate it visits


def test_guided_sweep_repicks_edited_words_when_the_walk_falls_short() -> None:
    from lmcritic.attacks.guided import GuidedGreedy
    from lmcritic.backends.python import PythonBackend

    be = PythonBackend(_sentiment, task="classify", labels=("negative", "positive"))
    swap = ToySwap(words=("ok", "awful"))
    ex = Example("a fine warm film", label="positive")
    for sweep in (False, True):
        attack = Attack(UntargetedFlip(ClassifierVictim()), [swap], [NoRepeat()],
                        GuidedGreedy(importance="order", sweep=sweep))
        r = attack.attack(be, ex)
        # the walk keeps "ok" at every word (a small gain each time, 0.8 → 0.6, no flip); the sweep then
        # re-picks word 0 with the others fixed and finds "awful" (0.4)
        assert r.succeeded is sweep
        assert r.adversarial == ("awful ok ok ok" if sweep else ex.text)
        assert r.queries == 1 + 4 + sweep


def test_guided_blind_cap_and_bad_options() -> None:
    from lmcritic.attacks.guided import GuidedGreedy
    from lmcritic.errors import ConfigError

    for bad in ({"step": 0}, {"tries": 0}, {"width": 3}, {"importance": "magic"}):
        with pytest.raises(ConfigError):
            GuidedGreedy(**bad)


def _single_piece(tok, words):
    return [w for w in words if len(tok(w, add_special_tokens=False)["input_ids"]) == 1]


def test_estimator_is_the_directional_derivative_of_the_objective(tiny_classifier) -> None:
    """For one-piece words the estimate must equal d/dt objective(E_old + t(E_new − E_old)) at t = 0."""
    import torch

    from lmcritic.attacks import _gradients

    be, wb = tiny_classifier, _gradients.white_box(tiny_classifier)  # the HF objects check the white box's maths
    text = "the film is a charming and often affecting journey ."
    state = State.start(text)
    vocab = _single_piece(be.tokenizer, [t.text for t in state.tokens])
    index = next(i for i, t in enumerate(state.tokens) if t.text in vocab and t.text not in ("the", "."))
    new = [w for w in _single_piece(be.tokenizer, ["dull", "boring", "film", "movie", "a", "great"])
           if w != state.tokens[index].text][:3]
    est = _gradients.Estimator(wb, _gradients.classifier_importance(wb, state, 0))(state, index, new)
    enc = be.tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
    offsets = enc.pop("offset_mapping")[0].tolist()
    pos = next(k for k, (a, b) in enumerate(offsets) if a == state.tokens[index].start and b > a)
    model = copy.deepcopy(be.model).double()  # float64 finite differences: float32 ones are noise here
    table = model.get_input_embeddings().weight.detach()

    def objective(delta):
        emb = table[enc["input_ids"][0]].clone()
        emb[pos] += delta
        with torch.no_grad():
            out = model(inputs_embeds=emb[None], attention_mask=enc["attention_mask"]).logits[0]
        return float(torch.log_softmax(out, -1)[0])

    old = table[enc["input_ids"][0, pos]]
    for w, e in zip(new, est):
        d = table[be.tokenizer(w, add_special_tokens=False)["input_ids"][0]] - old
        h = 1e-4
        fd = (objective(h * d) - objective(-h * d)) / (2 * h)
        assert abs(fd) > 1e-7 and e == pytest.approx(fd, rel=0.05), (w, e, fd)  # relative: an untrained head


def test_estimator_orders_candidates_on_a_prompted_causal_lm(tiny_causal) -> None:
    from lmcritic.attacks import _gradients

    be = _gradients.white_box(tiny_causal)
    state = State.start("a gorgeous witty movie")
    grads = _gradients.prompted_importance(be, state, TEMPLATE.replace("{text}", state.text), 8, WORDS, 0)
    est = _gradients.Estimator(be, grads)(state, 1, ["awful", "great", "gorgeous"])
    assert len(est) == 3 and all(math.isfinite(x) for x in est) and est[2] == 0.0  # no change, no estimate


def test_guided_tries_caps_queries_per_word() -> None:
    from lmcritic.attacks.guided import GuidedGreedy
    from lmcritic.backends.python import PythonBackend

    be = PythonBackend(_sentiment, task="classify", labels=("negative", "positive"))
    swap = ToySwap(words=("nice", "good", "fine", "warm", "grand", "awful"))  # only the last one helps
    ex = Example("a film", label="positive")
    for tries, most in ((2, 1 + 2 * 2 + 2 * 2), (None, 1 + 6 + 6)):
        attack = Attack(UntargetedFlip(ClassifierVictim()), [swap], [NoRepeat()],
                        GuidedGreedy(importance="order", tries=tries, seed=1))
        r = attack.attack(be, ex)
        assert r.queries <= most  # clean + per word (walk) + per edited word (sweep)
        if tries is None:
            assert "awful" in r.adversarial  # every candidate tried: the helpful one is found
