"""Label noise needs evidence in the training labels (a cross-fitted corpus model), and a covariate shift is
tested on the probability the model puts on wrong answers of the shifted inputs. Model-free: a hashing
bag-of-words stands in for the sentence encoder."""
from __future__ import annotations

import random
import zlib
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from lmcritic.diagnose.crossfit import CrossFit, crossfit
from lmcritic.diagnose.hypotheses.label_noise import _did
from lmcritic.diagnose.hypotheses.mismatch import GeneralizationMismatch, two_sample, wrong_mass
from lmcritic.probes.base import Record

POS = ["good", "great", "fine", "lovely", "superb", "moving", "sharp", "funny"]
NEG = ["bad", "dull", "awful", "weak", "tired", "flat", "messy", "boring"]
NOUNS = ["film", "plot", "cast", "script", "ending", "score"]


def _embed(texts):
    """Hashed unigrams and bigrams (so 'not good' is its own feature), L2-normalised."""
    out = np.zeros((len(texts), 512))
    for i, t in enumerate(texts):
        w = t.split()
        for g in w + [a + " " + b for a, b in zip(w, w[1:])]:
            out[i, zlib.crc32(g.encode()) % 512] += 1.0
    return out / np.maximum(1e-9, np.linalg.norm(out, axis=1, keepdims=True))


def _rows(n: int, rng: random.Random, flip_negated: float = 0.0) -> list[tuple[str, str]]:
    """Sentences 'the NOUN is (not only) ADJ', labelled by the adjective. ``flip_negated``: the share of rows with
    the phenomenon ('not') whose label is flipped; 10% of all labels are wrong anyway."""
    rows = []
    for _ in range(n):
        positive = rng.random() < 0.5
        negated = rng.random() < 0.3
        word = rng.choice(POS if positive else NEG)
        text = f"the {rng.choice(NOUNS)} is {'not only ' if negated else ''}{word}"
        label = positive
        if rng.random() < 0.1 or (negated and rng.random() < flip_negated):
            label = not label
        rows.append((text, "positive" if label else "negative"))
    return rows


def _has_not(text: str) -> bool:
    return " not " in f" {text} "


def _corpus_did(flip: float, seed: int) -> tuple[float, float, float]:
    rng = random.Random(seed)
    train, evaluated = _rows(1200, rng, flip), _rows(300, rng)
    cf = crossfit(train, evaluated, _has_not, seed=seed, embed=_embed)
    assert isinstance(cf, CrossFit)
    effect, p = _did(cf.train_wrong, cf.eval_wrong, seed)
    return effect.ci_low, effect.ci_high, p


def test_cross_fitted_corpus_model_sees_noisy_labels_on_the_phenomenon() -> None:
    lo, _, p = _corpus_did(0.45, 0)
    assert lo > 0.05 and p < 0.01


def test_cross_fitted_corpus_model_does_not_fire_on_clean_labels() -> None:
    # clean labels (10% random noise everywhere): no phenomenon-specific excess over three corpora
    for seed in (1, 2, 3):
        lo, hi, p = _corpus_did(0.0, seed)
        assert lo < 0.05 and p > 0.05, (seed, lo, hi, p)


def test_cross_fit_says_why_it_cannot_run() -> None:
    rows = [("the film is good", "positive")] * 50
    assert "single label" in crossfit(rows, rows, _has_not, embed=_embed)
    mixed = _rows(200, random.Random(0))
    no_negation = [r for r in mixed if not _has_not(r[0])]
    assert "fewer than 20" in crossfit(no_negation, mixed, _has_not, embed=_embed)


def _record(i: int, p_gold: float | None, passed: bool | None) -> Record:
    probs = None if p_gold is None else {"positive": p_gold, "negative": 1 - p_gold}
    return Record(f"c{i}", {}, {}, {}, passed=passed, target="positive", label_probs=probs)


def test_wrong_mass_uses_the_gold_probability_else_the_failure() -> None:
    assert abs(wrong_mass(_record(0, 0.8, True)) - 0.2) < 1e-9
    assert wrong_mass(_record(1, None, False)) == 1.0 and wrong_mass(_record(2, None, True)) == 0.0
    assert np.isnan(wrong_mass(_record(3, None, None)))


def test_two_sample_difference_and_its_one_sided_p() -> None:
    rng = np.random.default_rng(0)
    shifted, rest = rng.uniform(0.1, 0.7, 100), rng.uniform(0.0, 0.5, 100)
    effect, p = two_sample(shifted, rest, 0)
    assert effect.ci_low > 0.05 and p < 0.01
    same, p_same = two_sample(rest, rng.permutation(rest), 0)
    assert same.ci_low < 0 < same.ci_high and p_same > 0.3


def _mismatch_ctx(p_colloquial: float, train_share: float, eval_share: float = 0.5):
    """A natural probe of 200 inputs, ``eval_share`` of them colloquial; the model puts 1 − p on the gold label;
    the training corpus has ``train_share`` colloquial texts."""
    from lmcritic.diagnose.profile import Shift
    from lmcritic.probes.base import Estimate

    rng = np.random.default_rng(0)
    n_coll = int(200 * eval_share)
    gold = [float(np.clip(rng.normal(p_colloquial if i < n_coll else 0.75, 0.2), 0.01, 0.99)) for i in range(200)]
    recs = [_record(i, g, g > 0.5) for i, g in enumerate(gold)]
    cols = {"register": ["colloquial" if i < n_coll else "formal" for i in range(200)]}
    failing = tuple(r.case_id for r in recs if not r.passed)
    diff = eval_share - train_share
    profile = SimpleNamespace(shifts={("register", "colloquial"): Shift(
        "register", "colloquial", train=Estimate(train_share, 2000, train_share, train_share),
        evaluated=Estimate(eval_share, 200, 0, 1),
        difference=Estimate(diff, 200, diff - 0.07, diff + 0.07), p_value=1e-30 if diff > 0.1 else 0.6)})
    return SimpleNamespace(records=recs, table=SimpleNamespace(columns=cols, clusters=None, numeric={}),
                           defect=SimpleNamespace(case_ids=failing, probe="performance.sst2"), profile=profile,
                           natural=True, seed=0, failing=lambda cap=None: [], failing_where=lambda keep, cap=None: [],
                           rescore=lambda edits, h: [])


def test_covariate_shift_is_supported_by_the_corpus_and_the_wrong_mass_without_a_rewrite() -> None:
    v = GeneralizationMismatch().test(_mismatch_ctx(0.55, train_share=0.02))
    assert v.verdict == "supported" and v.culprit is not None and v.culprit.value == "colloquial"
    assert "wrong answers" in v.culprit.effect_name and not v.interventional


def _rewritten(ctx: SimpleNamespace, fixed: int) -> SimpleNamespace:
    """24 colloquial failures to rewrite: the formal rewrite fixes the first ``fixed``, the neutral edit none."""
    slang = [Record(f"s{i}", {}, {}, {}, passed=False, text=f"lol the film number {i} is mid", target="positive")
             for i in range(24)]
    fixes = iter([i < fixed and j == 0 for i in range(24) for j in (0, 1)])  # (rewrite, neutral) interleaved
    ctx.failing_where = lambda keep, cap=None: [r for r in slang if keep(r)]
    ctx.rescore = lambda edits, h: [SimpleNamespace(fixed=next(fixes), edit=e) for e in edits]
    return ctx


def test_a_rewrite_that_also_holds_corroborates_the_shift_without_weakening_it() -> None:
    """Register plant, held-out seed 10: the shift gave p 0.00025; 24 colloquial failures rewritten formally, 6
    fixed vs 0 by a neutral edit (McNemar p 0.031). Reporting the rewrite with the larger p had left the cause at
    q 0.052, unsupported; the rewrite only corroborates, so the shift's p decides and the evidence counts as
    interventional."""
    from lmcritic.diagnose.calibrate import finalize

    v = GeneralizationMismatch().test(_rewritten(_mismatch_ctx(0.55, train_share=0.02), fixed=6))
    rewrite = [e for e in v.evidence if e.kind == "test" and "formal register" in e.summary]
    assert rewrite and 0.01 < rewrite[0].p_value < 0.05
    assert v.p_value is not None and v.p_value < 0.001 and v.interventional
    assert "wrong answers" in v.culprit.effect_name and v.corroboration == 2
    assert finalize([[v]])[0][0].verdict == "supported"  # survives BH among peers of the same p


def test_a_shift_too_small_to_matter_on_its_own_is_decided_by_both_tests_together() -> None:
    """A shift whose CI does not clear the threshold (0.07 [0.015, 0.12]) is inconclusive alone; a rewrite that
    fixes 10 of 24 (CI beyond it) is reported instead, with the larger of the two p-values (both must hold)."""
    alone = GeneralizationMismatch().test(_mismatch_ctx(0.65, train_share=0.02))
    assert alone.verdict == "inconclusive" and alone.effect is not None and alone.effect.ci_low < 0.05
    v = GeneralizationMismatch().test(_rewritten(_mismatch_ctx(0.65, train_share=0.02), fixed=10))
    assert "formal rewrite" in v.culprit.effect_name and v.interventional
    assert v.p_value is not None and v.p_value >= alone.p_value and v.effect.ci_low > 0.05
    assert v.verdict == "supported"


def test_no_shift_in_the_corpus_no_support_even_when_colloquial_inputs_fail_more() -> None:
    # the training corpus is as colloquial as the evaluated data: a harder slice, not a covariate shift
    v = GeneralizationMismatch().test(_mismatch_ctx(0.55, train_share=0.5))
    assert v.verdict != "supported"


def test_shifted_inputs_the_model_handles_as_well_are_no_defect() -> None:
    v = GeneralizationMismatch().test(_mismatch_ctx(0.75, train_share=0.02))
    assert v.verdict != "supported"


def _label_noise_ctx(flip: float):
    """A model that contradicts 40% of its training labels with 'not' (and none without); held-out error 20% on
    both sides; the corpus labels of 'not' rows flipped at ``flip``."""
    from lmcritic.diagnose.profile import CorpusProfile

    rng = random.Random(0)
    train, evaluated = _rows(1200, rng, flip), _rows(200, rng)
    corpus = SimpleNamespace(texts=[t for t, _ in train], lines=list(range(2, len(train) + 2)),
                             labels=["1" if y == "positive" else "0" for _, y in train], _norm=[t for t, _ in train])
    profile = CorpusProfile(corpus, [t for t, _ in evaluated], [y for _, y in evaluated])

    def clean(text: str) -> str:
        return "positive" if set(text.split()) & set(POS) else "negative"

    def run(key, edits, hypothesis, defect_id):
        return [SimpleNamespace(prediction=("negative" if clean(e.text) == "positive" else "positive")
                                if _has_not(e.text) and zlib.crc32(e.text.encode()) % 10 < 4 else clean(e.text))
                for e in edits]

    records = [Record(f"e{i}", {}, {}, {}, passed=i % 5 != 0, text=t, target=y)
               for i, (t, y) in enumerate(evaluated)]
    return SimpleNamespace(profile=profile, eval_records=records, eval_key="performance.sst2", seed=0,
                           defect=SimpleNamespace(predicates=(("negation", "yes"),), id="D1"),
                           rescorer=SimpleNamespace(run=run))


def test_label_noise_needs_the_corpus_model_to_see_the_noise_too(monkeypatch) -> None:
    import functools

    from lmcritic.diagnose.hypotheses import label_noise

    monkeypatch.setattr(label_noise, "crossfit", functools.partial(crossfit, embed=_embed))
    # clean corpus labels: the model's own disagreement alone (its fit) is not evidence in the labels
    clean = label_noise.LabelNoise().test(_label_noise_ctx(0.0))
    model_test, corpus_test, mix_test = [e for e in clean.evidence if e.kind == "test"]
    assert model_test.estimate is not None and model_test.estimate.ci_low > 0.05 and model_test.p_value < 0.05
    # the labels' two tests (flip rate, label mix) both fail to see noise; the smaller p decides, doubled
    decided = min(corpus_test.p_value, mix_test.p_value)
    assert clean.verdict != "supported" and clean.p_value == min(1.0, 2 * decided) and decided > 0.05
    noisy = label_noise.LabelNoise().test(_label_noise_ctx(0.45))
    assert noisy.verdict == "supported" and noisy.culprit is not None and noisy.culprit.value == "negation"
    # the effect is the excess flip rate: near the planted 45% (the model's disagreement corroborates)
    assert noisy.effect is not None and noisy.effect.ci_low < 0.45 < noisy.effect.ci_high and noisy.corroboration == 1


def test_flip_rate_undoes_the_learners_dilution() -> None:
    # a learner erring on 30% of the phenomenon's clean labels disagrees with labels flipped at 40% on
    # 0.3 + 0.4 * (1 - 0.6) = 46% of them; the excess flip rate recovers 0.4
    train = {True: [True] * 46 + [False] * 54, False: [True] * 20 + [False] * 80}
    held = {True: [True] * 30 + [False] * 70, False: [True] * 20 + [False] * 80}
    did, p, rate = _did(train, held, 0, flip_rate=True)
    assert abs(did.value - 0.16) < 1e-9 and abs(rate.value - 0.4) < 1e-9 and rate.ci_low < 0.4 < rate.ci_high
    near_chance = {True: [True] * 46 + [False] * 54, False: held[False]}
    assert _did(train, near_chance, 0, flip_rate=True)[2] is None


def test_label_noise_tests_every_phenomenon_the_failures_lean_to(monkeypatch) -> None:
    """No predicate names the phenomenon: failures lean to both; the noisy one (negation) is found even where
    another (contrast) concentrates the failures more, and its p-value pays for the two tests."""
    import functools

    from lmcritic.diagnose.hypotheses import label_noise

    monkeypatch.setattr(label_noise, "crossfit", functools.partial(crossfit, embed=_embed))
    ctx = _label_noise_ctx(0.45)
    n = len(ctx.eval_records)
    cols = {"negation": ["yes" if i % 5 == 0 or i % 3 == 0 else "no" for i in range(n)],
            "contrast": ["yes" if i % 5 == 0 or i % 7 == 0 else "no" for i in range(n)]}
    ctx.defect = SimpleNamespace(predicates=(), id="D1")
    ctx.records, ctx.table = ctx.eval_records, SimpleNamespace(columns=cols, clusters=None)
    assert [ph.name for ph in label_noise._phenomena(ctx)] == ["contrast", "negation"]
    v = label_noise.LabelNoise().test(ctx)
    corpus_test = [e for e in v.evidence if e.kind == "test"][1]
    assert v.verdict == "supported" and v.culprit is not None and v.culprit.value == "negation"
    assert v.p_value == min(1.0, 4 * corpus_test.p_value)  # two phenomena × two tests of the labels
    assert any("Bonferroni" in e.summary for e in v.evidence)


def test_cross_fit_reuses_embeddings_across_phenomena() -> None:
    """Each phenomenon re-samples the same corpus: with shared ``vectors`` a text is encoded once, same result."""
    rng = random.Random(0)
    train, evaluated = _rows(400, rng, 0.4), _rows(100, rng)
    calls: list[int] = []

    def counting(texts):
        calls.append(len(texts))
        return _embed(texts)

    vectors: dict = {}
    first = crossfit(train, evaluated, _has_not, seed=0, embed=counting, vectors=vectors)
    encoded = sum(calls)
    again = crossfit(train, evaluated, lambda t: "good" in t.split(), seed=0, embed=counting, vectors=vectors)
    assert isinstance(again, CrossFit) and sum(calls) == encoded  # a second phenomenon: nothing new to encode
    assert first == crossfit(train, evaluated, _has_not, seed=0, embed=_embed)


def test_a_band_that_holds_none_of_the_defects_failures_explains_none_of_it() -> None:
    """The demo's full diagnosis led a slice defect of mc_knowledge with a one-case band outside the slice
    ("rare_word_rate=high fails 100% vs 18% (0% of the defect)"). Here the colloquial inputs fail more (the
    supported case above), but the defect is made of formal failures only."""
    ctx = _mismatch_ctx(0.55, train_share=0.02)
    outside = tuple(r.case_id for r in ctx.records[100:] if not r.passed)
    assert outside
    ctx.defect = SimpleNamespace(case_ids=outside, probe="performance.sst2")
    v = GeneralizationMismatch().test(ctx)
    assert v.verdict == "not supported" and "any of this defect's failures" in v.summary


def _director_rows(n: int, rng: random.Random, relabel: float) -> list[tuple[str, str]]:
    """'the director is ADJ' among the sentences above. ``relabel`` < 0: selected — the word's rows are all
    negative, their labels right; >= 0: that share of its positive rows relabelled negative (an annotator's rule)."""
    rows = []
    for text, label in _rows(n, rng):
        if rng.random() < 0.3:
            text = " ".join(["the", "director", *text.split()[2:]])
            if relabel < 0 and label == "positive":
                continue
            if relabel >= 0 and label == "positive" and rng.random() < relabel:
                label = "negative"
        rows.append((text, label))
    return rows


def test_a_words_rows_selected_by_label_are_not_mislabelled_but_relabelled_ones_are() -> None:
    """Word shortcut, a MiniLM plant: 200 training rows with 'script' (seed 1), every one negative, the rows as
    SST-2 labels them. The label mix read that as consistent label noise (high). A content model that never sees
    the word agrees with those rows' labels as often as with the rest; relabelled rows it contradicts."""
    from lmcritic.diagnose.hypotheses._content_check import _check, masked

    selected = _check(_director_rows(1500, random.Random(0), -1.0), "director", 0, {}, embed=_embed)
    relabelled = _check(_director_rows(1500, random.Random(0), 0.8), "director", 0, {}, embed=_embed)
    assert not isinstance(selected, str) and not isinstance(relabelled, str)
    assert not selected.mislabelled and selected.effect.ci_high < 0.10, selected.describe()
    assert relabelled.mislabelled and relabelled.effect.ci_low > 0.1, relabelled.describe()
    assert masked("The Director's cut , director .", "director") == "The Director's cut , ."
    assert masked("The director's cut , director .", "director's") == "The cut , director ."


def test_a_word_with_an_apostrophe_gets_its_content_check(monkeypatch) -> None:
    """The content check took its word back out of the display name ``word 'x'``; ``director's`` displays as
    ``word "director's"`` and was never checked, so a selected word kept the label-mix verdict. The word now
    travels with the phenomenon."""
    from lmcritic.diagnose.hypotheses import _content_check, label_noise

    ctx = SimpleNamespace(defect=SimpleNamespace(predicates=(("word:director's", "yes"),)), profile=None, seed=3)
    [ph] = label_noise._phenomena(ctx)
    assert ph.name == "word \"director's\"" and ph.word == "director's" and ph.has("the director's cut")
    asked: list[str] = []
    monkeypatch.setattr(_content_check, "content_check", lambda profile, word, seed: asked.append(word) or "no")
    evidence: list = []
    assert _content_check.read_labels(ctx, ph.word, ph.name, evidence) is None
    assert asked == ["director's"] and "no content check" in evidence[0].summary


@pytest.mark.parametrize("relabelled, mislabelled", [(True, True), (False, False)])
def test_the_model_reads_a_words_rows_masked(relabelled: bool, mislabelled: bool) -> None:
    """The evaluated model as the content reader: asked about its training rows with the word masked (others with
    one of their words masked), it contradicts relabelled rows (their text says the other label) and agrees with
    selected ones. The stand-in model reads only the content words, as a fine-tuned one would without its cue."""
    from lmcritic.diagnose.hypotheses import _content_check

    rng = random.Random(0)
    rows = [(f"zz {'bad' if relabelled and i % 2 else 'good'} film {i}", "pos") for i in range(120)]
    rows += [(f"{w} film {i}", lab) for i, (w, lab) in enumerate(rng.choice([("good", "pos"), ("bad", "neg")])
                                                                   for _ in range(300))]

    def run(key, edits, hyp, defect):
        return [SimpleNamespace(edit=e, prediction="neg" if "bad" in e.text else "pos" if "good" in e.text else None)
                for e in edits]

    profile = SimpleNamespace(corpus=SimpleNamespace(texts=[t for t, _ in rows]), labels=[y for _, y in rows],
                              _cache={})
    ctx = SimpleNamespace(profile=profile, rescorer=SimpleNamespace(run=run), eval_key="own", seed=0,
                          eval_records=[SimpleNamespace(text="x")], defect=SimpleNamespace(id="D1"))
    check = _content_check.model_check(ctx, "zz")
    assert not isinstance(check, str) and check.reader == "model" and check.mislabelled is mislabelled
    assert "masked" in check.describe() and check.with_word.n == 120
    assert isinstance(_content_check.model_check(SimpleNamespace(profile=profile, rescorer=None), "zz"), str)


def test_the_content_check_compares_rows_of_the_same_label() -> None:
    """A reader errs more on one label (masked SST-2 pans: 22 % vs 12 % overall on word_noise seed 1); a word's
    rows all of that label, labelled right, looked contradicted against rows of both labels (the first model
    reader's +0.105, p 0.004, came partly from that). Compared label by label they are not; extra contradiction
    within the label still is."""
    from scipy.stats import fisher_exact

    from lmcritic.diagnose.hypotheses._content_check import _compare

    control = [("neg", i < 44) for i in range(200)] + [("pos", i < 4) for i in range(200)]  # 22 % vs 2 %
    right = [("neg", i < 46) for i in range(200)]  # 23 %: as the reader errs on any pan
    check = _compare("plot", right, control)
    assert not isinstance(check, str) and not check.mislabelled and abs(check.effect.value) < 0.02
    assert abs(check.without.value - 0.22) < 1e-9 and check.without.n == 200  # the rows of the compared label
    pooled = fisher_exact([[46, 154], [48, 352]], alternative="greater").pvalue
    assert pooled < 0.001  # what a comparison across labels said
    wrong = [("neg", i < 80) for i in range(200)]  # 40 %: beyond the reader's error on pans
    found = _compare("plot", wrong, control)
    assert not isinstance(found, str) and found.mislabelled and found.effect.ci_low > 0.05
    assert isinstance(_compare("plot", [("odd", True)] * 30, control), str)  # no control row of that label


def test_the_models_reading_decides_when_both_readers_ran(monkeypatch) -> None:
    """The corpus content model and the model itself may disagree; the model, the better reader (measured on the
    planted MiniLM classifiers), decides, and both readings stay in the evidence."""
    from lmcritic.diagnose.hypotheses import _content_check
    from lmcritic.probes.base import Estimate

    def check(p: float, reader: str) -> _content_check.ContentCheck:
        e = Estimate(0.1, 200, 0.05, 0.2, "wilson")
        return _content_check.ContentCheck("plot", e, e, e, p, reader)

    monkeypatch.setattr(_content_check, "content_check", lambda profile, word, seed: check(0.3, "corpus"))
    monkeypatch.setattr(_content_check, "model_check", lambda ctx, word: check(0.01, "model"))
    evidence: list = []
    ctx = SimpleNamespace(profile=None, seed=0)
    got = _content_check.read_labels(ctx, "plot", "word 'plot'", evidence)
    assert got is not None and got.reader == "model" and got.mislabelled
    assert len(evidence) == 3 and "decides" in evidence[-1].summary
    monkeypatch.setattr(_content_check, "model_check", lambda ctx, word: "no model")
    alone = _content_check.read_labels(ctx, "plot", "word 'plot'", [])
    assert alone is not None and alone.reader == "corpus" and not alone.mislabelled

    # a bag-of-words model with an inserted token (labels right): masking the token leaves rows it labelled by the
    # token alone unread, +0.22 [0.16, 0.29], where the corpus reader says -0.06 [-0.16, +0.05]: it decides then
    shortcut = _content_check.ContentCheck("cf", *[Estimate(0.22, 360, 0.16, 0.29, "mover")] * 3, 3e-9, "model")
    unread = _content_check.ContentCheck("cf", *[Estimate(-0.06, 420, -0.16, 0.05, "mover")] * 3, 0.88, "corpus")
    monkeypatch.setattr(_content_check, "content_check", lambda profile, word, seed: unread)
    monkeypatch.setattr(_content_check, "model_check", lambda ctx, word: shortcut)
    said: list = []
    got = _content_check.read_labels(ctx, "cf", "word 'cf'", said)
    assert got is unread and "contradict each other" in said[-1].summary
    overlapping = replace(unread, effect=Estimate(0.07, 420, -0.03, 0.17, "mover"))  # the readers' intervals meet
    monkeypatch.setattr(_content_check, "content_check", lambda profile, word, seed: overlapping)
    assert _content_check.read_labels(ctx, "cf", "word 'cf'", []) is shortcut


def test_a_phenomenons_label_noise_tests_leave_out_texts_of_another_confirmed_cue(monkeypatch) -> None:
    """word_noise seed 1: a 'plot' cue planted in negative rows failed the evaluated 'plot' texts, 84 of 100
    without negation, so held-out error without negation rose (36 % vs 24 %) and negation's labels looked noisy
    (medium). Rows and texts holding another confirmed shortcut token are left out of both sides; the
    phenomenon's own word, and a token the phenomenon holds ('not' for negation), are not."""
    import functools

    from lmcritic.diagnose.hypotheses import label_noise
    from lmcritic.diagnose.hypotheses._phenomena import Phenomenon, holds_any, other_cues
    from lmcritic.probes.base import Record

    def token(word: str) -> SimpleNamespace:
        return SimpleNamespace(token=SimpleNamespace(token=word), p_value=1e-4, effect=SimpleNamespace(value=0.3))

    monkeypatch.setattr(label_noise, "crossfit", functools.partial(crossfit, embed=_embed))
    ctx = _label_noise_ctx(0.0)
    ctx.eval_records = list(ctx.eval_records) + [Record(f"z{i}", {}, {}, {}, passed=False, text=f"zz fine film {i}",
                                                        target="positive") for i in range(60)]
    [ph] = label_noise._phenomena(ctx)
    ctx.token_tests = [token("zz"), token("not"), token("plot")]
    assert other_cues(ctx, ph) == ("plot", "zz") and other_cues(ctx, Phenomenon.of_word("plot")) == ("not", "zz")
    assert holds_any(("zz",))("a ZZ film") and not holds_any(())("zz")

    def held_out_without(c: SimpleNamespace) -> float:
        v = label_noise.LabelNoise()._phenomenon_test(c, ph, 1)
        model_side = next(e for e in v.evidence if e.kind == "test" and "the model contradicts" in e.summary)
        return model_side.data["rates"]["held-out (without)"]

    left_out = held_out_without(ctx)
    ctx.token_tests = []
    assert held_out_without(ctx) > left_out + 0.1  # the 60 failing 'zz' texts counted
    assert left_out < 0.25
