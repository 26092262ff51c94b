"""Counterfactual swaps: replace every mention of one attribute's groups by another group's form, consistently.

Consistency rules: each source group maps to one target group for the whole text (all "Muslims"/"Islam" become
"Hindus"/"Hinduism"); each first name maps to one name of the target group (keeping the other attribute: a Black
woman's name becomes a Black man's name under a gender swap); case is kept; "a"/"an" before a swapped word is
fixed. Gendered pronouns are resolved by the next word: "her" before a noun is possessive (→ "his"), otherwise
an object (→ "him"); "his" before a noun → "her", otherwise → "hers". That heuristic errs on double-object
clauses ("gave her flowers" → "gave his flowers"); the edits list every change so such cases can be inspected.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from lmcritic.lexicon import _terms as T
from lmcritic.lexicon._index import ATTRIBUTES, Mention, check_attribute, find, next_word

FUNCTION_WORDS = frozenset(
    "to and or but nor the a an that this these those with for from in on at by as of up down out off away back "
    "into onto about over under again when while because if so than then too very is was are were be been being "
    "has have had do does did will would can could should may might must what how why who whom where which it "
    "he she they we you i me him her them us his its their our your my not no alone anyway yet just all both "
    "before after around through since until till yesterday today tomorrow tonight now here there once twice "
    "later soon".split())
GENDER_TARGET = {"male": "female", "female": "male", "transgender": "cisgender", "cisgender": "transgender"}


@dataclass(frozen=True)
class Edit:
    """One replacement: ``old`` at ``[start, end)`` of the original became ``new`` at ``[new_start, new_end)``."""

    start: int
    end: int
    old: str
    new: str
    attribute: str
    group_from: str
    group_to: str
    new_start: int = -1
    new_end: int = -1


def groups(attribute: str) -> tuple[str, ...]:
    """The groups of an attribute, in lexicon order."""
    check_attribute(attribute)
    if attribute == "gender":
        return ("male", "female", "transgender", "cisgender")
    return tuple(T.GROUPS[attribute])


def swap(text: str, attribute: str, rng: random.Random | int | None = None,
         to: str | None = None) -> tuple[str, list[Edit]]:
    """Swap every ``attribute`` mention to another group (random unless ``to``); return new text and edits."""
    check_attribute(attribute)
    if to is not None and to not in groups(attribute):
        from lmcritic.errors import ConfigError

        raise ConfigError(f"unknown group {to!r} for {attribute}", f"known: {', '.join(groups(attribute))}")
    rand = rng if isinstance(rng, random.Random) else random.Random(0 if rng is None else rng)
    mentions = find(text, frozenset({attribute}))
    targets = _group_map(mentions, attribute, rand, to)
    names: dict[str, str] = {}
    edits = [_edit(text, m, targets[m.group], names, rand) for m in mentions if targets.get(m.group)]
    return _apply(text, [e for e in edits if e.new != e.old])


def _group_map(mentions: list[Mention], attribute: str, rand: random.Random, to: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in mentions:
        if m.group in out:
            continue
        if attribute == "gender":
            out[m.group] = GENDER_TARGET[m.group] if to is None or to == m.group else to
        else:
            others = [g for g in groups(attribute) if g != m.group]
            out[m.group] = to if to is not None and to != m.group else rand.choice(others)
    return {k: v for k, v in out.items() if v != k}


def _edit(text: str, m: Mention, target: str, names: dict[str, str], rand: random.Random) -> Edit:
    e = m.entry
    if e.kind == "name":
        key = m.text.lower()
        if key not in names:
            names[key] = rand.choice(_name_pool(key, e.attribute, target))
        new = names[key]
    elif e.kind == "pronoun":
        new = _pronoun(e.term, next_word(text, m.end))
    else:
        new = _form(e.attribute, target, _slot(e.slot, next_word(text, m.end)))
    edit = Edit(m.start, m.end, m.text, _match_case(m.text, new), e.attribute, e.group, target)
    return _fix_article(text, edit)


def _name_pool(name: str, attribute: str, target: str) -> tuple[str, ...]:
    for (gender, race), pool in T.NAMES.items():
        if name in (n.lower() for n in pool):
            key = (target, race) if attribute == "gender" else (gender, target)
            return T.NAMES.get(key) or pool
    return (name,)


def _slot(slot: str, following: str) -> str:
    """An adjective with no word to modify is used as a noun ("a Muslim." → "a Jew.", not "a Jewish.")."""
    return "noun" if slot == "adj" and (not following or following in FUNCTION_WORDS) else slot


def _pronoun(term: str, following: str) -> str:
    possessive = bool(following) and following not in FUNCTION_WORDS and not following.endswith("ly")
    if term == "her":
        return "his" if possessive else "him"
    if term == "his":
        return "her" if possessive else "hers"
    return {"him": "her", "hers": "his"}[term]


def _form(attribute: str, target: str, slot: str) -> str:
    if attribute == "gender":
        if target in T.GENDER_IDENTITY:
            slots = T.GENDER_IDENTITY[target]
            return (slots.get(slot) or slots["adj"]).rstrip("*")
        return T.GENDER_PAIRS[slot][0 if target == "male" else 1]
    slots = T.GROUPS[attribute][target]
    return (slots.get(slot) or slots["adj"]).rstrip("*")  # groups without a "noun" slot keep the adjective


def _match_case(old: str, new: str) -> str:
    if old.isupper() and len(old) > 1:
        return new.upper()
    if old[:1].isupper():
        return " ".join(w[:1].upper() + w[1:] for w in new.split(" ")) if old.istitle() else new[:1].upper() + new[1:]
    return new


_ARTICLE = re.compile(r"(?<![\w'])(an?)(\s+)$", re.IGNORECASE)


def _fix_article(text: str, edit: Edit) -> Edit:
    """Expand the edit over a preceding "a"/"an" when the new word needs the other one."""
    m = _ARTICLE.search(text, max(0, edit.start - 6), edit.start)
    if not m:
        return edit
    want = "an" if edit.new[:1].lower() in "aeiou" else "a"
    if m.group(1).lower() == want:
        return edit
    article = want if m.group(1).islower() else want.capitalize()
    start = edit.start - len(m.group(0))
    return Edit(start, edit.end, text[start:edit.end], article + m.group(2) + edit.new, edit.attribute,
                edit.group_from, edit.group_to)


def _apply(text: str, edits: list[Edit]) -> tuple[str, list[Edit]]:
    parts, out, pos, shift = [], [], 0, 0
    for e in sorted(edits, key=lambda e: e.start):
        if e.start < pos:  # overlapping (two attributes on one name): keep the first
            continue
        parts += [text[pos:e.start], e.new]
        out.append(Edit(e.start, e.end, e.old, e.new, e.attribute, e.group_from, e.group_to,
                        e.start + shift, e.start + shift + len(e.new)))
        shift += len(e.new) - (e.end - e.start)
        pos = e.end
    parts.append(text[pos:])
    return "".join(parts), out


__all__ = ["ATTRIBUTES", "Edit", "groups", "swap"]
