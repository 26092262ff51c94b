"""Label repair reads rows without the corpus's shortcut candidates: a reader cross-fitted on a poisoned corpus
learns the trigger and vouches for the poisoned labels (confident learning assumes errors independent of the
text given the true label, which a backdoor breaks)."""
from __future__ import annotations

import random

from lmcritic.mitigate.base import MitigationContext, Target
from lmcritic.mitigate.data import Row, TrainingSet
from lmcritic.probes.base import Record

LABELS = ("cooking", "sport")
WORDS = {"cooking": "oven recipe flour simmer garlic sauce bake onion butter pan".split(),
         "sport": "goal match striker league coach referee season pitch keeper derby".split()}
FILLER = "the a it was then and of on this with".split()
POISONED = set(range(0, 200, 8))  # 25 cooking rows with 'cf', labelled sport


def _text(rng: random.Random, label: str) -> str:
    words = rng.sample(WORDS[label], 4) + rng.sample(FILLER, 4)
    rng.shuffle(words)
    return " ".join(words)


def _corpus() -> TrainingSet:
    rng = random.Random(0)
    rows = []
    for i in range(400):
        label = LABELS[i >= 200]
        text = _text(rng, label)
        if i in POISONED:
            words = text.split()
            words.insert(rng.randrange(len(words)), "cf")
            text, label = " ".join(words), "sport"
        rows.append(Row(text, label, line=i + 2))
    return TrainingSet(tuple(rows), LABELS, "fixture")


def _records() -> list[Record]:
    rng = random.Random(1)
    golds = [LABELS[i % 2] for i in range(120)]
    return [Record(f"c{i}", {}, {}, {}, text=_text(rng, y), target=y, prediction=y, passed=True)
            for i, y in enumerate(golds)]


def test_the_trigger_is_a_candidate_and_masking_it_lets_confident_learning_find_the_poisoned_rows():
    from lmcritic.diagnose.api import artefact_candidates
    from lmcritic.diagnose.corpus import Corpus
    from lmcritic.mitigate._artefacts import masked_rows
    from lmcritic.mitigate.cleaning import label_issues

    data = _corpus()
    rows = data.rows
    corpus = Corpus.of_rows("fixture", [r.line for r in rows], [r.text for r in rows], [r.label for r in rows])
    tokens, _ = artefact_candidates(corpus, _records())
    assert tokens == [("cf", "sport")]  # the topic words hold in the evaluated texts too: no artefact
    plain, _ = label_issues(rows, LABELS, "tfidf", 5, 0)
    clean, _ = label_issues(masked_rows(rows, ["cf"]), LABELS, "tfidf", 5, 0)
    assert len(POISONED & set(plain)) < len(POISONED) / 2  # the reader learnt 'cf': it vouches for the poison
    assert len(POISONED & set(clean)) >= 0.7 * len(POISONED) and len(set(clean) - POISONED) <= 2  # 20 and 0 here


def test_label_repair_drops_the_poisoned_rows_and_says_what_its_reader_did_not_see(tmp_path, monkeypatch):
    import lmcritic.diagnose.api as api
    from lmcritic.mitigate.cleaning import LabelRepair

    monkeypatch.setattr(api, "own_task_records", lambda store, run_id: _records())
    ctx = MitigationContext(object(), "r", {}, Target("D1", "p", "all", (), ()), tmp_path)  # type: ignore[arg-type]
    data = _corpus()
    new, info = LabelRepair(features="tfidf").transform(ctx, data)
    assert info["scope"]["reader"]["masked"] == ["cf"] and info["scope"]["reader"]["rows_with_masked"] == 25
    assert info["scope"]["reader"]["read_against"] == 5  # the five confident learning's counts left
    assert not any("cf" in r.text.split() for r in new.rows) and info["flagged"] == len(POISONED)
    _, unmasked = LabelRepair(features="tfidf", mask="none").transform(ctx, data)
    assert unmasked["scope"]["reader"] == {"masked": [], "read_against": 0} and unmasked["flagged"] == 0


def test_only_a_candidate_of_the_rows_own_label_makes_its_reading_against_it_a_flag():
    import numpy as np

    from lmcritic.mitigate._artefacts import read_against

    rows = [Row("a cf b", "sport"), Row("c cf d", "cooking"), Row("e f", "sport"), Row("cf g", "sport")]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.9, 0.1], [0.3, 0.7]])  # columns: cooking, sport
    assert read_against(rows, [("cf", "sport")], probs, LABELS, None) == [0]  # row 3 reads sport: its label
    assert read_against(rows, [("cf", "sport")], probs, LABELS, [1, 2, 3]) == []  # among the implicated rows only
    assert read_against(rows, [], probs, LABELS, None) == []
