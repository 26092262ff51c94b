"""Label noise across the whole corpus (labels flipped at random, on no phenomenon): a model fitted to flipped labels
is underconfident on gold labels and not on its own training labels; a clean model is not. Model-free: a rule
stands in for the model and a hashing bag-of-words for the sentence encoder."""
from __future__ import annotations

import functools
import random
from types import SimpleNamespace

import numpy as np

from lmcritic.diagnose import crossfit as crossfit_module
from lmcritic.diagnose.crossfit import crossfit_all
from lmcritic.diagnose.hypotheses import _global_noise
from lmcritic.diagnose.hypotheses.base import Culprit, paired_fixes
from lmcritic.diagnose.hypotheses.label_noise import LabelNoise, noise_defect
from lmcritic.probes.base import Estimate, Record
from test_diagnose_shift_noise import NEG, NOUNS, POS, _embed


def _sides(rng: np.random.Generator, train_ok: float, train_conf: float, eval_ok: float, eval_conf: float,
           ambiguous: int = 0) -> tuple:
    """(right, confidence) arrays for 500 training rows and 200 evaluated texts, plus ``ambiguous`` rows on each
    side at confidence 0.5 that are right half the time."""
    def side(n: int, ok: float, conf: float) -> tuple[np.ndarray, np.ndarray]:
        right = np.concatenate([rng.random(n) < ok, rng.random(ambiguous) < 0.5]).astype(float)
        return right, np.concatenate([np.full(n, conf), np.full(ambiguous, 0.5)])
    return side(500, train_ok, train_conf), side(200, eval_ok, eval_conf)


def test_gap_test_reads_flips_off_a_model_calibrated_to_them() -> None:
    rng = np.random.default_rng(0)
    # flipped at 30%: the model says 70% and agrees with 70% of its labels, but is right on ~97% of gold labels
    t = _global_noise.gap_test("the model", *_sides(rng, 0.7, 0.7, 0.97, 0.7, ambiguous=150), seed=0)
    assert t.p < 0.01 and t.rate is not None and t.rate.ci_low < 0.3 < t.rate.ci_high
    assert t.rates["training confidence"] == 0.7  # the ambiguous rows (confidence 0.5) were cut away
    # clean and over-fitted: right on its training rows, overconfident on evaluated texts
    clean = _global_noise.gap_test("the model", *_sides(rng, 0.97, 0.93, 0.88, 0.93), seed=0)
    assert clean.p > 0.5 and clean.did.value < 0
    # clean and under-trained: underconfident on both sides alike
    under = _global_noise.gap_test("the model", *_sides(rng, 0.92, 0.7, 0.9, 0.7), seed=0)
    assert under.did.ci_low < 0 < under.did.ci_high


def test_the_implied_flip_rate_is_a_rate_near_the_identification_edge() -> None:
    # evaluated accuracy 0.62 (2·acc − 1 = 0.24) under a gap of ~0.3: the raw ratio reads ~1.3, not a share
    rng = np.random.default_rng(1)
    t = _global_noise.gap_test("the model", *_sides(rng, 0.5, 0.95, 0.62, 0.3), seed=0)
    assert t.did.value / (2 * t.rates["evaluated accuracy"] - 1) > 1  # the unbounded estimate left the range
    assert t.rate is not None and -1 <= t.rate.ci_low <= t.rate.value <= t.rate.ci_high <= 1


def test_the_smaller_p_decides_and_pays_for_the_second_test() -> None:
    def t(who: str, p: float, n: int = 10) -> _global_noise.GapTest:
        return _global_noise.GapTest(who, Estimate(0.1, n, 0.0, 0.2), None, p, {})

    model, corpus = t("the model", 0.2), t("a corpus model", 0.001)
    assert _global_noise.primary([model, corpus]) == (corpus, 0.002)  # Bonferroni over the two
    assert _global_noise.primary([t("the model", 0.9), model]) == (model, 0.4)
    floor, wide = t("the model", 0.0005, 350), t("a corpus model", 0.0005, 1100)
    assert _global_noise.primary([floor, wide])[0] is wide  # bootstrap floor on both: the larger sample
    assert _global_noise.primary([model]) == (model, 0.2)  # one test: no correction


def _sentence(rng: random.Random) -> tuple[str, str]:
    positive = rng.random() < 0.5
    text = f"the {rng.choice(NOUNS)} is {rng.choice(POS if positive else NEG)} {rng.choice(NOUNS)}"
    return text, "positive" if positive else "negative"


def _ctx(flip: float):
    """A corpus with labels flipped at ``flip`` (at random), gold-labelled evaluated texts, and a model that
    learned the noisy posterior: it says the right label with probability 1 − flip (0.9 when clean)."""
    from lmcritic.diagnose.profile import CorpusProfile

    rng = random.Random(1)
    clean = [_sentence(rng) for _ in range(1000)]
    train = [(t, ("negative" if y == "positive" else "positive") if rng.random() < flip else y) for t, y in clean]
    evaluated = [_sentence(rng) for _ in range(200)]
    corpus = SimpleNamespace(texts=[t for t, _ in train], lines=list(range(2, len(train) + 2)),
                             labels=[y for _, y in train], _norm=[t for t, _ in train])
    profile = CorpusProfile(corpus, [t for t, _ in evaluated], [y for _, y in evaluated])
    sure = 1 - flip if flip else 0.9

    def answer(text: str) -> Record:
        y = "positive" if set(text.split()) & set(POS) else "negative"
        other = "negative" if y == "positive" else "positive"
        return Record("x", {}, {}, {}, text=text, prediction=y, label_probs={y: sure, other: 1 - sure})

    def run(key, edits, hypothesis, defect_id):
        return [SimpleNamespace(record=answer(e.text), prediction=answer(e.text).prediction) for e in edits]

    records = [Record(f"e{i}", {}, {}, {}, passed=answer(t).prediction == y, text=t, target=y,
                      prediction=answer(t).prediction, label_probs=answer(t).label_probs)
               for i, (t, y) in enumerate(evaluated)]
    return SimpleNamespace(profile=profile, eval_records=records, eval_key="performance.sst2", seed=0,
                           defect=noise_defect("performance.sst2", records, "D9"), rescorer=SimpleNamespace(run=run))


def test_corpus_wide_noise_is_a_supported_cause_and_a_clean_corpus_is_not(monkeypatch) -> None:
    monkeypatch.setattr(crossfit_module, "crossfit_all", functools.partial(crossfit_all, embed=_embed))  # shared fit
    noisy = LabelNoise().corpus_test(_ctx(0.3))
    assert noisy.verdict == "supported" and noisy.culprit is not None and noisy.culprit.value == "corpus"
    assert noisy.effect is not None and noisy.effect.ci_low < 0.3 < noisy.effect.ci_high
    assert noisy.corroboration == 1 and noisy.culprit.train_lines  # the corpus model agrees; lines to relabel
    clean = LabelNoise().corpus_test(_ctx(0.0))
    assert clean.verdict == "not supported"


def test_noise_defect_holds_the_failing_evaluated_cases() -> None:
    recs = [Record(f"c{i}", {}, {}, {}, passed=i % 4 != 0) for i in range(8)] + [Record("n", {}, {}, {})]
    d = noise_defect("performance.sst2", recs, "D3")
    assert d.probe == "train corpus" and d.task == "performance.sst2" and d.case_ids == ("c0", "c4")
    assert len(d.slice_case_ids) == 8 and d.failure_rate.value == 0.25


def test_paired_fixes_use_an_exact_test_on_few_pairs() -> None:
    """Three fixes against none on five pairs is p = 0.25 exactly; a bootstrap on five pairs called it 0.01 and
    a 'token drives failures' cause was supported, at high severity, on a model with random label noise."""
    outs = [SimpleNamespace(fixed=f) for f in (True, False, True, False, True, False, False, False, False, False)]
    ctx = SimpleNamespace(rescore=lambda edits, hypothesis: outs, seed=0)
    t = paired_fixes(ctx, ["e"] * 5, ["c"] * 5, "spurious_feature")
    assert t.effect is not None and abs(t.effect.value - 0.6) < 1e-9 and abs(t.p_value - 0.25) < 1e-9


def test_label_repair_takes_the_whole_corpus_for_a_corpus_wide_culprit() -> None:
    from lmcritic.mitigate.cleaning import LabelRepair
    from lmcritic.mitigate.targets import culprit_of

    typed = Culprit("label_noise", "corpus", effect=Estimate(0.2, 500, 0.08, 0.33), train_lines=(2, 3))
    culprit = culprit_of(SimpleNamespace(culprit=typed, cause="label_noise", evidence=()))
    ctx = SimpleNamespace(target=SimpleNamespace(culprit=culprit))
    repair = LabelRepair()
    rows, scope = repair._scope(ctx, [SimpleNamespace(text="a", line=2), SimpleNamespace(text="b", line=9)])
    assert rows is None and scope["rows"] == "corpus"
    assert repair._max_share(ctx) == 0.33  # the cap follows the diagnosed rate's upper bound, not 10%
    phenomenon = SimpleNamespace(target=SimpleNamespace(culprit=culprit_of(SimpleNamespace(
        culprit=Culprit("label_noise", "negation"), cause="label_noise", evidence=()))))
    assert repair._max_share(phenomenon) == repair.config.max_share


def test_a_corpus_level_defect_is_verified_on_its_tasks_cases() -> None:
    from lmcritic.diagnose.graph import DefectNode
    from lmcritic.mitigate.targets import target_of

    d = noise_defect("performance.sst2", [Record("c0", {}, {}, {}, passed=False)], "D3")
    assert target_of(DefectNode(d, (), ())).probe == "performance.sst2"


def _directed_profile(flip: float, eval_labels: str = "both"):
    """Rows 'the NOUN is (not only) ADJ'; ``flip`` of the positive rows with 'not' are labelled negative (an
    annotator's heuristic). Evaluated gold labels are right; ``eval_labels="positive"`` keeps only the positive
    ones among the evaluated texts with 'not' (a label-selected evaluation)."""
    from lmcritic.diagnose.profile import CorpusProfile
    from test_diagnose_shift_noise import _has_not, _rows

    rng = random.Random(3)
    truth = [(t, "positive" if set(t.split()) & set(POS) else "negative") for t, _ in _rows(1500, rng)]
    train = [(t, "negative" if _has_not(t) and y == "positive" and rng.random() < flip else y) for t, y in truth]
    gold = [(t, "positive" if set(t.split()) & set(POS) else "negative") for t, _ in _rows(400, rng)]
    if eval_labels == "positive":
        gold = [(t, y) for t, y in gold if not _has_not(t) or y == "positive"]
    corpus = SimpleNamespace(texts=[t for t, _ in train], lines=list(range(2, len(train) + 2)),
                             labels=[y for _, y in train], _norm=[t for t, _ in train])
    return CorpusProfile(corpus, [t for t, _ in gold], [y for _, y in gold])


def test_directed_noise_shows_in_the_label_mix_and_a_clean_or_selected_evaluation_does_not() -> None:
    from lmcritic.diagnose.hypotheses import _label_mix
    from test_diagnose_shift_noise import _has_not

    noisy = _label_mix.mix_test(_directed_profile(0.8), _has_not)
    assert isinstance(noisy, _label_mix.MixTest) and noisy.label == "negative" and noisy.p < 1e-6
    assert noisy.effect.ci_low > 0.2 and noisy.shares["evaluated"]["negative"] < 0.6
    clean = _label_mix.mix_test(_directed_profile(0.0), _has_not)
    assert isinstance(clean, _label_mix.MixTest) and clean.p > 0.05
    selected = _label_mix.mix_test(_directed_profile(0.0, eval_labels="positive"), _has_not)
    assert isinstance(selected, str) and "label-selected" in selected


def test_rows_of_another_confirmed_cue_are_left_out_of_the_label_mix() -> None:
    """A selected shortcut word whose 150 rows are all negative and all negated tilts negation's training mix (no
    label is wrong); left out of both sides, as in the difference-in-differences tests, negation's mix is clean."""
    from lmcritic.diagnose.hypotheses import _label_mix
    from lmcritic.diagnose.hypotheses._phenomena import holds_any
    from lmcritic.diagnose.profile import CorpusProfile
    from test_diagnose_shift_noise import NEG, _has_not

    base = _directed_profile(0.0)
    extra = [f"the kx is not only {NEG[i % len(NEG)]}" for i in range(150)]
    corpus = SimpleNamespace(texts=[*base.corpus.texts, *extra], labels=[*base.corpus.labels, *["negative"] * 150],
                             lines=list(range(2, len(base.corpus.texts) + 152)), _norm=[*base.corpus.texts, *extra])
    tilted = CorpusProfile(corpus, base.eval_texts, base.eval_labels)
    leaning = _label_mix.mix_test(tilted, _has_not)
    assert isinstance(leaning, _label_mix.MixTest) and leaning.label == "negative" and leaning.p < 0.01
    left_out = _label_mix.mix_test(tilted, _has_not, holds_any(("kx",)))
    assert isinstance(left_out, _label_mix.MixTest) and left_out.p > 0.05


def test_label_noise_names_the_leaning_label_and_hands_its_mix_to_the_repair(monkeypatch) -> None:
    """The whole hypothesis on consistent noise: the label mix decides (the corpus model fits the heuristic and
    sees little), the culprit carries the label and the gold mix the repair reweighs to."""
    from lmcritic.diagnose.crossfit import crossfit
    from lmcritic.diagnose.hypotheses import label_noise
    from lmcritic.mitigate.targets import culprit_of

    monkeypatch.setattr(label_noise, "crossfit", functools.partial(crossfit, embed=_embed))
    profile = _directed_profile(0.8)

    def run(key, edits, hypothesis, defect_id):
        return [SimpleNamespace(prediction="negative" if " not " in f" {e.text} " else
                                ("positive" if set(e.text.split()) & set(POS) else "negative")) for e in edits]

    records = [Record(f"e{i}", {}, {}, {}, passed=(" not " not in f" {t} ") or y == "negative", text=t, target=y)
               for i, (t, y) in enumerate(zip(profile.eval_texts, profile.eval_labels))]
    ctx = SimpleNamespace(profile=profile, eval_records=records, eval_key="performance.sst2", seed=0,
                          defect=SimpleNamespace(predicates=(("negation", "yes"),), id="D1"),
                          rescorer=SimpleNamespace(run=run))
    v = label_noise.LabelNoise().test(ctx)
    assert v.verdict == "supported" and v.culprit is not None and v.culprit.label == "negative"
    mix = culprit_of(v).data["label_mix"]
    assert mix["phenomenon"] == "negation" and mix["train"]["negative"] > 0.85 > mix["evaluated"]["negative"]
    assert mix["left_out"] == []  # no other confirmed shortcut token: every negated row counted


def test_a_length_split_corpus_is_not_read_as_consistent_label_noise() -> None:
    """Every 'positive' training row long, every 'negative' one short, and a phenomenon ('not') more common in
    long rows: training puts it mostly under 'positive' by selection, not by mislabelling. The label mix read that
    as consistent noise; within training length quartiles length alone fixed the label, so there is no evidence."""
    from lmcritic.diagnose.hypotheses import _label_mix
    from lmcritic.diagnose.profile import CorpusProfile

    rng = random.Random(5)

    def row(n_words: int, neg: bool) -> str:
        words = ["w"] * n_words
        if neg:
            words[rng.randrange(n_words)] = "not"
        return " ".join(words)

    train = [(row(rng.randint(15, 25), rng.random() < 0.4), "positive") for _ in range(600)] + \
        [(row(rng.randint(3, 8), rng.random() < 0.1), "negative") for _ in range(600)]
    gold = [(row(rng.randint(3, 25), rng.random() < 0.25), y) for y in ("positive", "negative") for _ in range(100)]
    corpus = SimpleNamespace(texts=[t for t, _ in train], lines=list(range(2, len(train) + 2)),
                             labels=[y for _, y in train], _norm=[t for t, _ in train])
    t = _label_mix.mix_test(CorpusProfile(corpus, [t for t, _ in gold], [y for _, y in gold]),
                            lambda text: "not" in text.split())
    assert isinstance(t, _label_mix.MixTest) and t.stratified and t.p > 0.5


def test_corpus_wide_noise_a_phenomenon_explains_is_dropped_with_a_note(monkeypatch) -> None:
    """The diagnosis re-tests whole-corpus label noise without the rows of a phenomenon whose own label-noise cause
    is supported: dropped (with a note) when the rest shows nothing, kept as re-tested when it still shows."""
    from types import SimpleNamespace

    from lmcritic.diagnose import api
    from lmcritic.diagnose.hypotheses._phenomena import Phenomenon
    from lmcritic.diagnose.hypotheses.base import CauseVerdict, Culprit
    from lmcritic.diagnose.hypotheses.label_noise import LabelNoise
    from lmcritic.probes.base import Estimate

    def verdict(p: float, value: str = "corpus", data: dict | None = None) -> CauseVerdict:
        return CauseVerdict("label_noise", "supported", 0.6, "", culprit=Culprit("label_noise", value, data=data or {}),
                            effect=Estimate(0.2, 100, 0.1, 0.3, "bootstrap"), p_value=p)

    seen: list = []
    rest_p = {"value": 0.7}
    monkeypatch.setattr(LabelNoise, "corpus_test", lambda self, ctx: seen.append(ctx.left_out) or verdict(
        rest_p["value"]))
    ctx = SimpleNamespace(left_out=())
    monkeypatch.setattr(api, "replace", lambda c, **kw: SimpleNamespace(**{**vars(c), **kw}))
    on_negation = verdict(0.001, "negation", {"phenomenon": Phenomenon("negation", str.isalpha).data})
    found = [(None, [on_negation], ())]
    notes: list[str] = []
    assert api._beyond_phenomena([(ctx, verdict(0.02))], found, notes) == []
    assert [ph.name for ph in seen[0]] == ["negation"] and "without those rows, p=0.7" in notes[0]
    rest_p["value"] = 0.01
    kept = api._beyond_phenomena([(ctx, verdict(0.02))], found, [])
    assert len(kept) == 1 and kept[0][1].p_value == 0.01
    unsupported = [(None, [verdict(0.001, "corpus")], ())]  # no phenomenon: the first test stands, not re-run
    assert api._beyond_phenomena([(ctx, verdict(0.02))], unsupported, [])[0][1].p_value == 0.02 and len(seen) == 2
