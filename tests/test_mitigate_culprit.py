"""Training-time mitigations act on what the diagnosis named: counterfactual augmentation swaps along the
diagnosed group pair (both directions), label repair looks for wrong labels among the implicated phenomenon's
rows and reports what it changed there."""
from __future__ import annotations

from lmcritic.mitigate.base import Culprit, MitigationContext, Target
from lmcritic.mitigate.data import Row, TrainingSet

LABELS = ("negative", "positive")


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
    from lmcritic.mitigate.training import CounterfactualAugmentation

    culprit = Culprit("identity_group", "black", attribute="race_ethnicity", contrast="white", source="diagnosis")
    new, info = CounterfactualAugmentation(reweigh="no").transform(_ctx(tmp_path, culprit), _race_rows())
    after = _groups_after(new.rows)
    assert info["pair"] == ["race_ethnicity", "black", "white"]
    assert info["swaps"]["black->white"] == 6 and info["swaps"]["white->black"] == 6  # Jamal, Darnell / Neil, Greg
    assert after and all(g in ({"white"}, {"black"}) for g in after)  # never a third group
    assert info["swaps"]["neither group: left alone"] == 6 and info["swaps"]["both groups: left alone"] == 3


def test_counterfactual_without_a_named_pair_swaps_to_the_attributes_groups(tmp_path):
    from lmcritic.mitigate.training import CounterfactualAugmentation

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
