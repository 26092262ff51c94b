"""Training-time mitigations act on what the diagnosis named: counterfactual augmentation swaps along the
diagnosed group pair (both directions), label repair looks for wrong labels among the implicated phenomenon's
rows and reports what it changed there."""
from __future__ import annotations

import pytest

from lmcritic.mitigate.base import Culprit, MitigationContext, Target
from lmcritic.mitigate.data import Row, TrainingSet

LABELS = ("negative", "positive")
NO_TASK = "no evaluated texts of the run's own task, or no labelled rows"


def _ctx(tmp_path, culprit: Culprit | None) -> MitigationContext:
    return MitigationContext(None, "r", {}, Target("D1", "p", "all", (), (), culprit=culprit), tmp_path)


def _race_rows() -> TrainingSet:
    texts = ["Jamal said the film was dull", "Neil thought it was a delight", "the asian chef loved the plot",
             "Darnell found the ending moving", "Greg called it a waste of time", "the hispanic crowd cheered",
             "Tyrone and the white critic agreed it was fine"]
    rows = tuple(Row(t, LABELS[i % 2], line=i + 1) for i, t in enumerate(texts * 3))
    return TrainingSet(rows, LABELS, "fixture")


def _groups_after(rows) -> list[set[str]]:
    from lmcritic.lexicon import find_identity_terms

    return [{m.group for m in find_identity_terms(r.text, "race_ethnicity")} for r in rows
            if r.origin == "counterfactual"]


def test_counterfactual_swaps_along_the_diagnosed_pair_in_both_directions(tmp_path):
    from lmcritic.mitigate.counterfactual import CounterfactualAugmentation

    culprit = Culprit("identity_group", "black", attribute="race_ethnicity", contrast="white", source="diagnosis")
    new, info = CounterfactualAugmentation(reweigh="no").transform(_ctx(tmp_path, culprit), _race_rows())
    after = _groups_after(new.rows)
    assert info["pair"] == ["race_ethnicity", "black", "white"]
    assert info["swaps"]["black->white"] == 6 and info["swaps"]["white->black"] == 6  # Jamal, Darnell / Neil, Greg
    assert after and all(g in ({"white"}, {"black"}) for g in after)  # never a third group
    assert info["swaps"]["neither group: left alone"] == 6 and info["swaps"]["both groups: left alone"] == 3


def test_counterfactual_copies_remember_their_original_and_pairing_is_on_when_the_runs_weights_train_on(tmp_path):
    from lmcritic.mitigate.counterfactual import CounterfactualAugmentation
    from lmcritic.mitigate.trainers import Trained
    from lmcritic.mitigate.training import PAIRING_NOTE

    culprit = Culprit("identity_group", "black", attribute="race_ethnicity", contrast="white", source="diagnosis")
    fix = CounterfactualAugmentation(reweigh="no")
    new, _ = fix.transform(_ctx(tmp_path, culprit), _race_rows())
    originals = {r.text for r in new.rows if r.origin == "corpus"}
    copies = [r for r in new.rows if r.origin == "counterfactual"]
    assert copies and all(r.twin in originals and r.twin != r.text for r in copies)
    assert fix.settings().pairing == 1.0
    said = {w: fix.training_notes(Trained({}, "", {"pairing": w})) for w in (1.0, 0.0)}
    assert said[1.0] == [PAIRING_NOTE] and "not applied" in said[0.0][0]  # 0.0: a causal LM, a plug-in trainer
    for restart in ({"base": str(tmp_path)}, {"from_scratch": True}):  # a fresh start: the balanced corpus alone
        fresh = CounterfactualAugmentation(reweigh="no", **restart)
        assert fresh.settings().pairing == 0.0 and fresh.training_notes(Trained({}, "", {"pairing": 0.0})) == []
    assert CounterfactualAugmentation(pairing=0.0).settings().pairing == 0.0  # asked for: as set
    from lmcritic.mitigate.adversarial import AdversarialTraining

    asked = AdversarialTraining(pairing=1.0)  # adversarial logit pairing: only when asked for
    assert AdversarialTraining().settings().pairing is None and asked.settings().pairing == 1.0
    assert "not applied" in asked.training_notes(Trained({}, "", {"pairing": 0.0}))[0]
    assert asked.training_notes(Trained({}, "", {"pairing": 1.0})) == []
    assert CounterfactualAugmentation(base=str(tmp_path), pairing=2.0).settings().pairing == 2.0


def test_counterfactual_without_a_named_pair_swaps_to_the_attributes_groups(tmp_path):
    from lmcritic.mitigate.counterfactual import CounterfactualAugmentation

    culprit = Culprit("identity_group", "black", attribute="race_ethnicity", contrast="another group")
    new, info = CounterfactualAugmentation(reweigh="no", copies=3).transform(_ctx(tmp_path, culprit), _race_rows())
    assert info["pair"] is None
    assert len(set().union(*_groups_after(new.rows))) > 2  # random targets over the attribute's groups
    pair = CounterfactualAugmentation(reweigh="no", pair=("asian", "hispanic"), attributes=("race_ethnicity",))
    new, info = pair.transform(_ctx(tmp_path, None), _race_rows())
    assert info["swaps"] == {"asian->hispanic": 3, "hispanic->asian": 3, "neither group: left alone": 15}


def test_typed_culprit_keeps_the_contrast_group():
    from lmcritic.mitigate.targets import _from_typed

    c = _from_typed({"kind": "identity_group", "value": "black", "contrast": "white", "attribute": "race_ethnicity"})
    assert (c.value, c.contrast, c.attribute) == ("black", "white", "race_ethnicity")


POS = ["a warm , funny , moving film", "great acting and a lovely story", "wonderful , charming and smart",
       "a delight from start to finish", "beautiful and touching work"]
NEG = ["a dull , tedious mess", "boring and badly acted", "awful script , terrible pacing", "a waste of time",
       "flat , lifeless and stupid"]
NEG_FLIPS = {5, 22, 41, 66, 150, 171, 190, 233}  # rows with the phenomenon ("not") whose label is flipped
OTHER_FLIPS = {10, 80, 160, 260}  # flipped rows without it


def _noisy_corpus() -> TrainingSet:
    import random

    rng = random.Random(0)
    rows = []
    for i in range(300):
        label = "positive" if i < 150 else "negative"
        text = f"{rng.choice(POS if label == 'positive' else NEG)} {i}"
        if i % 4 == 1 or i in NEG_FLIPS:
            text += " , not that you asked"
        if i in NEG_FLIPS | OTHER_FLIPS:
            label = LABELS[1 - LABELS.index(label)]
        rows.append(Row(text, label, line=i + 2))
    return TrainingSet(tuple(rows), LABELS, "fixture")


def test_label_repair_looks_only_at_the_diagnosed_phenomenons_rows(tmp_path):
    from lmcritic.mitigate.cleaning import LabelRepair

    data = _noisy_corpus()
    culprit = Culprit("label_noise", "negation", source="diagnosis")
    new, info = LabelRepair(features="tfidf", action="relabel").transform(_ctx(tmp_path, culprit), data)
    changed = {i for i, (a, b) in enumerate(zip(data.rows, new.rows)) if a.label != b.label}
    assert info["scope"]["phenomenon"] == "negation" and info["scope"]["candidates"] == 75 + 5
    assert NEG_FLIPS <= changed and not changed & OTHER_FLIPS  # the rest of the corpus is left alone
    assert info["flagged"] == len(changed) and sum(info["changed"].values()) == len(changed)
    assert all("not" in data.rows[i].text for i in changed)
    everywhere = LabelRepair(features="tfidf", action="relabel", scope="corpus")
    new, info = everywhere.transform(_ctx(tmp_path, culprit), data)
    assert info["scope"]["rows"] == "corpus" and OTHER_FLIPS <= {
        i for i, (a, b) in enumerate(zip(data.rows, new.rows)) if a.label != b.label}


def test_label_repair_without_a_phenomenon_uses_the_implicated_lines_or_the_corpus(tmp_path):
    from lmcritic.mitigate.cleaning import LabelRepair, phenomenon_predicate

    data = _noisy_corpus()
    lines = tuple(data.rows[i].line for i in [*OTHER_FLIPS, *range(100, 140), *range(200, 240)])
    memorised = Culprit("memorized_rows", "40 cases", train_lines=lines, source="diagnosis")
    new, info = LabelRepair(features="tfidf").transform(_ctx(tmp_path, memorised), data)
    assert info["scope"] == {"phenomenon": None, "train_lines": 84, "candidates": 84, "rows": "implicated",
                             "capped_at": None, "reader": {"masked": [], "why": NO_TASK, "read_against": 0}}
    kept = {r.line for r in new.rows}
    assert not kept & {data.rows[i].line for i in OTHER_FLIPS} and len(data) - len(new) == info["flagged"]
    new, info = LabelRepair(features="tfidf").transform(_ctx(tmp_path, None), data)
    assert info["scope"]["rows"] == "corpus" and info["flagged"] >= len(NEG_FLIPS | OTHER_FLIPS) - 2
    assert phenomenon_predicate("word 'but'")("Fine , but slow") and phenomenon_predicate("register") is None
    assert phenomenon_predicate("contrast")("good although long") and phenomenon_predicate("frobs") is None


def test_label_repair_picks_the_rows_the_diagnosis_counted_from_the_culprits_data():
    """The repair rebuilt the phenomenon from the culprit's display name; the diagnosis now stores what it tested
    (``Phenomenon.data``), and the repair's predicate is that one: the name is read only for older diagnoses."""
    from lmcritic.diagnose.hypotheses._phenomena import Phenomenon
    from lmcritic.mitigate.cleaning import culprit_predicate

    stored = Culprit("label_noise", "the word plot", data={"phenomenon": Phenomenon.of_word("plot").data})
    has = culprit_predicate(stored)
    assert has is not None and has("The Plot thickens .") and not has("plots and subplots")
    negation = culprit_predicate(Culprit("label_noise", "negation", data={"phenomenon": {"name": "negation"}}))
    assert negation is not None and negation("it is not good") and not negation("it is good")
    older = culprit_predicate(Culprit("label_noise", "word 'plot'"))  # no data: the display name
    assert older is not None and older("a thin plot")
    assert culprit_predicate(Culprit("label_noise", "the word plot")) is None  # neither: no phenomenon
    assert culprit_predicate(Culprit("token", "plot")) is None and culprit_predicate(None) is None


def test_domain_augmentation_says_when_the_failing_cases_hold_words_no_training_row_has():
    """The planted slang ("killer", "mid") is in no training row, rewritten or not: the fine-tune cannot teach it
    (0.41 -> 0.41 on two seeds), so the mitigation must name the words and ask for in-domain rows."""
    from types import SimpleNamespace

    from lmcritic.mitigate._coverage import unseen_words
    from lmcritic.mitigate.data import Row
    from lmcritic.probes.base import Record

    def rec(i, text, passed):
        return Record(f"c{i}", {"text": text}, {}, {}, {}, passed, text=text)

    slang = [rec(i, f"tbh this flick is {w} fr", False) for i, w in enumerate(["killer", "mid", "npc", "killer"] * 5)]
    plain = [rec(100 + i, "a fine film with a good cast", True) for i in range(20)]
    rows = [Row("a fine film with a good cast", "positive"), Row("this film is dull", "negative")]
    store = SimpleNamespace(records=lambda run, probe: slang + plain)
    target = SimpleNamespace(probe="p", failing=tuple(r.case_id for r in slang),
                             case_ids=tuple(r.case_id for r in slang + plain))
    out = unseen_words(SimpleNamespace(store=store, run_id="r", target=target), rows)
    assert {"killer", "mid", "npc"} <= set(out["unseen_words"]) and out["failure_with_unseen"] == 1.0
    assert "in_domain" in out["notes"][0] and "killer" in out["notes"][0]
    rows += [Row(r.text, "positive") for r in slang]  # in-domain rows cover them: no advice
    assert "notes" not in unseen_words(SimpleNamespace(store=store, run_id="r", target=target), rows)


def test_domain_augmentation_refuses_to_fine_tune_when_the_defect_is_out_of_the_corpus_reach():
    """Trained anyway on the register plant (held-out seed 10) the fix made the slang worse, 0.33 -> 0.41: when
    most failures hold words no training row has, it refuses before training and names the fix; in-domain rows or
    ``unseen=train`` let it go on."""
    from types import SimpleNamespace

    from lmcritic.errors import ConfigError
    from lmcritic.mitigate.training import DomainAugmentation
    from lmcritic.probes.base import Record

    def rec(i, text, passed):
        return Record(f"c{i}", {"text": text}, {}, {}, {}, passed, text=text)

    slang = [rec(i, f"tbh this flick is {w} fr", False) for i, w in enumerate(["killer", "mid", "npc", "killer"] * 5)]
    plain = [rec(100 + i, "a fine film with a good cast", i > 0) for i in range(20)]
    store = SimpleNamespace(records=lambda run, probe: slang + plain)
    target = SimpleNamespace(probe="p", failing=tuple(r.case_id for r in slang + plain[:1]), culprit=None)
    ctx = SimpleNamespace(store=store, run_id="r", target=target, seed=0)
    data = TrainingSet((Row("a fine film with a good cast", "positive"), Row("this film is dull", "negative")),
                       ("negative", "positive"), "train.tsv")
    with pytest.raises(ConfigError, match="in_domain=PATH") as err:
        DomainAugmentation().transform(ctx, data)
    assert "95% of the defect's failures hold words no training row has" in str(err.value)
    new, details = DomainAugmentation(unseen="train").transform(ctx, data)
    assert details["failures_holding_unseen"] == pytest.approx(20 / 21) and "in_domain" in details["notes"][0]
    target.failing = tuple(r.case_id for r in slang[:4] + plain[:10])  # most failures within reach: it goes on
    assert DomainAugmentation().transform(ctx, data)[1]["failures_holding_unseen"] < 0.5


def test_label_repair_relabels_and_reweighs_a_label_mix_culprit_to_the_gold_mix(tmp_path):
    """Consistent noise (the diagnosis's label-mix test): 30 of 40 'not bad' rows were labelled negative by a
    heuristic. A learner weighted to the gold mix reads them as positive and they are relabelled (an unweighted one
    agrees with the heuristic: 30 against 10); the phenomenon's rows then carry the gold mix; the rest is untouched."""
    from lmcritic.mitigate.cleaning import LabelRepair

    rows = [Row(f"the film is not bad at all {i % 3}", "negative" if i < 30 else "positive", line=i) for i in range(40)]
    rows += [Row(f"the film is not good {i % 3}", "negative", line=100 + i) for i in range(60)]
    rows += [Row(f"a {w} film {i % 3}", "positive" if w == "fine" else "negative", line=200 + i)
             for i, w in enumerate(["fine", "dull"] * 50)]
    mix = {"phenomenon": "negation", "train": {"negative": 0.9, "positive": 0.1},
           "evaluated": {"negative": 0.6, "positive": 0.4}}
    culprit = Culprit("label_noise", "negation", label="negative", data={"label_mix": mix}, source="diagnosis")
    data = TrainingSet(tuple(rows), LABELS, "fixture")
    new, info = LabelRepair(features="tfidf").transform(_ctx(tmp_path, culprit), data)
    assert info["action"] == "reweigh" and info["rows"] == 100
    changed = {a.line for a, b in zip(data.rows, new.rows) if a.label != b.label}
    assert 25 <= len(changed) <= 30 and changed <= set(range(30))  # only the heuristic's rows (out of fold: most)
    assert info["relabelled"] == {"negative->positive": len(changed)}
    inside = [r for r in new.rows if " not " in r.text]
    share = sum(r.weight for r in inside if r.label == "positive") / sum(r.weight for r in inside)
    assert abs(share - 0.4) < 1e-9 and all(r.weight == 1.0 for r in new.rows if r.line >= 200)
    assert info["target_from"] == "evaluated" and info["notes"] == []  # negation cannot be masked: the gold mix
    _, info = LabelRepair(features="tfidf", action="drop").transform(_ctx(tmp_path, culprit), data)
    assert info["action"] == "drop"


def test_a_word_culprit_is_repaired_to_the_mix_its_rows_read_as_not_a_balanced_evaluation(tmp_path):
    """'plot' rows are truly 80 % negative; a heuristic labelled 24 of the 32 negative ones positive, and the
    evaluation was chosen half of each label. Repairing to 50/50 would over-correct: a reader fitted on the rows
    without 'plot' (MiniLM sentence embeddings) reads the masked 'plot' rows as 80 % negative, and that is the
    target, said in a note. TF-IDF features read too poorly to be trusted (measured): the evaluated mix stays."""
    from lmcritic.diagnose.hypotheses._phenomena import Phenomenon
    from lmcritic.mitigate.cleaning import LabelRepair

    rows = [Row(f"a {w} film {i % 5}", "negative" if w in ("dull", "boring", "awful") else "positive", line=i)
            for i, w in enumerate(["dull", "boring", "awful", "great", "fun", "lovely"] * 30)]
    rows += [Row(f"the plot is {'dull' if i < 32 else 'great'} {i % 5}", "positive" if 8 <= i else "negative",
                 line=500 + i) for i in range(40)]
    mix = {"phenomenon": "word 'plot'", "train": {"negative": 0.2, "positive": 0.8},
           "evaluated": {"negative": 0.5, "positive": 0.5}}
    culprit = Culprit("label_noise", "word 'plot'", label="positive", source="diagnosis",
                      data={"label_mix": mix, "phenomenon": Phenomenon.of_word("plot").data})
    data = TrainingSet(tuple(rows), LABELS, "f")
    new, info = LabelRepair(features="minilm").transform(_ctx(tmp_path, culprit), data)
    assert info["target_from"] == "content" and abs(info["target_mix"]["negative"] - 0.8) <= 0.05
    assert info["evaluated_mix"] == {"negative": 0.5, "positive": 0.5} and "over-correct" in info["notes"][0]
    inside = [r for r in new.rows if "plot" in r.text]
    share = sum(r.weight for r in inside if r.label == "negative") / sum(r.weight for r in inside)
    assert abs(share - info["target_mix"]["negative"]) < 1e-9 and set(info["relabelled"]) <= {"positive->negative"}
    _, info = LabelRepair(features="tfidf").transform(_ctx(tmp_path, culprit), data)
    assert info["target_from"] == "evaluated" and info["target_mix"] == mix["evaluated"] and info["notes"] == []


def test_shortcut_removal_of_a_length_culprit_takes_length_out_of_the_labels(tmp_path):
    """A length culprit (every 'positive' row long, every 'negative' one short): the other label gets long rows
    joined from its own rows, as large a share as 'positive' has above the median, and the quartile weights give
    each length band where both labels occur the corpus's label shares; no token is asked for (it raised 'no
    shortcut token: the diagnosis names none')."""
    import random

    from lmcritic.mitigate.cleaning import ShortcutRemoval
    from lmcritic.mitigate.trainers import Trained

    rng = random.Random(0)
    rows = tuple([Row(" ".join(["great"] * rng.randint(14, 24)), "positive", line=i) for i in range(100)]
                 + [Row(" ".join(["dull"] * rng.randint(3, 8)), "negative", line=100 + i) for i in range(100)])
    culprit = Culprit("length", "longer → positive", label="positive", source="diagnosis")
    new, info = ShortcutRemoval().transform(_ctx(tmp_path, culprit), TrainingSet(rows, LABELS, "fixture"))
    joined = [r for r in new.rows if r.origin == "length_joined" and r.label == "negative"]
    assert info["joined_rows"]["negative"] == len(joined) and len(joined) >= 90
    assert all(set(r.text.split()) == {"dull"} and len(r.text.split()) >= 14 for r in joined)
    # with the sentence encoder the 'positive' long rows were rebuilt: windows and joins of them, nothing else
    rebuilt = [r for r in new.rows if r.label == "positive" and r.origin != "corpus"]
    assert info["joined_rows"].get("positive", 0) + info["cropped_rows"] == len(rebuilt)
    originals = {r.text for r in rows}  # each joined row pairs with its first part (logit pairing on length)
    assert all(r.twin in originals and r.twin in r.text for r in joined)
    assert ShortcutRemoval().settings().pairing == 1.0 and ShortcutRemoval(base="b").settings().pairing == 0.0
    said = [ShortcutRemoval().training_notes(Trained({}, "", d)) for d in
            ({"pairing": 1.0, "paired_examples": 90}, {"pairing": 1.0, "paired_examples": 0}, {"pairing": 0.0})]
    assert "logit pairing (weight 1)" in said[0][0] and said[1] == [] and "not applied" in said[2][0]
    # among long rows the labels weigh what they weigh in the corpus (before: long rows were all 'positive')
    long_mass = {y: sum(r.weight for r in new.rows if r.label == y and len(r.text.split()) >= 14) for y in LABELS}
    share = sum(r.label == "negative" for r in new.rows) / len(new.rows)
    assert abs(long_mass["negative"] / sum(long_mass.values()) - share) < 0.1


def test_the_label_mix_repair_leaves_the_rows_the_diagnosis_read_the_mix_without_alone():
    """A 'kx' shortcut's rows were left out of the mix (their labels lean by the token): the repair reweighs and
    relabels the other negated rows toward the gold mix and leaves the 'kx' rows as they are."""
    from lmcritic.mitigate._label_mix import repair_mix

    rows = [Row(f"it is not good {i}", "negative", line=i) for i in range(40)]
    rows += [Row(f"it is not bad {i}", "positive", line=100 + i) for i in range(10)]
    rows += [Row(f"the kx is not fun {i}", "negative", line=200 + i) for i in range(30)]
    rows += [Row(f"plain {w} row {i}", w, line=300 + i) for i in range(40) for w in LABELS]
    data = TrainingSet(tuple(rows), LABELS, "fixture")
    mix = {"phenomenon": "negation", "evaluated": {"negative": 0.5, "positive": 0.5},
           "train": {"negative": 0.875, "positive": 0.125}}
    has = lambda t: " not " in f" {t} "  # noqa: E731

    def kx_rows(out):
        return [r for r in out.rows if "kx" in r.text]

    out, info = repair_mix(data, {**mix, "left_out": ["kx"]}, has, 20.0, "tfidf", 5)
    assert info["rows"] == 50 and info["left_out"] == ["kx"] and info["train_mix"]["negative"] == 0.8
    assert all(r.weight == 1.0 and r.label == "negative" and r.origin == "corpus" for r in kx_rows(out))
    whole, info = repair_mix(data, mix, has, 20.0, "tfidf", 5)  # read with them: they are reweighed too
    assert info["rows"] == 80 and all(r.weight < 1.0 for r in kx_rows(whole) if r.label == "negative")


def test_perturbed_copies_remember_their_original_for_adversarial_logit_pairing():
    import random

    from lmcritic.mitigate.training import perturbed_copies

    rows = [Row("the film was a wonderful surprise from start to finish", "positive", line=1),
            Row("a dull and tedious script with nothing to say", "negative", line=2)]
    out = perturbed_copies(rows, ["typos"], 1.0, random.Random(0))
    assert out and all(r.twin in {x.text for x in rows} and r.twin != r.text for r in out)
