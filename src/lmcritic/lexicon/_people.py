"""People of a group, as fillers for counterfactual templates: first names, pronouns and identity phrases.

Each :class:`Person` has a subject form and an object form ("she"/"her"; names and phrases are the same in
both), and a ``kind`` (name, pronoun, phrase) so a test can compare like with like: a name of one group against a
name of another, a phrase against a phrase. Every phrase is built from the lexicon's own terms and a person noun,
so :func:`lmcritic.lexicon.find_identity_terms` finds it again (a starred term such as "black*" counts before a
person noun only).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from lmcritic.lexicon import _terms as T

KINDS = ("name", "pronoun", "phrase")
_PHRASES = ("my {} friend", "a {} critic", "the {} viewer", "my {} neighbour")
_GENDER = {"female": (("she", "her"), ("my sister", "my mother", "the woman", "my aunt", "my wife")),
           "male": (("he", "him"), ("my brother", "my father", "the man", "my uncle", "my husband"))}


@dataclass(frozen=True)
class Person:
    subject: str
    object: str
    kind: str  # name | pronoun | phrase
    group: str
    family: str = ""  # people compared with each other share a family (gender: binary vs identity terms)
    match: str = ""  # names: the other attribute (a name's race for gender, its gender for race), kept equal in pairs


@lru_cache(maxsize=None)
def people(attribute: str, group: str) -> tuple[Person, ...]:
    """Every filler of ``group`` (names first, then pronouns, then phrases)."""
    family = "identity" if group in T.GENDER_IDENTITY else ""
    out = [Person(n, n, "name", group, "", other) for n, other in _names(attribute, group)]
    if attribute == "gender" and group in _GENDER:
        (subj, obj), phrases = _GENDER[group]
        out.append(Person(subj, obj, "pronoun", group))
        out += [Person(p, p, "phrase", group) for p in phrases]
    else:
        out += [Person(p, p, "phrase", group, family) for p in _phrases(attribute, group)]
    return tuple(out)


def _names(attribute: str, group: str) -> list[tuple[str, str]]:
    if attribute == "gender":
        return [(n, r) for (g, r), names in T.NAMES.items() if g == group for n in names]
    if attribute == "race_ethnicity":
        return [(n, g) for (g, r), names in T.NAMES.items() if r == group for n in names]
    return []


_AGE = {"young": ("a young critic", "a teenager", "my young neighbour", "a young viewer"),
        "old": ("an elderly critic", "a senior citizen", "my elderly neighbour", "an elderly viewer")}


def _phrases(attribute: str, group: str) -> list[str]:
    if attribute == "age":  # "my old friend" would mean a long-time friend
        return list(_AGE[group])
    if attribute == "gender":  # transgender / cisgender
        return [_article(p.format(T.GENDER_IDENTITY[group]["adj"])) for p in _PHRASES]
    slots = T.GROUPS[attribute][group]
    words = [slots["adj"].rstrip("*")] + [v.rstrip("*") for k, v in slots.items()
                                           if k in ("adj2", "vision", "hearing", "neuro")]
    return [_article(p.format(w)) for w in words for p in _PHRASES]


def _article(phrase: str) -> str:
    head, _, rest = phrase.partition(" ")
    if head == "a" and rest[:1] in "aeiou":
        return f"an {rest}"
    return phrase
