"""Identity lexicon: finding terms, counterfactual swaps (pronouns, names, articles, case), data association."""
from __future__ import annotations

import random

import pytest

from lmcritic.errors import ConfigError
from lmcritic.lexicon import ATTRIBUTES, _terms, find_identity_terms, groups, identity_terms, swap
from lmcritic.lexicon.association import associate


def test_every_attribute_has_terms_and_at_least_two_groups() -> None:
    for attr in ATTRIBUTES:
        terms = identity_terms(attr)
        assert terms and {t.attribute for t in terms} == {attr}
        assert len({t.group for t in terms}) >= 2
    with pytest.raises(ConfigError, match="did you mean 'religion'"):
        identity_terms("religon")


@pytest.mark.parametrize("text,expected", [
    ("She lost her keys.", "He lost his keys."),
    ("I saw her yesterday and gave her the book.", "I saw him yesterday and gave him the book."),
    ("The book is his, not hers.", "The book is hers, not his."),
    ("He prides himself on his work.", "She prides herself on her work."),
    ("My mother and her sisters", "My father and his brothers"),
    ("HE SAID", "SHE SAID"),
])
def test_gender_swap_handles_pronouns_and_case(text, expected) -> None:
    assert swap(text, "gender")[0] == expected


def test_swap_is_consistent_and_edits_point_at_both_texts() -> None:
    text = "Muslims pray in a mosque; Islam says a Muslim man should pray, and Muslims do."
    new, edits = swap(text, "religion", to="atheist")
    assert new == "Atheists pray in a mosque; Atheism says an Atheist man should pray, and Atheists do."
    assert {e.group_from for e in edits} == {"muslim"} and {e.group_to for e in edits} == {"atheist"}
    for e in edits:
        assert text[e.start:e.end] == e.old and new[e.new_start:e.new_end] == e.new
    assert swap("Emily is a Muslim.", "religion", to="jewish")[0] == "Emily is a Jew."
    assert swap("a Muslim woman", "religion", to="jewish")[0] == "a Jewish woman"


def test_names_keep_the_other_attribute_and_map_consistently() -> None:
    text = "Emily called Jamal, and Emily laughed."
    new, edits = swap(text, "gender", rng=3)
    a, b = new.split(" called ")[0], new.split(", and ")[1].split()[0]
    assert a == b and a in _terms.NAMES[("male", "white")]
    assert any(e.old == "Jamal" and e.new in _terms.NAMES[("female", "black")] for e in edits)
    new, _ = swap("Emily smiled.", "race_ethnicity", rng=random.Random(1), to="asian")
    assert new.split()[0] in _terms.NAMES[("female", "asian")]


def test_ambiguous_terms_need_a_person_noun() -> None:
    assert not find_identity_terms("a black comedy with an old script and straight lines", "race_ethnicity")
    assert not find_identity_terms("an old script and a straight line")
    found = find_identity_terms("the black man and the old women")
    assert [(m.attribute, m.group) for m in found] == [("race_ethnicity", "black"), ("gender", "male"),
                                                       ("age", "old"), ("gender", "female")]
    assert swap("the plot is flat", "religion") == ("the plot is flat", [])


def test_longest_match_wins_and_groups_are_listed() -> None:
    [m] = find_identity_terms("an African American writer", "race_ethnicity")
    assert m.text == "African American" and m.group == "black"
    assert not find_identity_terms("an African American writer", "nationality")
    assert "female" in groups("gender") and "muslim" in groups("religion")
    with pytest.raises(ConfigError):
        swap("x", "gender", to="martian")


def test_association_finds_a_planted_skew() -> None:
    texts = ["the woman was wonderful"] * 30 + ["the man was dreadful"] * 30 + ["a plain film"] * 40
    labels = [1] * 30 + [0] * 30 + [1] * 20 + [0] * 20
    res = associate(texts, labels)
    assert res.target == "1" and res.n_docs == 100
    g = {a.group: a for a in res.groups}
    assert g["female"].rate == 1.0 and g["male"].rate == 0.0
    assert g["female"].pmi > 0 > g["male"].pmi and g["female"].p_adjusted < 1e-6
    assert g["female"].rate_ci[0] > 0.85 and g["female"].counts == {"1": 30}
    plain = associate(["the man was fine", "the man was bad"] * 10, [1, 0] * 10)
    assert plain.groups[0].p_adjusted > 0.5  # no skew: not significant


def test_association_without_labels_uses_sentiment_words() -> None:
    res = associate(["the women were brilliant and lovely"] * 6 + ["the men were awful and boring"] * 6)
    g = {a.group: a for a in res.groups}
    assert res.target == "positive" and g["female"].rate == 1.0 and g["male"].rate == 0.0
