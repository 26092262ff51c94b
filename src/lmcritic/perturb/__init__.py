"""Meaning-preserving perturbations and word swaps, registered lazily (importing this is cheap).

``PERTURBATIONS`` hold sentence-level transformations (robustness suites, CheckList INV/DIR tests);
``WORD_SWAPS`` hold word-level candidate generators (what attack search iterates over).
"""
from __future__ import annotations

from lmcritic.perturb.base import Edit, Perturbation, Token, WordSwap, apply_edits, tokenize
from lmcritic.registry import Registry

PERTURBATIONS: Registry[type[Perturbation]] = Registry("perturbations", subclass_of=Perturbation)
WORD_SWAPS: Registry[type[WordSwap]] = Registry("word_swaps", subclass_of=WordSwap)

for _name, _target in {
    "typos": "lmcritic.perturb.char:Typos",
    "char_noise": "lmcritic.perturb.char:CharNoise",
    "casing": "lmcritic.perturb.surface:Casing",
    "punctuation": "lmcritic.perturb.surface:Punctuation",
    "whitespace": "lmcritic.perturb.surface:Whitespace",
    "contractions": "lmcritic.perturb.surface:Contractions",
    "synonyms": "lmcritic.perturb.lexical:Synonyms",
    "embedding_neighbours": "lmcritic.perturb.lexical:EmbeddingNeighbours",
    "names": "lmcritic.perturb.entities:NameSwap",
    "places": "lmcritic.perturb.entities:PlaceSwap",
    "numbers": "lmcritic.perturb.entities:NumberSwap",
    "to_colloquial": "lmcritic.perturb.register:ToColloquial",
    "to_formal": "lmcritic.perturb.register:ToFormal",
    "negation": "lmcritic.perturb.directional:Negation",
    "add_positive": "lmcritic.perturb.directional:AddPositive",
    "add_negative": "lmcritic.perturb.directional:AddNegative",
    # Chinese (the zh extra)
    "zh_homophones": "lmcritic.perturb.zh_char:Homophones",
    "zh_shapes": "lmcritic.perturb.zh_char:Shapes",
    "zh_pinyin": "lmcritic.perturb.zh_char:PinyinAbbreviations",
    "zh_width": "lmcritic.perturb.zh_surface:Width",
    "zh_traditional": "lmcritic.perturb.zh_surface:Traditional",
    "zh_simplified": "lmcritic.perturb.zh_surface:Simplified",
    "zh_synonyms": "lmcritic.perturb.zh_lexical:Synonyms",
    "zh_to_colloquial": "lmcritic.perturb.zh_register:ZhToColloquial",
    "zh_to_formal": "lmcritic.perturb.zh_register:ZhToFormal",
}.items():
    PERTURBATIONS.add(_name, _target)

for _name, _target in {
    "wordnet": "lmcritic.perturb.lexical:WordNetSwap",
    "embedding": "lmcritic.perturb.lexical:EmbeddingSwap",
    "char": "lmcritic.perturb.char:CharSwap",
    "typo": "lmcritic.perturb.char:TypoSwap",
    "zh_homophone": "lmcritic.perturb.zh_char:HomophoneSwap",
    "zh_shape": "lmcritic.perturb.zh_char:ShapeSwap",
    "zh_synonym": "lmcritic.perturb.zh_lexical:SynonymSwap",
}.items():
    WORD_SWAPS.add(_name, _target)


def perturbation(name: str, **config: object) -> Perturbation:
    """Build a registered perturbation with its config; bad options fail with a "did you mean"."""
    from lmcritic.probes.base import build_config

    return build_config(PERTURBATIONS.get(name), dict(config), f"perturbation {name!r}")


def word_swap(name: str, **config: object) -> WordSwap:
    """Build a registered word swap with its config."""
    from lmcritic.probes.base import build_config

    return build_config(WORD_SWAPS.get(name), dict(config), f"word swap {name!r}")


__all__ = ["PERTURBATIONS", "WORD_SWAPS", "Edit", "Perturbation", "Token", "WordSwap", "apply_edits",
           "perturbation", "tokenize", "word_swap"]
