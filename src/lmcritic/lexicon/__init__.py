"""Identity terms and first names per demographic attribute, and counterfactual swaps between groups.

Pure Python and cheap to import. Used by the bias probes, interpretability (share of attribution on identity
terms) and diagnosis (is a bias already in the training data?)::

    >>> from lmcritic.lexicon import find_identity_terms, swap
    >>> [m.group for m in find_identity_terms("She met two Muslim men.")]
    ['female', 'muslim', 'male']
    >>> swap("She lost her keys.", "gender")[0]
    'He lost his keys.'
"""
from __future__ import annotations

import random
from typing import Iterable

from lmcritic.lexicon._index import ATTRIBUTES, IdentityTerm, Mention, all_terms, check_attribute, find
from lmcritic.lexicon._swap import Edit, groups
from lmcritic.lexicon._swap import swap as _swap


def identity_terms(attribute: str | None = None) -> tuple[IdentityTerm, ...]:
    """Every lexicon entry (terms, pronouns, first names), optionally of one attribute."""
    if attribute is None:
        return all_terms()
    check_attribute(attribute)
    return tuple(t for t in all_terms() if t.attribute == attribute)


def find_identity_terms(text: str, attributes: str | Iterable[str] | None = None) -> list[Mention]:
    """Mentions of identity terms in ``text``, left to right (a first name yields a gender and a race mention)."""
    if attributes is None:
        return find(text)
    wanted = frozenset([attributes] if isinstance(attributes, str) else attributes)
    for a in wanted:
        check_attribute(a)
    return find(text, wanted)


def swap(text: str, attribute: str, rng: random.Random | int | None = None,
         to: str | None = None) -> tuple[str, list[Edit]]:
    """Counterfactual of ``text``: every ``attribute`` mention moved to another group, consistently.

    ``rng`` picks target groups and names (a ``random.Random`` or a seed); ``to`` forces the target group.
    Returns the new text and the list of :class:`Edit` (empty, and the text unchanged, when nothing matched).
    """
    return _swap(text, attribute, rng, to)


__all__ = ["ATTRIBUTES", "Edit", "IdentityTerm", "Mention", "find_identity_terms", "groups", "identity_terms",
           "swap"]
