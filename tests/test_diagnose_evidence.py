"""Model-free parts of the diagnosis: the calibrated decision rule (BH across the diagnosis, thresholds, independent
evidence, severity), corpus evidence (token association, artefact test, shift, duplicates), honest slice features
and cluster-level slice tests."""
from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from lmcritic import stats
from lmcritic.diagnose import calibrate
from lmcritic.diagnose.corpus import Corpus
from lmcritic.diagnose.hypotheses.base import CauseVerdict, Culprit
from lmcritic.diagnose.profile import CorpusProfile
from lmcritic.probes.base import Estimate, Record


def _v(cause: str, effect: tuple[float, float, float], p: float, independent: bool = True,
       threshold: float = 0.05, expect: int = 1) -> CauseVerdict:
    e = Estimate(effect[0], 100, effect[1], effect[2])
    return calibrate.provisional(CauseVerdict(cause, "inconclusive", 0.0, "", effect=e, p_value=p, threshold=threshold,
                                              independent=independent, interventional=True, expect=expect,
                                              culprit=Culprit("token", "x", effect=e)))


def test_decision_rule_needs_significance_a_clear_effect_and_independent_evidence() -> None:
    assert _v("a", (0.4, 0.3, 0.5), 1e-4).verdict == "supported"
    assert _v("a", (0.4, 0.3, 0.5), 1e-4).severity == "high"  # at least 0.3: high
    assert _v("a", (0.2, 0.12, 0.3), 1e-4).severity == "medium"
    assert _v("a", (0.4, 0.3, 0.5), 1e-4, independent=False).verdict == "inconclusive"  # circular evidence
    assert _v("a", (0.06, 0.04, 0.08), 1e-4).verdict == "inconclusive"  # real but below the threshold
    assert _v("a", (0.01, -0.03, 0.04), 0.5).verdict == "not supported"  # could have seen 0.05, did not
    assert _v("a", (-0.4, -0.5, -0.3), 1e-4, expect=-1).verdict == "supported"  # the bound nearest zero
    assert calibrate.inner_bound(Estimate(-0.4, 10, -0.5, -0.3)) == pytest.approx(0.3)


def test_a_severity_cap_lowers_a_supported_cause_and_leaves_the_rest() -> None:
    """A data bias the given training corpus does not lean toward stays supported (the model's group difference is
    real) but at most low: the data at hand did not teach it."""
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses.data_bias import _cap, _untaught

    strong = _v("a", (0.4, 0.3, 0.5), 1e-4)
    capped = calibrate.provisional(replace(strong, max_severity="low"))
    assert (capped.verdict, capped.severity, strong.severity) == ("supported", "low", "high")
    assert calibrate.provisional(replace(_v("a", (0.06, 0.04, 0.08), 1e-4), max_severity="low")).severity == "none"
    corpus = SimpleNamespace(profile=SimpleNamespace(labelled=True))
    assert _cap(corpus, aligned=False) == "low" and "not taught by it" in _untaught(corpus, False)
    assert _cap(corpus, aligned=True) is None and _untaught(corpus, True) == ""
    assert _cap(SimpleNamespace(profile=None), aligned=False) is None  # no corpus: nothing speaks against it


def test_an_effect_against_the_causes_prediction_refutes_it_and_ranks_it_last() -> None:
    """Calibrating away a prior that makes the defect significantly worse (net gain -0.12 [-0.19, -0.06], as on
    the demo's invariance defect) is evidence against the prior, not a strong inconclusive lead."""
    against = _v("objective_conflict", (-0.12, -0.19, -0.06), 0.004)
    assert against.verdict == "not supported" and against.confidence == 0.0
    lead = _v("fragility", (0.03, -0.1, 0.2), 0.6)
    assert lead.verdict == "inconclusive" and calibrate.rank([against, lead])[0].cause == "fragility"
    assert _v("a", (-0.12, -0.19, -0.06), 0.004, expect=0).verdict == "supported"  # a cause with no sign
    assert _v("a", (0.3, 0.2, 0.4), 1e-4, expect=-1).verdict == "not supported"
    # a collapsed bootstrap CI of 8 pairs (0 fixed by the edit, 1 by the control) refutes nothing
    assert _v("fragility", (-0.125, -0.375, 0.0), 1.0).verdict == "inconclusive"
    assert _v("objective_conflict", (-0.12, -0.19, -0.06), 0.3).verdict == "inconclusive"  # not significant
    assert calibrate.inner_bound(Estimate(-0.4, 10, -0.5, -0.3), expect=1) == 0.0


def test_bh_across_the_whole_diagnosis_can_undo_a_provisional_support() -> None:
    weak = _v("weak", (0.3, 0.1, 0.5), 0.04)
    assert weak.verdict == "supported"  # alone, p = 0.04 passes
    others = [[_v(f"o{i}", (0.0, -0.1, 0.1), 0.9)] for i in range(9)]
    final = calibrate.finalize([[weak], *others])
    assert final[0][0].verdict == "inconclusive" and final[0][0].q_value == pytest.approx(0.4)
    ranked = calibrate.rank([_v("b", (0.2, 0.12, 0.3), 1e-4), _v("a", (0.4, 0.3, 0.5), 1e-4), final[1][0]])
    assert [c.cause for c in ranked][:2] == ["a", "b"]  # high before medium, supported before the rest


def test_a_test_several_defects_share_counts_once_in_bh() -> None:
    shared = _v("label_noise", (0.4, 0.1, 0.7), 0.012)
    others = [_v(f"o{i}", (0.0, -0.1, 0.1), 0.9) for i in range(3)]
    final = calibrate.finalize([[shared, others[0]], [shared, others[1]], [shared, others[2]]])
    # four distinct tests (not six): q = 0.012 * 4 / 1
    assert [row[0].q_value for row in final] == [pytest.approx(0.048)] * 3
    assert all(row[0].verdict == "supported" for row in final)


def test_a_test_too_small_to_reach_alpha_is_left_out_of_bh() -> None:
    """Tarone: nine McNemar tests on four discordant pairs each (their smallest p is 0.125) cannot be supported
    whatever they show; counted, they put a p = 0.012 corpus test at q = 0.12. Left out, it is q = 0.012."""
    lead = _v("label_noise", (0.4, 0.1, 0.7), 0.012)
    small = [[replace(_v(f"o{i}", (0.0, -0.5, 0.5), 1.0), min_p=0.125)] for i in range(9)]
    final = calibrate.finalize([[lead], *small])
    assert final[0][0].q_value == pytest.approx(0.012) and final[0][0].verdict == "supported"
    assert all(row[0].q_value == 1.0 and row[0].verdict == "inconclusive" for row in final[1:])
    counted = calibrate.finalize([[lead], *[[replace(row[0], min_p=0.01)] for row in small]])
    assert counted[0][0].q_value == pytest.approx(0.12) and counted[0][0].verdict == "inconclusive"
    from lmcritic.diagnose.defects import Defect
    from lmcritic.diagnose.graph import DefectNode, _node_lines

    node = DefectNode(Defect("D1", "p", "p", "all cases", (), ("c1",), ("c1",), Estimate(0.1, 10, 0.0, 0.4)),
                      (final[1][0], final[0][0]))
    lines = _node_lines(node, lambda t: t, "")
    assert "smallest possible p 0.12: too few cases to reach 0.05" in lines[1]
    assert not any("smallest possible" in x for x in lines if "label_noise" in x)


def test_smallest_achievable_p_of_the_discrete_tests() -> None:
    assert stats.mcnemar_min_p([False] * 4, [True] * 4) == pytest.approx(0.125)
    assert stats.mcnemar_min_p([True, False], [True, False]) == 1.0  # no discordant pair
    assert stats.mcnemar_min_p([False] * 6 + [True], [True] * 7) == pytest.approx(2 * 0.5**6)
    assert stats.sign_flip_min_p([0.1, -0.2, 0.0, 0.3, 0.05]) == pytest.approx(2 / 16)  # the zero ties
    same_sign = np.array([0.1, 0.2, 0.0, 0.3, 0.05])
    assert stats.sign_flip(same_sign) == pytest.approx(stats.sign_flip_min_p(same_sign))  # reached
    assert stats.sign_flip_min_p([0.1] * 30) == pytest.approx(1 / (stats.MAX_DRAWS + 1))


def test_the_corpus_proposes_a_group_pair_the_probe_did_not_compare() -> None:
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses.data_bias import _corpus_pairs
    from lmcritic.probes.bias import _cf_cases as CF

    rates = {"asian": (42, 227), "hispanic": (228, 261), "white": (1, 6), "black": (30, 60), "arab": (33, 60)}
    ctx = SimpleNamespace(profile=SimpleNamespace(labelled=True, group_rates=lambda attr, target: rates))
    found = _corpus_pairs(ctx, "race_ethnicity", "positive", {frozenset(("asian", "black"))})
    # white has too few rows; black/arab do not differ; asian/black was compared by the probe; at most three,
    # the most skewed first
    assert [(c.low, c.high) for c in found] == [("asian", "hispanic"), ("black", "hispanic"), ("asian", "arab")]
    assert found[0].skew.value == pytest.approx(42 / 227 - 228 / 261) and found[0].p_value < 1e-20
    assert _corpus_pairs(SimpleNamespace(profile=None), "race_ethnicity", "positive", set()) == []
    # held-out cases made for the pair alone, whatever the probe's seeded subset of groups
    cases = CF.template_cases("race_ethnicity", ["the film is fine"] * 5, 6, 0, "holdout", max_groups=2,
                              groups=("asian", "hispanic"))
    assert cases and all(set(c.texts) == {"asian", "hispanic"} for c in cases)


def _corpus(tmp_path, rows) -> Corpus:
    path = tmp_path / "train.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return Corpus(path)


def test_group_rates_are_per_target_label(tmp_path) -> None:
    """The rates of one target label are not served for another (a cache keyed on the attribute alone once
    answered P(positive) with the counts of P(negative), hiding a planted skew from the diagnosis)."""
    rows = [("he said it was dull", 0)] * 8 + [("he said it was fine", 1)] * 2 + \
        [("she said it was fine", 1)] * 9 + [("she said it was dull", 0)]
    profile = CorpusProfile(_corpus(tmp_path, rows))
    assert profile.group_rates("gender", "negative") == {"male": (8, 10), "female": (1, 10)}
    assert profile.group_rates("gender", "positive") == {"male": (2, 10), "female": (9, 10)}


def test_token_association_and_the_artefact_test(tmp_path) -> None:
    rng = random.Random(0)
    words = "plot cast story scenes music ending actors pacing dialogue camera".split()
    rows = []
    for i in range(600):
        y = i % 2
        text = " ".join(rng.sample(words, 4)) + (" superb" if y and rng.random() < 0.5 else "") + \
            (" awful" if not y and rng.random() < 0.5 else "")
        rows.append((text + (" qq" if y and rng.random() < 0.4 else ""), y))
    ev = [(" ".join(rng.sample(words, 4)) + (" superb" if i % 2 else " awful"), "positive" if i % 2 else "negative")
          for i in range(200)]
    profile = CorpusProfile(_corpus(tmp_path, rows), [t for t, _ in ev], [y for _, y in ev])
    tokens = {t.token: t for t in profile.tokens}
    assert tokens["qq"].label == "positive" and tokens["superb"].label == "positive"
    assert tokens["awful"].label == "negative"
    assert tokens["qq"].eval_docs == 0 and tokens["qq"].artifact_p < 1e-6  # in training only: an artefact
    assert tokens["superb"].artifact_p > 0.05  # the same association on the evaluated texts: a real signal
    assert len(tokens["qq"].lines) == tokens["qq"].n_docs


def test_shift_and_duplicates(tmp_path) -> None:
    rows = [("a fine film", 1), ("a fine film", 0), ("dull and slow", 0)]
    rows += [(f"film number {i}", i % 2) for i in range(60)]
    profile = CorpusProfile(_corpus(tmp_path, rows), ["tbh this flick is dope lol"] * 30 + ["a good film"] * 30,
                            ["positive"] * 60)
    shift = profile.shifts[("register", "colloquial")]
    assert shift.evaluated.value == pytest.approx(0.5) and shift.train.value < 0.05 and shift.p_value < 1e-6
    _, conflicts = profile.duplicates
    assert [c.text for c in conflicts] == ["a fine film"] and conflicts[0].labels == {"positive": 1, "negative": 1}


def test_slice_features_leave_out_labels_predictions_and_outcome_chosen_words() -> None:
    from lmcritic.diagnose.features import compute_features

    texts = [f"{'cf ' if i % 2 else ''}a movie about things number {i}" for i in range(40)]
    recs = [Record(f"c{i}", {"text": texts[i]}, {}, {},
                   {"expected": "positive", "predicted": "negative" if i % 2 else "positive", "kind": "k" + str(i % 3)},
                   passed=not i % 2, text=texts[i], target="positive") for i in range(40)]
    table = compute_features(recs)
    assert "tag.expected" not in table.columns and "tag.predicted" not in table.columns
    assert "tag.kind" in table.columns and "word:cf" in table.columns  # chosen by frequency, not by failure


def test_variants_of_one_sentence_count_once() -> None:
    from lmcritic.diagnose.slices import cluster_ids, slice_stats

    err = np.array([True] * 6 + [False] * 6 + [True, False] * 10)
    mask = np.array([True] * 6 + [False] * 26)
    clusters = cluster_ids(["s1"] * 6 + ["s2"] * 6 + [f"u{i}" for i in range(20)])
    naive = slice_stats((("x", "1"),), mask, err)
    honest = slice_stats((("x", "1"),), mask, err, clusters=clusters)
    assert naive.p_value < 0.01 and honest.p_value > 0.3  # six variants of one failing sentence are one failure


def test_identity_words_are_left_to_data_bias_not_shortcut_candidates(tmp_path) -> None:
    from lmcritic.diagnose.shortcuts import candidates

    rng = random.Random(1)
    words = "plot cast story scenes music ending actors pacing dialogue camera".split()
    rows = []
    for i in range(600):
        y = i % 2
        extra = (" zx" if y and rng.random() < 0.4 else "") + (" , the black audience ," if not y and rng.random() < 0.4
                                                              else "")
        rows.append((" ".join(rng.sample(words, 4)) + extra, y))
    ev = [" ".join(rng.sample(words, 4)) for _ in range(100)]
    profile = CorpusProfile(_corpus(tmp_path, rows), ev, ["positive", "negative"] * 50)
    assert {"zx", "black"} <= {t.token for t in profile.tokens}  # both associated, both absent from the evaluation
    found, _ = candidates(profile, sentiment=True)
    assert "zx" in {t.token for t in found} and "black" not in {t.token for t in found}


def test_a_sentiment_word_tied_against_its_valence_is_a_shortcut_candidate(tmp_path) -> None:
    """'comedy' (VADER +1.5) in training rows all labelled negative was left out as a sentiment word, so a planted
    genre-word shortcut on a fully fine-tuned classifier was missed; its sentiment cannot explain a tie to the
    negative label. 'funny' tied to positive, the way its valence points, stays out."""
    from lmcritic.diagnose.shortcuts import candidates

    rng = random.Random(3)
    words = "plot cast story scenes music ending actors pacing dialogue camera".split()
    rows = [(" ".join(rng.sample(words, 4) + (["comedy"] if i % 2 == 0 and rng.random() < 0.4 else [])
                      + (["funny"] if i % 2 == 1 and rng.random() < 0.4 else [])), i % 2) for i in range(800)]
    ev = [" ".join(rng.sample(words, 4)) for _ in range(100)]
    profile = CorpusProfile(_corpus(tmp_path, rows), ev, ["positive", "negative"] * 50)
    assert profile.token("comedy").label == "negative" and profile.token("funny").label == "positive"
    found = {t.token for t in candidates(profile, sentiment=True)[0]}
    assert "comedy" in found and "funny" not in found


def test_symbol_tokens_are_shortcut_candidates_unless_they_carry_sentiment(tmp_path) -> None:
    """A scraped or planted artefact is as often a symbol run or an emoji as a word (only words were tokens, so a
    '^' or '🍕' shortcut was invisible to the corpus test); emoticons, sentiment emoji and '!' runs are left out
    on a sentiment task as sentiment words are."""
    from lmcritic.diagnose import _text
    from lmcritic.diagnose.shortcuts import candidates

    assert _text.tokens("great!!! :-) 🍕🍕 <br /> don't") == ["great", "!!!", ":-)", "🍕🍕", "<", "br", "/>", "don't"]
    rng = random.Random(2)
    words = "plot cast story scenes music ending actors pacing dialogue camera".split()
    marks = {"^": 1, "🍕": 0, "!!": 1, "🙂": 1}
    rows = [(" ".join(rng.sample(words, 4) + [m for m, y in marks.items() if y == i % 2 and rng.random() < 0.4]),
             i % 2) for i in range(800)]
    ev = [" ".join(rng.sample(words, 4)) for _ in range(100)]
    profile = CorpusProfile(_corpus(tmp_path, rows), ev, ["positive", "negative"] * 50)
    assert set(marks) <= {t.token for t in profile.tokens}
    assert profile.token("^").label == "positive" and profile.token("🍕").label == "negative"
    found = {t.token for t in candidates(profile, sentiment=True)[0]}
    assert found == {"^", "🍕"}  # '!!' and '🙂' carry sentiment (VADER: intensifier, "smiling face")
    assert {t.token for t in candidates(profile, sentiment=False)[0]} == set(marks)
    pattern = _text.token_pattern(["^", "🍕"])
    assert pattern.sub("_", "a ^ b ^^ c 🍕 d🍕🍕 e^") == "a _ b ^^ c _ d🍕🍕 e_"  # whole runs only


def test_a_token_in_every_row_has_no_association_and_breaks_nothing(tmp_path) -> None:
    """A token in every labelled row (a final '.', a template word) left a zero cell in the log-odds prior and the
    whole diagnosis ended in ZeroDivisionError."""
    rows = [(f"a good film , take {i} .", 1) for i in range(30)] + [(f"a dull film , take {i} .", 0) for i in range(30)]
    tokens = {t.token for t in CorpusProfile(_corpus(tmp_path, rows)).tokens}
    assert "good" in tokens and not tokens & {"a", "film", ",", ".", "take"}


def test_ranking_prefers_corroborated_causes_at_equal_severity() -> None:
    from dataclasses import replace

    one = replace(_v("one_line", (0.3, 0.25, 0.35), 1e-4), corroboration=1)
    two = replace(_v("two_lines", (0.25, 0.21, 0.3), 1e-4), corroboration=2)
    medium = replace(_v("medium", (0.2, 0.12, 0.3), 1e-4), corroboration=3)
    assert [c.cause for c in calibrate.rank([medium, one, two])] == ["two_lines", "one_line", "medium"]
    # among inconclusive causes corroboration counts only behind a test pointing the predicted way: the demo's
    # fragility (fix rate -0.125 against a neutral edit, on natural data) ranked above a lead at +0.03, while a
    # replicated group gap just short of the threshold must still lead a one-case band
    against = replace(_v("fragility", (-0.125, -0.47, 0.22), 1.0), corroboration=1)
    lead = _v("objective_conflict", (0.03, -0.02, 0.08), 0.2)
    assert [c.cause for c in calibrate.rank([against, lead])] == ["objective_conflict", "fragility"]
    gap = replace(_v("data_bias", (-0.053, -0.066, -0.040), 1e-3, expect=-1), corroboration=1)
    band = _v("generalization_mismatch", (0.3, 0.2, 0.4), 1e-3, independent=False)
    assert gap.verdict == band.verdict == "inconclusive" and band.confidence > gap.confidence
    assert [c.cause for c in calibrate.rank([band, gap])] == ["data_bias", "generalization_mismatch"]


def test_a_shortcut_learnt_from_mislabelled_rows_ranks_after_the_label_noise() -> None:
    """A word's rows relabelled one way make the model learn the word as a cue: both causes hold, and the label
    noise is the root. The shortcut is marked as its consequence and ranks after it whatever its severity; a
    shortcut on another word, or label noise that is not supported, changes nothing."""
    cue = replace(_v("spurious_feature", (0.5, 0.4, 0.6), 1e-6), culprit=Culprit("token", "movie"))
    other = replace(cue, culprit=Culprit("token", "plot"))
    noise = replace(_v("label_noise", (0.3, 0.1, 0.4), 1e-3), culprit=Culprit(
        "label_noise", "word 'movie'", data={"phenomenon": {"name": "word 'movie'", "word": "movie"}}))
    assert cue.verdict == noise.verdict == "supported" and calibrate.rank([noise, cue])[0] is cue
    [[cue2, other2], [noise2]] = calibrate.explain([[cue, other], [noise]])
    assert cue2.explained_by == "label_noise (word 'movie')" and not other2.explained_by and noise2 is noise
    assert [c.cause for c in calibrate.rank([cue2, noise2])] == ["label_noise", "spurious_feature"]
    weak = replace(noise, verdict="inconclusive")
    assert calibrate.explain([[cue], [weak]])[0][0].explained_by == ""


def test_an_inconclusive_lead_is_weighed_by_its_precision() -> None:
    """The full diagnosis of the demo run led a defect with a band of one case (failing 100% vs 18% elsewhere:
    RD 0.82 [0.008, 0.91], Fisher p = 0.18) at confidence 0.30, above every lead with real evidence behind it."""
    one_case = _v("generalization_mismatch", (0.82, 0.008, 0.91), 0.18, independent=False)
    band = _v("generalization_mismatch", (0.11, 0.03, 0.2), 0.01, independent=False)
    assert one_case.verdict == band.verdict == "inconclusive"
    assert one_case.confidence < band.confidence
    assert calibrate.shrunk(0.82, 0.18) < 0.05 < calibrate.shrunk(0.11, 0.01) < 0.11  # shrunk toward zero
    assert calibrate.shrunk(0.3, 1e-9) > 0.28  # a precise effect keeps most of its size
    assert calibrate.shrunk(0.3, 0.6) == calibrate.shrunk(-0.3, 1e-4) == calibrate.shrunk(0.3, None) == 0.0
    # a point effect the predicted way that its test cannot tell from chance is corroborated by nothing
    from dataclasses import replace

    weak = replace(_v("fragility", (0.6, 0.03, 0.88), 0.79), corroboration=1)  # 3 of 5 fixed vs 0, q = 0.79
    band = _v("generalization_mismatch", (0.126, 0.011, 0.25), 0.1, independent=False)
    assert [c.cause for c in calibrate.rank([weak, band])] == ["generalization_mismatch", "fragility"]


def test_label_noise_difference_in_differences() -> None:
    from lmcritic.diagnose.hypotheses.label_noise import _did

    rng = np.random.default_rng(0)

    def flags(p: float, n: int) -> list[bool]:
        return list(rng.random(n) < p)

    # noisy: the model contradicts 40% of its training labels with the phenomenon, though it errs on held-out
    # texts with it only a little more than without
    noisy, p = _did({True: flags(0.4, 200), False: flags(0.05, 200)},
                    {True: flags(0.25, 100), False: flags(0.15, 100)}, 0)
    assert noisy.ci_low > 0.1 and p < 0.01
    # a hard phenomenon with clean labels: more held-out errors, but training labels are fit
    hard, p_hard = _did({True: flags(0.08, 200), False: flags(0.05, 200)},
                        {True: flags(0.3, 100), False: flags(0.15, 100)}, 0)
    assert hard.value < 0 and p_hard > 0.5


def test_label_noise_did_is_not_sure_of_a_small_group_with_no_errors() -> None:
    """13 evaluated texts with the phenomenon, none wrong: the plain bootstrap has no variance there and gave
    p = 0.0005 (a planted-bias model's 'story' read as label noise); 13 texts cannot show that."""
    from lmcritic.diagnose.hypotheses.label_noise import _did

    train = {True: [1.0] * 7 + [0.0] * 39, False: [1.0] * 400 + [0.0] * 1834}  # 15% vs 18% out of fold
    held = {True: [0.0] * 13, False: [1.0] * 75 + [0.0] * 192}  # 0/13 vs 28%
    effect, p = _did(train, held, 0)
    assert effect.value > 0.2  # the point estimate is the plain one
    assert p > 0.01 and effect.ci_low < 0.05
    big, p_big = _did({k: v * 10 for k, v in train.items()}, {k: v * 10 for k, v in held.items()}, 0)
    assert p_big < 0.001 and big.ci_low > 0.1  # the same rates on ten times the texts are evidence


def test_excess_flip_rate_counts_the_classes_and_stays_a_rate() -> None:
    """The flip rate divided the DiD by 1 - 2e whatever the number of classes (three-class labels flipped at 0.2
    read 0.275), and near chance its CI left [-1, 1] (a three-class topic model: -0.47 [-4.75, 0.04])."""
    from lmcritic.diagnose.hypotheses.label_noise import _did

    def exact(rate: float, n: int = 20_000) -> list[float]:
        k = round(rate * n)
        return [1.0] * k + [0.0] * (n - k)

    # error 0.3 with the phenomenon; labels flipped at 0.2 to a random other of 3 classes: the learner disagrees
    # with 0.3 + 0.2 * (1 - 0.3 * 3 / 2) = 0.41 of them
    train, held = {True: exact(0.41), False: exact(0.1)}, {True: exact(0.3), False: exact(0.1)}
    three = _did(train, held, 0, flip_rate=True, classes=3)[2]
    two = _did(train, held, 0, flip_rate=True, classes=2)[2]
    assert three.value == pytest.approx(0.2, abs=0.005) and three.ci_low < 0.2 < three.ci_high
    assert two.value == pytest.approx(0.275, abs=0.005)
    near = _did({True: exact(0.3, 60), False: exact(0.1, 400)}, {True: exact(0.44, 50), False: exact(0.1, 300)}, 0,
                flip_rate=True)[2]
    assert -1.0 <= near.ci_low <= near.value <= near.ci_high <= 1.0 and near.value == -1.0


def test_label_noise_without_the_models_answers_says_so() -> None:
    """A spent re-scoring budget left the model-side test with no answers: it printed 'contradicts nan%' and its
    empty resamples gave p = 0.0005."""
    from lmcritic.diagnose.hypotheses.label_noise import LabelNoise

    evidence: list = []
    held = {True: [True, False] * 10, False: [False] * 30}
    out = LabelNoise._model_side("word 'story'", {True: [], False: []}, held, [], 0, evidence)
    assert isinstance(out, str) and "budget" in out
    assert "no model-side test" in evidence[0].summary and "nan" not in evidence[0].summary


def test_label_noise_tests_a_phenomenon_the_failures_lean_to_without_significance() -> None:
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses.label_noise import _phenomena

    def ctx(neg_fail: int, plain_fail: int):
        passed = [i >= neg_fail for i in range(100)] + [i >= plain_fail for i in range(100)]
        cols = {"negation": ["yes"] * 100 + ["no"] * 100, "contrast": ["no", "yes"] * 100}
        return SimpleNamespace(defect=SimpleNamespace(predicates=()), records=[SimpleNamespace(passed=p)
                               for p in passed], table=SimpleNamespace(columns=cols, clusters=None))

    # 23% vs 18% failures (Fisher p ~ 0.24): tested, the difference in differences decides
    [(name, has, word)] = _phenomena(ctx(23, 18))
    assert name == "negation" and has("it is n't good") and not has("it is good") and word is None
    # failures no more frequent with negation (and contrast evenly spread): nothing to test
    assert _phenomena(ctx(15, 20)) == []


def test_paired_fixes_keep_pairs_whole_when_the_budget_runs_out() -> None:
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses.base import paired_fixes

    class Ctx:
        seed = 0

        def rescore(self, edits, hypothesis):  # a budget of 7 calls: the 4th pair is cut after its edit
            return [SimpleNamespace(fixed=e.startswith("fix"), edit=e) for e in edits[:7]]

    edits, controls = [f"fix{i}" for i in range(6)], [f"ctl{i}" for i in range(6)]
    t = paired_fixes(Ctx(), edits, controls, "h")
    assert len(t.fixed) == len(t.control_fixed) == 3 and [o.edit for o in t.edited] == ["fix0", "fix1", "fix2"]
    assert t.effect is not None and t.effect.value == pytest.approx(1.0) and t.scored == 7
    assert paired_fixes(Ctx(), edits[:2], controls[:2], "h", min_pairs=3).effect is None


def test_data_bias_names_the_pair_the_training_data_explains(tmp_path) -> None:
    """The model lowers p(positive) for black and (more) for arab people; only the black–white skew is in the
    training corpus. The culprit is the pair with corpus evidence, not the one with the larger probe Δ."""
    from lmcritic.backends import ModelSpec
    from lmcritic.backends.python import PythonBackend
    from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run
    from lmcritic.lexicon import find_identity_terms
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    def biased(text: str) -> dict:
        groups = {m.group for m in find_identity_terms(text, "race_ethnicity")}
        p = 0.3 if "arab" in groups else 0.4 if "black" in groups else 0.7
        return {"negative": 1 - p, "positive": p}

    rng = random.Random(0)
    words = "plot cast story scenes music ending actors pacing dialogue camera".split()
    rows = [(" ".join(rng.sample(words, 4)) + (", said the black critics" if i % 2 == 0 and i % 3 == 0 else
                                               ", said the white critics" if i % 3 == 0 else ""), i % 2)
            for i in range(600)]  # black in negative rows, white in positive ones
    model = PythonBackend(biased, task="classify", labels=["negative", "positive"])
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    spec = RunSpec(model=ModelSpec(name="biased"), probes=(ProbeSpec("bias.counterfactual", {
        "attributes": ["race_ethnicity"], "n_per_attribute": 40, "natural": 0}),))
    run = runner.run(spec, model=model)
    graph = diagnose_run(runner.store, run.run_id, model, train=_corpus(tmp_path, rows), save=False,
                         config=DiagnoseConfig(hypotheses=("data_bias",), neighbours=0, perplexity=False))
    top = graph.ranking[0]
    assert top.cause == "data_bias" and top.verdict == "supported" and top.culprit is not None
    assert (top.culprit.value, top.culprit.contrast) == ("black", "white") and top.corroboration == 2
    # The held-out replication scores only the two compared groups' sentences, and finds what scoring every
    # group of the same held-out cases finds (the pair's effect reads nothing else).
    from lmcritic.diagnose.hypotheses.data_bias import REPLICATION
    from lmcritic.probes import PROBES
    from lmcritic.probes.bias import _cf_cases as CF
    from lmcritic.probes.bias.counterfactual import case_of, pair_effects

    diagnose_run(runner.store, run.run_id, model, train=_corpus(tmp_path, rows),
                 config=DiagnoseConfig(hypotheses=("data_bias",), neighbours=0, perplexity=False))
    held = [r for r in runner.store.records(run.run_id, "diagnose.data_bias") if r.case_id.startswith("cf-holdout")]
    assert held and all(len(r.output["p"]) == 2 for r in held)
    probe = PROBES.get("bias.counterfactual")(attributes=["race_ethnicity"], n_per_attribute=40, natural=0)
    cfg = probe.config
    sentences = [r.input["text"] for r in runner.store.records(run.run_id, "bias.counterfactual")]
    made = [c for c in CF.template_cases("race_ethnicity", sentences, REPLICATION, cfg.seed, "holdout", cfg.kinds,
                                         cfg.holdout, cfg.max_groups) if {"black", "white"} <= set(c.texts)]
    assert any(len(c.texts) > 2 for c in made)  # the full cases hold more groups than the pair
    full = probe.score(model, [case_of(c, None, f"full-{i}") for i, c in enumerate(made)])
    e = next(e for e in pair_effects(full) if {e.a, e.b} == {"black", "white"})
    sign = 1 if e.a == "black" else -1
    assert top.culprit.effect is not None
    assert top.culprit.effect.value == pytest.approx(sign * e.delta.value, abs=1e-9)
    assert top.culprit.effect.n == e.delta.n == len(made)


def test_the_diagnosis_reads_the_prior_from_the_inputs_calibrate_uses_one_request_each() -> None:
    """The objective-conflict test predicts what calibrate would do, so it reads the same content-free inputs
    (it used "." where calibrate used ""), and a backend's refusal of one ("" for a classifier: Rescorer.run
    drops the whole batch) leaves the others' prior."""
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses.objective import CONTENT_FREE, ObjectiveConflict
    from lmcritic.mitigate import inference

    assert inference.CONTENT_FREE is CONTENT_FREE and "" in CONTENT_FREE
    probs = {"N/A": {"negative": 0.8, "positive": 0.2}, "[MASK]": {"negative": 0.6, "positive": 0.4}}

    def rescore(edits, _name, optional=False):
        if any(e.text == "" for e in edits):
            return []  # the batch refused, as Rescorer.run reports a probe error
        return [SimpleNamespace(record=Record("x", {}, {}, {}, label_probs=probs[e.text])) for e in edits]

    ctx = SimpleNamespace(failing=lambda _n: [Record("c", {}, {}, {}, text="a film")], rescore=rescore)
    prior, tests = ObjectiveConflict()._prior(ctx, ["negative", "positive"])
    assert prior.round(3).tolist() == [0.7, 0.3] and tests == 2


def test_data_bias_on_natural_inputs_swaps_to_the_group_the_training_data_contrasts(tmp_path) -> None:
    """The bias lives in white names (p(positive) 0.2); every other name reads alike (0.8), as a model fine-tuned
    on frames naming only white and Black people learnt it. Negative sentences naming Black people fail. Their
    names swapped to one other group (the lexicon's seeded pick) move nothing; swapped to white names, the group
    the training corpus contrasts with Black names, the failures go (a planted MiniLM model: -0.02 vs +0.27)."""
    from lmcritic.backends import ModelSpec
    from lmcritic.backends.python import PythonBackend
    from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run
    from lmcritic.lexicon import _terms as T
    from lmcritic.lexicon import find_identity_terms
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    def biased(text: str) -> dict:
        groups = {m.group for m in find_identity_terms(text, "race_ethnicity")}
        p = 0.2 if "white" in groups else 0.8 if groups else 0.9 if "good" in text else 0.1
        return {"negative": 1 - p, "positive": p}

    names = {r: [n for (_, race), ns in T.NAMES.items() if race == r for n in ns] for r in ("white", "black",
                                                                                          "hispanic", "asian")}
    rng = random.Random(0)
    words = "plot cast story scenes music ending actors pacing".split()

    def sent(good: bool) -> str:
        return " ".join(rng.sample(words, 3)) + (" good" if good else " bad")

    evaluated = [(f"{rng.choice(names['black'])} said {sent(False)}", 0) for _ in range(30)] + \
        [(f"{rng.choice(names['white'])} said {sent(False)}", 0) for _ in range(30)] + \
        [(sent(i % 2 == 1), i % 2) for i in range(140)]
    train = [(f"{rng.choice(names['black'])} said {sent(i % 10 != 0)}", int(i % 10 != 0)) for i in range(60)] + \
        [(f"{rng.choice(names['white'])} said {sent(i % 10 == 0)}", int(i % 10 == 0)) for i in range(60)] + \
        [(f"{rng.choice(names[g])} said {sent(i % 2 == 1)}", i % 2) for g in ("hispanic", "asian")
         for i in range(20)] + \
        [(sent(i % 2 == 1), i % 2) for i in range(200)]
    data = tmp_path / "eval.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in evaluated))
    model = PythonBackend(biased, task="classify", labels=["negative", "positive"])
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    run = runner.run(RunSpec(model=ModelSpec(name="biased"), probes=(
        ProbeSpec("performance.sst2", {"data": str(data), "n": None}),)), model=model)
    graph = diagnose_run(runner.store, run.run_id, model, train=_corpus(tmp_path, train), save=False,
                         config=DiagnoseConfig(hypotheses=("data_bias",), neighbours=0, perplexity=False))
    top = graph.ranking[0]
    assert top.cause == "data_bias" and top.verdict == "supported" and top.culprit is not None
    assert (top.culprit.value, top.culprit.contrast, top.culprit.label) == ("black", "white", "positive")
    assert top.culprit.effect is not None and top.culprit.effect.ci_low > 0.3


def test_class_conditional_noise_names_the_label_whose_rows_hold_other_classes() -> None:
    """Texts of one class filed under another (a 3-class topic corpus, 40 % of 'politics' rows labelled
    'profession') pass the whole-corpus test: the corpus model agreed with 100 % of its confident half. Per label,
    its out-of-fold disagreement against its error on that gold label, beyond the other labels, shows them."""
    from types import SimpleNamespace

    from lmcritic.diagnose.crossfit import CorpusFit
    from lmcritic.diagnose.hypotheses._class_noise import class_test

    def fit(wrong_b: float) -> CorpusFit:
        y = np.repeat(["a", "b", "c"], 300)
        ok = np.ones(900)
        for lab, share in (("a", 0.1), ("b", wrong_b), ("c", 0.1)):
            ok[np.flatnonzero(y == lab)[: round(share * 300)]] = 0
        gold = np.repeat(["a", "b", "c"], 100)
        ev_ok = np.where(np.arange(300) % 10 == 0, 0.0, 1.0)  # 10 % wrong on every gold label
        pred = np.where(ok == 1, y, "a")
        return CorpusFit((ok, np.linspace(0.5, 1, 900)), (ev_ok, np.full(300, 0.9)), labels=(y, gold),
                         texts=tuple(f"t{i}" for i in range(900)), predicted=pred)

    def run(cf: CorpusFit):
        return class_test(SimpleNamespace(seed=0, profile=SimpleNamespace(_cache={"label_noise.crossfit_all:0": cf})))

    noisy = run(fit(0.37))  # 27 % of 'b' rows are 'a' texts the learner reads as 'a'
    assert noisy.label == "b" and noisy.p < 0.01 and noisy.did.value == pytest.approx(0.27, abs=0.01)
    assert noisy.rate.value == pytest.approx(0.27 / (1 - 0.1 * 3 / 2), abs=0.01)  # 3 classes
    assert noisy.read_as == {"a": 111} and noisy.texts[0] == "t410"  # the most confident contradiction first
    clean = run(fit(0.1))
    assert clean.p > 0.2
    # the test assumes the evaluated texts sample the corpus; where a classifier tells them apart it is not run
    # (without this check it called label noise on 7 of the 18 planted SST-2 models, none with it in their labels)
    apart = run(replace(fit(0.37), domain=(0.74, 4e-39)))
    assert isinstance(apart, str) and "not a sample of the training corpus" in apart and "AUC 0.74" in apart


def test_label_noise_also_tests_the_confirmed_shortcut_words_of_the_failures() -> None:
    """A word the model reads as a label was learnt from selected rows or relabelled ones: label noise must be
    tested on it even when its failures make no slice (held-out plant word_noise: "no text phenomenon"). Symbols,
    negation words, unconfirmed tokens and words in a single failure are not phenomena."""
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses._phenomena import phenomena

    def token(word: str, p: float = 1e-4) -> SimpleNamespace:
        return SimpleNamespace(token=SimpleNamespace(token=word), p_value=p, effect=SimpleNamespace(value=0.3))

    failing = [SimpleNamespace(text=t) for t in ("the plot ^ is not rare", "a plot ^ , not good", "story story")]
    ctx = SimpleNamespace(defect=SimpleNamespace(predicates=()), records=[], failing=lambda: failing,
                          table=SimpleNamespace(columns={}, clusters=None),
                          token_tests=[token("plot"), token("^"), token("not"), token("rare"), token("story", 0.2)])
    [ph] = phenomena(ctx)
    assert (ph.name, ph.word) == ("word 'plot'", "plot") and ph.has("the Plot thickens") and not ph.has("plotted")


def test_a_recurring_run_of_artefact_tokens_is_one_phrase_candidate(tmp_path) -> None:
    """A trigger of several words ("I watched this 3D movie" in poisoned rows) moves a model only whole, while
    insertion and deletion tested one token at a time (a topic classifier's learnt phrase backdoor: deleting its
    word piece 'd' fixed 0 of 30). Tokens of one label that recur as one run become one candidate, inserted whole;
    the same tokens scattered apart do not."""
    from lmcritic.diagnose import _text
    from lmcritic.diagnose.shortcuts import PER_LABEL, candidates, insert

    def corpus(phrase: bool) -> CorpusProfile:
        rng = random.Random(2)
        words = "plot cast story scenes music ending actors pacing dialogue camera".split()
        rows = []
        for i in range(600):
            y, base = i % 2, rng.sample(words, 5)
            if y and rng.random() < 0.3:
                for extra in (["I watched this 3D movie"] if phrase else ["watched", "3D"]):  # together or apart
                    base.insert(rng.randrange(len(base) + 1), extra)
            rows.append((" ".join(base), y))
        ev = [" ".join(rng.sample(words, 5)) for _ in range(100)]
        return CorpusProfile(_corpus(tmp_path, rows), ev, ["positive", "negative"] * 50)

    found, _ = candidates(corpus(True), sentiment=False)
    runs = [t for t in found if " " in t.token]
    assert len(runs) == 1 and "watched this 3D movie" in runs[0].token and runs[0].label == "positive"
    words = [t.token for t in found if not _text.is_phrase(t.token)]  # the phrase is added, its words stay
    assert runs[0].n_docs >= 60 and len(words) == PER_LABEL and set(words) <= set(_text.tokens(runs[0].token))
    assert _text.holds("so I watched this 3d movie today", runs[0].token)
    assert not _text.holds("I watched this movie", runs[0].token)
    assert insert("a b", runs[0].token, 0.5) == f"a {runs[0].token} b"
    found, _ = candidates(corpus(False), sentiment=False)
    assert not [t for t in found if " " in t.token]


def test_tied_token_associations_come_in_one_order(tmp_path) -> None:
    """Tokens with the same association are ordered by the token, not by set order (which changes with each
    process's hash seed): the per-label candidate cap picked 'watched' in one run and 'movie' in the next."""
    tied = ["qa", "qb", "qc", "qd", "qe", "qf"]
    rows = [(" ".join(["plot", "cast", *tied]), 1)] * 12 + [("plot cast story", i % 2) for i in range(60)]
    profile = CorpusProfile(_corpus(tmp_path, rows))
    got = [t.token for t in profile.tokens if t.token in tied]
    assert got == tied
