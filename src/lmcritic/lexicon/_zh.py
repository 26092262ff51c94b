"""Chinese identity terms found in text and swapped consistently (see ``_zh_terms`` for the lexicon).

Matching is on whole jieba words of the text in simplified characters (a traditional text is converted with
OpenCC for matching, and the replacements are converted back), so 其他 never yields 他 and 马上 never yields a
person named 马. Swaps are consistent: one target group per source group for the whole text, one new given name
per name (the surname is kept: 张伟 -> 张芳 under a gender swap, 王先生 -> 王女士), every pair form replaced by the
target group's form of the same slot (妈妈 -> 爸爸, 河南人 -> 上海人).
"""
from __future__ import annotations

import functools
import random

from lmcritic.lexicon import _zh_terms as Z
from lmcritic.lexicon._index import IdentityTerm, Mention
from lmcritic.lexicon._swap import Edit

GENDER_GROUPS = ("male", "female")


@functools.lru_cache(maxsize=1)
def entries() -> dict[str, tuple[IdentityTerm, ...]]:
    """Term -> its lexicon entries (a name is one gender entry)."""
    out: dict[str, list[IdentityTerm]] = {}
    for slot, pair in Z.GENDER_PAIRS.items():
        for group, term in zip(GENDER_GROUPS, pair):
            kind = "pronoun" if slot.startswith("pronoun") else "term"
            out.setdefault(term, []).append(IdentityTerm(term, "gender", group, slot, kind))
    for attr, groups in Z.GROUPS.items():
        for group, slots in groups.items():
            for slot, term in slots.items():
                out.setdefault(term, []).append(IdentityTerm(term, attr, group, slot))
        for term, (group, slot) in Z.ALIASES.get(attr, {}).items():
            out.setdefault(term, []).append(IdentityTerm(term, attr, group, slot))
    for gender, names in Z.NICKNAMES.items():
        for n in names:
            out.setdefault(n, []).append(IdentityTerm(n, "gender", gender, "nickname", "name"))
    return {k: tuple(dict.fromkeys(v)) for k, v in out.items()}


@functools.lru_cache(maxsize=1)
def _given() -> dict[str, str]:
    return {g: gender for gender, names in Z.GIVEN_NAMES.items() for g in names}


@functools.lru_cache(maxsize=1)
def _longest() -> int:
    return max(max(map(len, entries())), 1 + max(map(len, _given())))


def simplified(text: str) -> str:
    """``text`` in simplified characters for matching (unchanged when conversion would move offsets)."""
    from lmcritic.perturb._zh_resources import converter

    out = converter("t2s").convert(text)
    return out if len(out) == len(text) else text


def find(text: str, attributes: frozenset[str] | None = None) -> list[Mention]:
    """Every Chinese lexicon mention that spans whole jieba words, left to right, longest first."""
    from lmcritic.lang import segment

    plain = simplified(text)
    tokens = segment(plain)
    ends = {t.end for t in tokens}
    out: list[Mention] = []
    pos = 0
    for t in tokens:
        if t.start < pos:
            continue
        for end in range(min(len(plain), t.start + _longest()), t.start, -1):
            found = _entries_for(plain[t.start : end]) if end in ends else ()
            if found:
                first = {e.attribute: e for e in reversed(found)}  # one entry per attribute (女士: title, not title2)
                out += [Mention(t.start, end, text[t.start : end], e) for e in found
                        if first[e.attribute] is e and (attributes is None or e.attribute in attributes)]
                pos = end
                break
    return out


def _entries_for(term: str) -> tuple[IdentityTerm, ...]:
    if term in entries():
        return entries()[term]
    if term[:1] not in Z.SURNAMES:
        return ()
    if term[1:] in Z.SURNAME_TITLES:  # 王先生, 李女士: the surname is kept, the title swapped
        return (IdentityTerm(term, "gender", Z.SURNAME_TITLES[term[1:]], "titled_name", "name"),)
    gender = _given().get(term[1:])
    return (IdentityTerm(term, "gender", gender, "full_name", "name"),) if gender else ()


def groups(attribute: str) -> tuple[str, ...]:
    return GENDER_GROUPS if attribute == "gender" else tuple(Z.GROUPS[attribute])


def target_groups(mentions: list[Mention], attribute: str, rand: random.Random, to: str | None) -> dict[str, str]:
    """One target group per source group: the other gender, ``to``, or a random group that is neither a source
    nor another source's target (河南人 and 上海人 in one text stay two different regions)."""
    sources = list(dict.fromkeys(m.group for m in mentions))
    out: dict[str, str] = {}
    for g in sources:
        if to is not None:
            out[g] = to
        elif attribute == "gender":
            out[g] = next(x for x in GENDER_GROUPS if x != g)
        else:
            free = [x for x in groups(attribute) if x not in sources and x not in out.values()]
            out[g] = rand.choice(free or [x for x in groups(attribute) if x != g])
    return {k: v for k, v in out.items() if v != k}


def replacement(m: Mention, target: str, names: dict[str, str], rand: random.Random) -> str:
    """The target group's word for mention ``m`` (names: consistent, surname kept)."""
    e = m.entry
    if e.slot == "titled_name":
        return simplified(m.text)[0] + Z.SURNAME_TITLE_OF[target]
    if e.kind == "name":
        key = simplified(m.text)
        if key not in names:
            pool = Z.NICKNAMES[target] if e.slot == "nickname" else tuple(key[0] + g for g in Z.GIVEN_NAMES[target])
            names[key] = rand.choice(pool)
        return names[key]
    if e.attribute == "gender":
        return Z.GENDER_PAIRS[e.slot][GENDER_GROUPS.index(target)]
    slots = Z.GROUPS[e.attribute][target]
    return slots.get(e.slot) or next(iter(slots.values()))


def in_script_of(text: str, new: str) -> str:
    """``new`` in traditional characters when ``text`` is written in them (mostly: one stray 麽 in a simplified
    review does not make it traditional)."""
    from lmcritic.perturb._zh_resources import converter, is_traditional

    return converter("s2t").convert(new) if is_traditional(text) else new


def zh_edits(text: str, attribute: str, rand: random.Random, to: str | None) -> list[Edit]:
    """Edits (original offsets) moving every Chinese ``attribute`` mention to its target group."""
    mentions = find(text, frozenset({attribute}))
    targets = target_groups(mentions, attribute, rand, to)
    names: dict[str, str] = {}
    out = []
    for m in mentions:
        if m.group in targets:
            new = in_script_of(text, replacement(m, targets[m.group], names, rand))
            out.append(Edit(m.start, m.end, m.text, new, attribute, m.group, targets[m.group]))
    return [e for e in out if e.new != e.old]


def swap(text: str, attribute: str, rand: random.Random, to: str | None) -> tuple[str, list[Edit]]:
    """Chinese mentions swapped by this lexicon and, in mixed text, English ones by the English lexicon."""
    from lmcritic.lexicon._index import ATTRIBUTES
    from lmcritic.lexicon._swap import _apply
    from lmcritic.lexicon._swap import groups as en_groups
    from lmcritic.lexicon._swap import swap as en_swap

    edits = zh_edits(text, attribute, rand, to) if attribute in Z.ZH_ATTRIBUTES else []
    if attribute in ATTRIBUTES and to in (None, *en_groups(attribute)):
        middle, applied = _apply(text, edits)
        _, english = en_swap(middle, attribute, rand, to)
        edits += [_to_original(e, applied) for e in english]
    return _apply(text, edits)


def _to_original(e: Edit, applied: list[Edit]) -> Edit:
    """An edit made on the text after the ``applied`` edits, in original offsets (they never overlap)."""
    shift = sum(len(x.new) - (x.end - x.start) for x in applied if x.new_end <= e.start)
    return Edit(e.start - shift, e.end - shift, e.old, e.new, e.attribute, e.group_from, e.group_to)
