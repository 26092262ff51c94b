"""The fixture tokenizers are the same on every build, so the tiny models (and thresholds on them) are too.

The ``tokenizers`` trainers broke ties in hash order: six in-process WordPiece trainings on the SST-2 sample gave
six different vocabularies, and a tiny classifier's accuracy check passed in one test session and failed in the next.
"""
from __future__ import annotations

from collections import Counter

from _tiny_vocab import learn_merges
from conftest import _bpe_tokenizer, _wordpiece_tokenizer, sample_lines


def test_fixture_tokenizers_are_built_identically_every_time() -> None:
    lines = sample_lines()
    for build in (_bpe_tokenizer, _wordpiece_tokenizer):
        first, second = build(lines), build(list(reversed(lines)))  # not even the order of the lines matters
        assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()
        assert len(first) == 1000


def test_merges_take_the_most_frequent_pair_and_break_ties_alphabetically() -> None:
    vocab, merges = learn_merges(Counter({"abab": 2, "cd": 2}), 6, ["a", "b", "c", "d"])
    assert merges == [("a", "b"), ("ab", "ab")]  # (a, b) counts 4; then (ab, ab) and (c, d) tie at 2: 'ab' < 'c'
    assert vocab == ["a", "b", "c", "d", "ab", "abab"]


def test_continuation_pieces_carry_the_prefix_and_merge_without_it() -> None:
    vocab, merges = learn_merges(Counter({"abc": 3}), 8, ["a", "b", "c", "##b", "##c"], prefix="##")
    assert merges == [("##b", "##c"), ("a", "##bc")]
    assert vocab[-2:] == ["##bc", "abc"]
