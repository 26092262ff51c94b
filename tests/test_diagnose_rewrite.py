"""The rewrite-vs-neutral-edit test fragility (spell-correction) and generalization mismatch (formal register)
share: pairs, what is left out, the evidence it writes."""
from __future__ import annotations

import random

from lmcritic.diagnose.hypotheses._rewrite import casing, neutral_edit, punctuation, rewrite_test
from lmcritic.diagnose.rescore import Outcome
from lmcritic.probes.base import Record


class Ctx:
    """What the test reads of a DefectContext: the seed and a re-scorer (here: an edit passes if it has no 'x')."""

    seed = 0

    def __init__(self) -> None:
        self.sent: list = []

    def rescore(self, edits, hypothesis):
        self.sent += edits
        return [Outcome(e, Record(e.record.case_id, {}, {}, {}, {}, "x" not in e.text.lower())) for e in edits]


def rec(i: int, text: str) -> Record:
    return Record(f"c{i}", {"text": text}, {}, {}, {}, False, text=text)


def test_each_rewrite_is_paired_with_a_neutral_edit_of_the_same_case() -> None:
    records = [rec(0, "bad x movie"), rec(1, "no change"), rec(2, "left out"), rec(3, "x again"), rec(4, "more x")]
    rewrite = {"bad x movie": "bad movie", "no change": "no change", "left out": None, "x again": "again",
               "more x": "more x!"}.get
    ctx, evidence = Ctx(), []
    effect, p, scored, min_p = rewrite_test(ctx, records, rewrite, "fix", "h", lambda t: f"{len(t.fixed)} rewritten",
                                            evidence, examples=1)
    assert [(e.record.case_id, e.test) for e in ctx.sent] == [
        ("c0", "fix"), ("c0", "neutral_edit"), ("c3", "fix"), ("c3", "neutral_edit"), ("c4", "fix"),
        ("c4", "neutral_edit")]  # unchanged and None rewrites are left out; pairs interleaved
    assert scored == 6 and effect is not None and effect.value == 2 / 3 and p is not None
    assert min_p == 0.5 == p  # two discordant pairs: McNemar cannot go below 2 × 0.5², and here it is there
    (ev,) = evidence
    assert ev.summary == "3 rewritten" and ev.case_ids == ("c0", "c3")
    assert ev.data == {"examples": [{"case": "c0", "edited": "bad movie"}]}


def test_under_three_pairs_there_is_no_test_and_no_evidence() -> None:
    ctx, evidence = Ctx(), []
    out = rewrite_test(ctx, [rec(0, "x y"), rec(1, "x z")], lambda t: t.replace("x", ""), "fix", "h", str, evidence)
    assert out == (None, None, 4, None) and evidence == []


def test_the_neutral_edit_changes_only_casing_or_final_punctuation() -> None:
    rng = random.Random(0)
    for text in ("good film.", "Good film", "a", "WOW!"):
        out = neutral_edit(text, rng)
        assert out in {casing(text, rng), punctuation(text, rng)} and out != text


def test_a_test_for_some_failures_samples_among_those_not_among_all() -> None:
    """Fragility's spell-correction test applies to failures with typos only: sampling the budget among all
    failures first left 11 of 19 such cases on a planted-typos model (inconclusive, q=0.11)."""
    from types import SimpleNamespace

    from lmcritic.diagnose._text import typos
    from lmcritic.diagnose.hypotheses.base import DefectContext

    records = [rec(i, "a wonderfl film" if i % 3 == 0 else "a fine film") for i in range(60)]
    ctx = DefectContext(defect=SimpleNamespace(case_ids=[r.case_id for r in records]), records=records, table=None,
                        max_cases=8)
    picked = ctx.failing_where(lambda r: bool(typos(r.text)))
    assert len(picked) == 8 and all(typos(r.text) for r in picked)
    assert sum(bool(typos(r.text)) for r in ctx.failing()) < 8  # what a sample of all failures would have held
    assert ctx.failing_where(lambda r: bool(typos(r.text)), cap=100) == records[::3]


def test_the_formal_rewrite_samples_its_budget_among_colloquial_failures() -> None:
    """The planted register model (seed 0): the formal rewrite was tried on the 16 colloquial failures among 24
    sampled from all failures, fixed 8 against 0 (p = 0.008), and BH across the diagnosis put q at 0.051."""
    from types import SimpleNamespace

    from lmcritic.diagnose._text import colloquial_markers
    from lmcritic.diagnose.hypotheses.base import DefectContext
    from lmcritic.diagnose.hypotheses.mismatch import GeneralizationMismatch

    records = [rec(i, "that film was lowkey mid ngl" if i % 3 == 0 else "a dull film") for i in range(60)]
    real = DefectContext(defect=SimpleNamespace(case_ids=[r.case_id for r in records]), records=records, table=None,
                         max_cases=8)
    fake = Ctx()
    ctx = SimpleNamespace(seed=0, natural=True, failing=real.failing, failing_where=real.failing_where,
                          rescore=fake.rescore)
    GeneralizationMismatch()._formalize(ctx, [])
    rewritten = {e.record.case_id for e in fake.sent if e.test == "formal_register"}
    assert len(rewritten) == 8 and all(colloquial_markers(r.text) for r in records if r.case_id in rewritten)


def test_a_negation_with_a_training_only_label_association_is_not_called_a_shortcut(monkeypatch) -> None:
    """Directed label noise (negation rows relabelled negative) gives 'never' a training-only association; the
    artefact test alone named it a spurious feature (high severity). For a sentiment task the lexicon decides
    first, as it does for the corpus shortcut candidates; a meaningless token still goes to the artefact test."""
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses import _content_check
    from lmcritic.diagnose.hypotheses.spurious import SpuriousFeature

    monkeypatch.setattr(_content_check, "read_labels", lambda ctx, word, name, evidence: None)  # no reader ran
    artefact = SimpleNamespace(artifact_p=0.001, label="negative", rate=0.9, n_docs=40, z=5.0, eval_docs=30)
    ctx = SimpleNamespace(sentiment=True, profile=SimpleNamespace(token=lambda t: artefact))
    matters, why = SpuriousFeature()._judgement(ctx, "never")
    assert not matters and "should rest on it" in why
    assert SpuriousFeature()._judgement(ctx, "tq")[0]  # the artefact test still finds a planted token
    assert SpuriousFeature()._judgement(SimpleNamespace(sentiment=False, profile=ctx.profile), "never")[0]
    assert SpuriousFeature()._judgement(ctx, "comedy")[0]  # VADER +1.5, tied to negative: not its sentiment
    assert not SpuriousFeature()._judgement(ctx, "awful")[0]  # tied to negative as its valence says


def test_a_sentiment_word_whose_rows_were_selected_is_a_shortcut(monkeypatch) -> None:
    """word_shortcut held-out seed 10: 200 correctly labelled 'comedy' rows, all positive (VADER +1.5, the way its
    valence points); the lexicon's judgement left the deletion test (fixes 0.77 vs 0 for another word)
    inconclusive. Its rows read as labelled right with the word masked: selected, so a shortcut. Relabelled rows,
    an unclear reading, no reader, no training-only association, or a word without valence keep the lexicon's."""
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses import _content_check
    from lmcritic.diagnose.hypotheses.spurious import SpuriousFeature
    from lmcritic.probes.base import Estimate

    def reading(p: float, high: float) -> _content_check.ContentCheck:
        e = Estimate(0.0, 200, -0.05, high, "mover")
        return _content_check.ContentCheck("comedy", e, e, e, p, "model")

    asked: list[str] = []

    def reads(found: object) -> None:
        monkeypatch.setattr(_content_check, "read_labels", lambda ctx, word, name, ev: asked.append(word) or found)

    def ctx(artifact_p: float) -> SimpleNamespace:
        stat = SimpleNamespace(artifact_p=artifact_p, label="positive", rate=1.0, n_docs=201, z=9.0, eval_docs=100)
        return SimpleNamespace(sentiment=True, profile=SimpleNamespace(token=lambda t: stat))

    reads(reading(0.86, 0.045))
    matters, why = SpuriousFeature()._judgement(ctx(1e-9), "comedy")
    assert matters and why.startswith("associated with 'positive'") and "selected rows" in why
    assert not SpuriousFeature()._judgement(ctx(1e-9), "very")[0] and asked == ["comedy"]  # no valence: not asked
    assert not SpuriousFeature()._judgement(ctx(0.4), "comedy")[0]  # the evaluated data ties it alike
    for found in (reading(0.01, 0.2), reading(0.3, 0.15), None):  # relabelled; unclear; no reader
        reads(found)
        assert not SpuriousFeature()._judgement(ctx(1e-9), "comedy")[0]


def test_the_net_effect_of_correcting_typos_counts_the_right_answers_they_made_by_accident() -> None:
    """A typo can hide a word the model misreads ('beter' in a negative review): spell-correction fixes failures
    and breaks such passes, and whether input normalisation helps is the difference (held-out seed 12: the
    normaliser fixed 40 and broke 36 of 240 planted-typo cases)."""
    from types import SimpleNamespace

    from lmcritic.diagnose.hypotheses.base import DefectContext
    from lmcritic.diagnose.hypotheses.fragility import _net

    class Rescorer:  # the model: right on 'wonderful' and on the misspelt 'beter', wrong on 'better'
        def run(self, probe, edits, hypothesis, defect, optional):
            return [Outcome(e, Record(e.record.case_id, {}, {}, {}, {}, "better" not in e.text)) for e in edits]

    failing = [rec(i, "a wonderfl film") for i in range(10)]
    passing = [Record(f"p{i}", {}, {}, {}, {}, True, text="the film is beter") for i in range(30)]
    plain = [Record(f"q{i}", {}, {}, {}, {}, True, text="the film is fine") for i in range(50)]
    records = failing + passing + plain
    defect = SimpleNamespace(probe="p", id="D1", case_ids=[r.case_id for r in failing],
                             slice_case_ids=[r.case_id for r in records])
    ctx = DefectContext(defect=defect, records=records, table=None, rescorer=Rescorer(), max_cases=8)
    evidence: list = []
    est = _net(ctx, ctx.failing(), evidence)
    assert est is not None and est.n == 40 and abs(est.value - (30 - 10) / 40) < 1e-9  # 8/8 fixed, 8/8 broken
    assert est.ci_low < est.value < est.ci_high
    assert evidence[0].data == {"prediction": "spell_correction", "fixed": 8, "failing_scored": 8, "broken": 8,
                                "passing_scored": 8, "failing": 10, "passing": 30}
    ctx = DefectContext(defect=defect, records=failing + plain, table=None, rescorer=Rescorer(), max_cases=8)
    assert _net(ctx, ctx.failing(), []) is None  # no passing input with typos: nothing to weigh the fixes against
    # a typo the corrector leaves as it is ('zxqvbnm') is corrected by no normaliser either: it fixes nothing
    stuck = [rec(10 + i, "a zxqvbnm film") for i in range(10)]
    records = failing + stuck + passing
    defect = SimpleNamespace(probe="p", id="D1", case_ids=[r.case_id for r in failing + stuck],
                             slice_case_ids=[r.case_id for r in records])
    ctx = DefectContext(defect=defect, records=records, table=None, rescorer=Rescorer(), max_cases=40)
    evidence = []
    est = _net(ctx, ctx.failing(), evidence)
    assert evidence[0].data["fixed"] == 10 and evidence[0].data["failing_scored"] == 20
    assert est is not None and abs(est.value - (30 - 0.5 * 20) / 50) < 1e-9
