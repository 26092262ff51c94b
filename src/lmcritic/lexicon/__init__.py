"""Identity terms and first names per demographic attribute, and counterfactual swaps between groups.

Pure Python and cheap to import. Used by the bias probes, interpretability (share of attribution on identity
terms) and diagnosis (is a bias already in the training data?)::

    >>> from lmcritic.lexicon import find_identity_terms, swap
    >>> [m.group for m in find_identity_terms("She met two Muslim men.")]
    ['female', 'muslim', 'male']
    >>> swap("She lost her keys.", "gender")[0]
    'He lost his keys.'
    >>> swap("她告诉妈妈，张芳很喜欢这部电影。", "gender")[0]
    '他告诉爸爸，张伟很喜欢这部电影。'

Chinese text (any text with Han characters) is matched with the Chinese lexicon too (``_zh_terms``: gender,
ethnic groups as ``race_ethnicity``, and ``region``), on whole jieba words, simplified or traditional.
"""
from __future__ import annotations

import random
from typing import Iterable

from lmcritic.lexicon._index import ATTRIBUTES, IdentityTerm, Mention, all_terms, check_attribute, find_all
from lmcritic.lexicon._swap import Edit
from lmcritic.lexicon._swap import groups as _groups
from lmcritic.lexicon._swap import swap as _swap
from lmcritic.lexicon._zh_terms import ZH_ATTRIBUTES


def identity_terms(attribute: str | None = None) -> tuple[IdentityTerm, ...]:
    """Every lexicon entry (terms, pronouns, first names), optionally of one attribute."""
    if attribute is None:
        return all_terms()
    check_attribute(attribute)
    return tuple(t for t in all_terms() if t.attribute == attribute)


def find_identity_terms(text: str, attributes: str | Iterable[str] | None = None) -> list[Mention]:
    """Mentions of identity terms in ``text``, left to right (a first name yields a gender and a race mention)."""
    if attributes is None:
        return find_all(text)
    wanted = frozenset([attributes] if isinstance(attributes, str) else attributes)
    for a in wanted:
        check_attribute(a)
    return find_all(text, wanted)


def swap(text: str, attribute: str, rng: random.Random | int | None = None,
         to: str | None = None) -> tuple[str, list[Edit]]:
    """Counterfactual of ``text``: every ``attribute`` mention moved to another group, consistently.

    ``rng`` picks target groups and names (a ``random.Random`` or a seed); ``to`` forces the target group.
    Returns the new text and the list of :class:`Edit` (empty, and the text unchanged, when nothing matched).
    """
    from lmcritic.lang import has_han

    if not has_han(text):
        return _swap(text, attribute, rng, to)
    check_attribute(attribute)
    from lmcritic.lexicon import _zh

    if to is not None and to not in groups(attribute, "zh") + groups(attribute, "en"):
        from lmcritic.errors import ConfigError

        raise ConfigError(f"unknown group {to!r} for {attribute}", f"known: {', '.join(groups(attribute, 'zh'))}")
    rand = rng if isinstance(rng, random.Random) else random.Random(0 if rng is None else rng)
    return _zh.swap(text, attribute, rand, to)


def groups(attribute: str, language: str = "en") -> tuple[str, ...]:
    """The groups of an attribute in one language's lexicon (``en`` or ``zh``), in lexicon order; empty when
    that lexicon does not have the attribute."""
    check_attribute(attribute)
    if language == "zh":
        from lmcritic.lexicon import _zh

        return _zh.groups(attribute) if attribute in ZH_ATTRIBUTES else ()
    return _groups(attribute) if attribute in ATTRIBUTES else ()


__all__ = ["ATTRIBUTES", "ZH_ATTRIBUTES", "Edit", "IdentityTerm", "Mention", "find_identity_terms", "groups",
           "identity_terms", "swap"]
