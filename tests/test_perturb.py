"""Perturbations and word swaps: real lexical resources (WordNet, symspellpy, wordllama), no mocks."""
from __future__ import annotations

import random

import pytest

from lmcritic.errors import ConfigError
from lmcritic.perturb import PERTURBATIONS, WORD_SWAPS, Edit, apply_edits, perturbation, tokenize, word_swap

TEXT = "The film isn't bad, and Mary says it was 2 hours of fun in Paris because the acting is excellent."
TEXT_ZH = {"zh": "说实话，这部电影非常好看，我已经推荐给朋友了.", "zh_simplified": "說實話，這部電影非常好看。",
           "zh_to_formal": "讲真，这片子超好看～🙂"}  # Chinese perturbations get Chinese text


def _text(name: str) -> str:
    if "zh" in (PERTURBATIONS.get(name).languages or ()):
        return TEXT_ZH.get(name, TEXT_ZH["zh"])
    return TEXT


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("LMCRITIC_HOME", str(tmp_path))  # the WordNet copy goes into a fresh cache


def test_tokenize_and_apply_edits_round_trip() -> None:
    toks = tokenize("I don't like it, 3 stars.")
    assert [t.text for t in toks] == ["I", "don't", "like", "it", "3", "stars"]
    text = "I don't like it."
    edits = [Edit(8, 12, "like", "love", "x"), Edit(2, 7, "don't", "do not", "x")]
    assert apply_edits(text, edits) == "I do not love it."
    with pytest.raises(ConfigError):
        apply_edits(text, [Edit(0, 5, "I don", "", "x"), Edit(2, 7, "don't", "", "x")])
    with pytest.raises(ConfigError):
        apply_edits(text, [Edit(0, 1, "X", "Y", "x")])


@pytest.mark.parametrize("name", [n for n in PERTURBATIONS.names() if n not in ("embedding_neighbours",)])
def test_every_perturbation_edits_are_consistent(name: str) -> None:
    p, text = perturbation(name), _text(name)
    out = p(text, random.Random(0))
    assert out is not None, name
    new, edits = out
    assert new != text and edits and all(e.kind == name for e in edits)
    assert apply_edits(text, edits) == new  # edits are in original offsets and reproduce the text
    assert p(text, random.Random(0)) == out  # seeded: deterministic


def test_perturbations_return_none_when_not_applicable() -> None:
    rng = random.Random(0)
    assert perturbation("names")("a quiet film about rain .", rng) is None
    assert perturbation("numbers")("it got 8/10 and 4 stars", rng) is None  # ratings carry sentiment: untouched
    assert perturbation("contractions")("good film", rng) is None


def test_typos_are_realistic_non_words() -> None:
    from lmcritic.perturb.char import english_words, realistic_typos

    assert realistic_typos("definitely")[0] == "definately"  # dictionary misspelling first
    assert "form" not in realistic_typos("from")  # a real word is a different word, not a typo
    real = english_words()
    assert not any(t.lower() in real for t in realistic_typos("actor"))
    assert realistic_typos("Movie")[0][0] == "M"


def test_contractions_handle_sst_spacing_and_both_directions() -> None:
    c = perturbation("contractions")
    assert c("the film does n't work", random.Random(0))[0] == "the film does not work"
    assert c("I do not think we have seen it", random.Random(0))[0] == "I don't think we've seen it"


def test_register_shift_both_ways() -> None:
    rng = random.Random(1)
    colloquial = perturbation("to_colloquial", swap_rate=1.0, emoji=0.0, filler=0.0)(
        "I do not think a lot of people will want to see this movie because it is very dull.", rng)[0]
    assert colloquial == colloquial.lower() and "don't" in colloquial and ("cuz" in colloquial or "bc" in colloquial
                                                                            or "'cause" in colloquial)
    formal = perturbation("to_formal")("lol ur gonna love this flick tbh 🎬", rng)[0]
    assert formal == "Your going to love this film to be honest."


def test_to_formal_drops_a_filler_before_a_final_emoji_without_overlapping_edits() -> None:
    """The filler's deletion and the final emoji's both wanted the space between them (found on a planted
    register evaluation: the diagnosis's rewrite test failed on such inputs)."""
    to_formal = perturbation("to_formal")
    for text, want in [("fr ngl too sus, too long n too little happens lol 🎥",
                        "Too sus, too long n too little happens."),
                       ("special effects fr fr 🎬", "Special effects."),
                       ("ngl imo it's also, clearly, a vibe smh 👀", "In my opinion it's also, clearly, a vibe.")]:
        assert to_formal(text, random.Random(0))[0] == want


def test_negation_inserts_and_removes() -> None:
    neg = perturbation("negation")
    assert neg("the film is good .", random.Random(0))[0] == "the film is not good ."
    assert neg("the film isn't good .", random.Random(0))[0] == "the film is good ."
    assert not PERTURBATIONS.get("negation").preserves_label


def test_wordnet_swap_is_pos_aware_and_needs_no_download() -> None:
    swap = word_swap("wordnet")
    toks = tokenize("a very boring movie")
    assert {"film", "picture"} <= set(swap.candidates(toks, 3))
    assert "dull" in swap.candidates(toks, 2)
    assert swap.candidates(tokenize("a"), 0) == []


def test_char_swap_deepwordbug_operations() -> None:
    cands = word_swap("char").candidates(tokenize("good"), 0)
    assert "ogod" in cands and "god" in cands and all(c != "good" for c in cands)


def test_embedding_swap_filters_antonyms_and_variants() -> None:
    cands = word_swap("embedding").candidates(tokenize("a terrible movie"), 1)
    assert "awful" in cands and "wonderful" not in cands and "terribly" not in cands


def test_registries_and_did_you_mean() -> None:
    assert set(WORD_SWAPS.names()) >= {"wordnet", "embedding", "char", "typo"}
    with pytest.raises(ConfigError, match="did you mean"):
        perturbation("typos", rat=0.1)
