"""The noisy-channel typo corrector shared by input normalisation and the fragility diagnosis."""
from __future__ import annotations

import pytest

from lmcritic.diagnose import _spelling, _text


def test_channel_ranks_typing_errors_by_how_people_make_them() -> None:
    ch = _spelling.channel
    assert ch("sily", "silly") > ch("sily", "silk")  # a doubled letter left out beats a far-key substitution
    assert ch("wores", "worse") > ch("wores", "works")  # swapped neighbours beat a far-key substitution
    assert ch("goid", "good") > ch("gxod", "good")  # i is next to o on the keyboard, x is not
    assert ch("hmor", "humor") > ch("hmor", "amor")  # the first letter is seldom the wrong one
    assert _spelling.adjacent("o", "i") and not _spelling.adjacent("q", "p")


@pytest.mark.parametrize(("typo", "word"), [("hmor", "humor"), ("sily", "silly"), ("frnatic", "frantic"),
                                            ("wonderfl", "wonderful"), ("boqed", "bored"), ("pnch", "punch")])
def test_corrects_what_nearest_by_count_got_wrong(typo: str, word: str) -> None:
    # symspell's CLOSEST (highest web count at distance 1) gave amor, silk, fanatic, -, boxed, inch
    assert _text.is_typo(typo)
    assert _spelling.correct_word(typo) == word


def test_spell_correct_leaves_real_words_and_unknowns_alone() -> None:
    assert _text.spell_correct("a wonderfl film with no hmor") == "a wonderful film with no humor"
    assert _text.spell_correct("a fine film") == "a fine film"
    assert _spelling.correct_word("qzxqzxqzx") is None  # nothing known one edit away: the word is kept


def test_edits1_is_every_single_damerau_edit() -> None:
    e = _spelling.edits1("ab")
    assert {"a", "b", "ba", "xab", "axb", "abx", "xb", "ax"} <= e and "ab" not in e
    assert len(_spelling.edits1("word")) == len(set(_spelling.edits1("word")))
