"""How much of a word's label lean its mislabelled rows account for, and what that does to the ranking.

A word whose training rows all carry one label can lean because the rows were selected (a scrape: labels right)
or relabelled (an annotation heuristic). A content reader's excess contradiction of the rows sizes the
mislabelled share; when that share is the minor part of the lean the word's cue is not only the noise's
consequence (held-out seed 8 of the fully fine-tuned plants: 'comedy' rows selected, the model's masked reading
+0.046 [0.005, 0.10], p 0.045, had ranked the label noise above the shortcut)."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from lmcritic.diagnose import calibrate
from lmcritic.diagnose.hypotheses._content_check import MINOR, _compare, describe_explained, lean_explained
from lmcritic.diagnose.hypotheses.base import CauseVerdict, Culprit
from lmcritic.probes.base import Estimate


def _rows(n: int, label: str, wrong: float, rng: random.Random) -> list[tuple[str, bool]]:
    return [(label, rng.random() < wrong) for _ in range(n)]


def _check(flipped: float, error: float = 0.1, seed: int = 0):
    """A reader erring on ``error`` of right labels, on 200 rows of one label of which ``flipped`` are
    mislabelled (contradicted 1 - error of the time), against 400 control rows of both labels."""
    rng = random.Random(seed)
    with_word = [("neg", rng.random() < ((1 - error) if rng.random() < flipped else error)) for _ in range(200)]
    control = _rows(200, "neg", error, rng) + _rows(200, "pos", error, rng)
    check = _compare("comedy", with_word, control)
    assert not isinstance(check, str)
    return check


@pytest.mark.parametrize("flipped, error, minor", [(0.5, 0.1, False), (0.15, 0.05, True)])
def test_the_share_of_the_lean_the_mislabelled_rows_explain(flipped: float, error: float, minor: bool) -> None:
    """Every row labelled 'neg' against half of the gold labels (a lean of 0.5): half of them relabelled
    accounts for all of it; 15 % for under a third — the rest of the rows lean because they were chosen."""
    check = _check(flipped, error)
    assert check.mislabelled
    share = lean_explained(check, 0.5)
    assert share is not None and share.ci_low <= flipped / 0.5 <= share.ci_high
    assert (share.ci_high < MINOR) is minor
    assert ("the minor part" in describe_explained(share)) is minor


def test_no_share_without_mislabelled_rows_or_a_reader_better_than_chance() -> None:
    assert lean_explained(_check(0.0), 0.5) is None  # nothing contradicted: the selected verdict, not this
    assert lean_explained(_check(0.5, error=0.5), 0.5) is None  # a coin reads no content
    assert lean_explained(_check(0.5), 0.0) is None  # nothing leans


def _verdict(cause: str, culprit: Culprit) -> CauseVerdict:
    e = Estimate(0.5, 100, 0.4, 0.6)
    return calibrate.provisional(CauseVerdict(cause, "inconclusive", 0.0, "", effect=e, p_value=1e-6, threshold=0.05,
                                              independent=True, interventional=True, culprit=culprit))


@pytest.mark.parametrize("ci_high, consequence", [(0.3, False), (0.9, True), (None, True)])
def test_a_cue_is_the_noises_consequence_only_where_the_noise_can_make_the_lean(ci_high: float | None,
                                                                                consequence: bool) -> None:
    """The shortcut ranks after the label noise as its consequence unless the mislabelled rows are the minor
    part of the lean (relabelling them would leave most of the cue); without a share (a phenomenon, or no
    content reader) the rule is as before."""
    mix = {"phenomenon": "word 'comedy'"} | ({"explained": {"value": ci_high / 2, "ci_low": 0.0,
                                                              "ci_high": ci_high}} if ci_high is not None else {})
    noise = _verdict("label_noise", Culprit("label_noise", "word 'comedy'", data={
        "phenomenon": {"name": "word 'comedy'", "word": "comedy"}, "label_mix": mix}))
    cue = replace(_verdict("spurious_feature", Culprit("token", "comedy")), corroboration=2)
    [[cue2], [noise2]] = calibrate.explain([[cue], [noise]])
    assert bool(cue2.explained_by) is consequence
    first = calibrate.rank([noise2, cue2])[0].cause
    assert first == ("label_noise" if consequence else "spurious_feature")
