"""The lexicon as one flat list of :class:`IdentityTerm` and one compiled regex to find them in text."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lmcritic.errors import ConfigError, did_you_mean
from lmcritic.lexicon import _terms as T

ATTRIBUTES: tuple[str, ...] = ("gender", "race_ethnicity", "religion", "nationality", "age", "disability",
                               "sexual_orientation")
PRONOUNS: dict[str, tuple[str, str]] = {"him": ("male", "him"), "his": ("male", "his"),
                                        "her": ("female", "her"), "hers": ("female", "hers")}


@dataclass(frozen=True)
class IdentityTerm:
    """One lexicon entry. ``qualified``: counts only before a person noun ("black man", not "black comedy")."""

    term: str
    attribute: str
    group: str
    slot: str
    kind: str = "term"  # term | pronoun | name
    qualified: bool = False


@dataclass(frozen=True)
class Mention:
    """A lexicon entry found in a text at characters ``[start, end)``."""

    start: int
    end: int
    text: str
    entry: IdentityTerm

    @property
    def attribute(self) -> str:
        return self.entry.attribute

    @property
    def group(self) -> str:
        return self.entry.group


def _entry(term: str, attribute: str, group: str, slot: str, kind: str = "term") -> IdentityTerm:
    return IdentityTerm(term.rstrip("*").lower(), attribute, group, slot, kind, term.endswith("*"))


def _gender_entries() -> list[IdentityTerm]:
    out = [_entry(form, "gender", group, slot)
           for slot, pair in T.GENDER_PAIRS.items() for group, form in zip(("male", "female"), pair)]
    out += [_entry(t, "gender", g, s) for t, (g, s) in T.GENDER_ALIASES.items()]
    out += [_entry(t, "gender", g, s, "pronoun") for t, (g, s) in PRONOUNS.items()]
    out += [_entry(t, "gender", g, s) for g, slots in T.GENDER_IDENTITY.items() for s, t in slots.items()]
    return out


def _group_entries() -> list[IdentityTerm]:
    out = [_entry(t, a, g, s) for a, groups in T.GROUPS.items() for g, slots in groups.items()
           for s, t in slots.items()]
    out += [_entry(t, a, g, s) for a, aliases in T.ALIASES.items() for t, (g, s) in aliases.items()]
    return out


def _name_entries() -> list[IdentityTerm]:
    out = []
    for (gender, race), names in T.NAMES.items():
        for name in names:
            out.append(IdentityTerm(name.lower(), "gender", gender, "name", "name"))
            out.append(IdentityTerm(name.lower(), "race_ethnicity", race, "name", "name"))
    return out


@lru_cache(maxsize=1)
def all_terms() -> tuple[IdentityTerm, ...]:
    seen: dict[tuple[str, str], IdentityTerm] = {}
    for e in _gender_entries() + _group_entries() + _name_entries():
        seen.setdefault((e.term, e.attribute), e)  # a pair form wins over an alias spelling the same word
    return tuple(seen.values())


def check_attribute(attribute: str) -> str:
    """``attribute`` if the English or the Chinese lexicon has it, else a "did you mean" error."""
    from lmcritic.lexicon._zh_terms import ZH_ATTRIBUTES

    known = ATTRIBUTES + tuple(a for a in ZH_ATTRIBUTES if a not in ATTRIBUTES)
    if attribute not in known:
        raise ConfigError(f"unknown identity attribute {attribute!r}", did_you_mean(attribute, known))
    return attribute


@lru_cache(maxsize=1)
def _by_term() -> dict[str, tuple[IdentityTerm, ...]]:
    out: dict[str, list[IdentityTerm]] = {}
    for e in all_terms():
        out.setdefault(e.term, []).append(e)
    return {k: tuple(v) for k, v in out.items()}


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    terms = sorted(_by_term(), key=len, reverse=True)
    body = "|".join(r"\s+".join(re.escape(w) for w in t.split()) for t in terms)
    return re.compile(rf"(?<![\w'-])(?:{body})(?![\w-])", re.IGNORECASE)


_NEXT_WORD = re.compile(r"\s*([A-Za-z]+)")


def next_word(text: str, end: int) -> str:
    m = _NEXT_WORD.match(text, end)
    return m.group(1).lower() if m else ""


def find(text: str, attributes: frozenset[str] | None = None) -> list[Mention]:
    """Every lexicon mention, left to right; starred terms only before a person noun."""
    out = []
    for m in _pattern().finditer(text):
        key = re.sub(r"\s+", " ", m.group(0).lower())
        for e in _by_term().get(key, ()):
            if attributes is not None and e.attribute not in attributes:
                continue
            if e.qualified and next_word(text, m.end()) not in T.PERSON_NOUNS:
                continue
            out.append(Mention(m.start(), m.end(), m.group(0), e))
    return out


def find_all(text: str, attributes: frozenset[str] | None = None) -> list[Mention]:
    """English mentions and, when the text has Han characters, Chinese ones (``_zh``), left to right."""
    from lmcritic.lang._detect import has_han

    out = find(text, attributes)
    if has_han(text):
        from lmcritic.lexicon import _zh

        out = sorted(out + _zh.find(text, attributes), key=lambda m: (m.start, m.end))
    return out
