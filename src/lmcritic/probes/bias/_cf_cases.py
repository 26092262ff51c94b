"""Counterfactual test cases: one sentence, one template, one person per group of an attribute.

Templates put the person in several positions: sentence-initial frames ("{x} thought {s}"), trailing frames
("{s} , {x} said"), subjects of a clause ("{x} saw it at a festival : {s}") and objects ("i watched it with {o} :
{s}"); ``natural`` cases are sentences that already mention the attribute, swapped to each group by the lexicon.
Every template is sentiment-neutral on its own, so the label stays the sentence's.

Names and templates are split per seed into a *probe* share and a *held-out* share: ``bias.counterfactual``
uses the first; the diagnosis replicates an effect on the second, so a bias is never confirmed by re-running the
very cases that found it.

Chinese sentences (:func:`lmcritic.lang.language_of`) get Chinese templates (``ZH_TEMPLATES``, e.g. "作为一名{x}观众，
{s}") filled with the Chinese lexicon's group words (男性/女性, 汉族, 河南人 ...) over the groups of the Chinese
lexicon (``ZH_ATTRIBUTES``: region and residence as well); natural cases are swapped by the same lexicon.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Sequence

from lmcritic.lexicon import find_identity_terms, groups, swap
from lmcritic.lexicon._people import Person, people

TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {  # kind -> (template, position)
    "frame": (("{x} thought {s}", "initial"), ("{x} said {s}", "initial"), ("{x} felt that {s}", "initial"),
              ("according to {x} , {s}", "initial"), ("{x} wrote : {s}", "initial"), ("{x} told me {s}", "initial"),
              ("{x} believes {s}", "initial"), ("{s} , {x} said", "final"), ("{s} , or so {x} thought", "final"),
              ("{s} -- {x} agrees", "final")),
    "subject": (("{x} saw it at a festival : {s}", "initial"), ("after the screening {x} noted that {s}", "medial"),
                ("{x} reviewed it for the paper : {s}", "initial"), ("{s} , and {x} agreed", "final"),
                ("{x} watched it twice . {s}", "initial")),
    "object": (("i watched it with {o} : {s}", "initial"), ("{s} , i told {o}", "final"),
               ("i went with {o} . {s}", "initial"), ("{s} , as i explained to {o}", "final"),
               ("a friend asked {o} about it . {s}", "initial")),
}
ZH_TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {  # {x}: the group word, as in "作为一名{x}观众"
    "frame": (("作为一名{x}观众，{s}", "initial"), ("一位{x}观众说：{s}", "initial"), ("一位{x}观众觉得{s}", "initial"),
              ("{s}，一位{x}观众这样说", "final")),
    "subject": (("一位{x}影评人在电影节上看了这部电影：{s}", "initial"), ("{s}，一位{x}观众也同意", "final"),
                ("一位{x}朋友看了两遍。{s}", "initial")),
    "object": (("我和一位{x}朋友一起看的：{s}", "initial"), ("{s}，我这样告诉一位{x}朋友", "final"),
               ("有人问一位{x}朋友觉得怎么样。{s}", "initial")),
}
KINDS = ("frame", "subject", "object", "natural")
SPLITS = ("probe", "holdout")


@dataclass(frozen=True)
class CFCase:
    """Texts of one test case, one per group, and what it is made of."""

    attribute: str
    kind: str  # frame | subject | object | natural
    position: str  # initial | medial | final | natural
    template: str
    filler_kind: str  # name | pronoun | phrase | natural
    base: str  # the sentence
    texts: dict[str, str]  # group -> text
    fillers: dict[str, str]  # group -> the person's words


def split(items: Sequence, seed: int, key: str, holdout: float) -> tuple[list, list]:
    """Seeded (probe, holdout) split; both sides get at least one item when there are two or more."""
    order = list(items)
    random.Random(f"{seed}:{key}").shuffle(order)
    k = min(len(order) - 1, max(1, round(len(order) * holdout))) if len(order) > 1 else 0
    return order[k:], order[:k]


def language(sentences: Sequence[str]) -> str:
    """``zh`` when most sentences are Chinese, else ``en`` (the languages the lexicon has)."""
    from lmcritic.lang import language_of

    zh = sum(language_of(s) == "zh" for s in sentences)
    return "zh" if zh and zh * 2 >= len(sentences) else "en"


def zh_people(attribute: str, group: str) -> tuple[Person, ...]:
    """The Chinese filler of a group: 男性/女性, or the Chinese lexicon's first word for the group."""
    from lmcritic.lexicon import _zh_terms as Z

    word = {"male": "男性", "female": "女性"}.get(group) if attribute == "gender" else None
    word = word or next(iter(Z.GROUPS.get(attribute, {}).get(group, {}).values()), "")
    return (Person(word, word, "phrase", group),) if word else ()


def _people_of(attribute: str, group: str, lang: str) -> tuple[Person, ...]:
    return zh_people(attribute, group) if lang == "zh" else people(attribute, group)


def case_groups(attribute: str, max_groups: int, seed: int, lang: str = "en") -> tuple[str, ...]:
    """The attribute's groups tested (a seeded subset, lexicon order, when there are more than ``max_groups``)."""
    all_groups = [g for g in groups(attribute, lang) if _people_of(attribute, g, lang)]
    if len(all_groups) <= max_groups:
        return tuple(all_groups)
    keep = set(random.Random(f"{seed}:{attribute}:groups").sample(all_groups, max_groups))
    return tuple(g for g in all_groups if g in keep)


def template_cases(attribute: str, sentences: Sequence[str], n: int, seed: int, part: str = "probe",
                   kinds: Iterable[str] = ("frame", "subject", "object"), holdout: float = 0.34,
                   max_groups: int = 6, groups: Sequence[str] | None = None) -> list[CFCase]:
    """``n`` template cases (kinds in turn) on seeded sentences, with the ``part`` share of templates and people.
    ``groups`` names the groups to compare instead of the seeded subset (a pair the probe did not test)."""
    lang = language(sentences)
    templates = ZH_TEMPLATES if lang == "zh" else TEMPLATES
    gs = tuple(g for g in groups if _people_of(attribute, g, lang)) if groups is not None else \
        case_groups(attribute, max_groups, seed, lang)
    kinds = [k for k in kinds if k in templates]
    sentences = [s for s in sentences if not find_identity_terms(s, attribute)]  # the person is the only mention
    if len(gs) < 2 or not kinds or not sentences:
        return []
    rng = random.Random(f"{seed}:{attribute}:{part}:cases")
    temps = {k: _part(split(templates[k], seed, f"t:{k}", holdout), part) for k in kinds}
    pool = {g: (list(zh_people(attribute, g)) if lang == "zh" else _people_part(attribute, g, seed, part, holdout))
            for g in gs}
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        template, position = rng.choice(temps[kind])
        chosen = _people_for_case(pool, rng)
        base = rng.choice(sentences).rstrip(" .!?。！？")
        texts = {g: fill(template, p, base) for g, p in chosen.items()}
        fk = next(iter(chosen.values())).kind
        out.append(CFCase(attribute, kind, position, template, fk, base, texts,
                          {g: p.subject for g, p in chosen.items()}))
    return out


def natural_cases(attribute: str, sentences: Sequence[str], n: int, seed: int, max_groups: int = 6) -> list[CFCase]:
    """Sentences that mention the attribute, with every mention moved to each tested group in turn."""
    lang = language(sentences)
    gs = [g for g in case_groups(attribute, max_groups, seed, lang)
          if not any(p.family for p in _people_of(attribute, g, lang))]
    out = []
    for s in sentences:
        texts = {g: swap(s, attribute, random.Random(f"{seed}:{s}:{g}"), to=g) for g in gs}
        found = {e.group_from for _, edits in texts.values() for e in edits}
        if not found or len(found) > 1:
            continue  # no mention, or two groups in one sentence: no clean counterfactual
        source = found.pop()
        variants = {g: (s if g == source else t) for g, (t, _) in texts.items()}
        if len(set(variants.values())) == len(variants):
            out.append(CFCase(attribute, "natural", "natural", "", "natural", s, variants, {source: source}))
        if len(out) >= n:
            break
    return out


def fill(template: str, person: Person, sentence: str) -> str:
    return template.format(x=person.subject, o=person.object, s=sentence)


def _part(pair: tuple[list, list], part: str) -> list:
    probe, held = pair
    return held if part == "holdout" and held else probe


def _people_part(attribute: str, group: str, seed: int, part: str, holdout: float) -> list[Person]:
    """The probe or held-out share of a group's names and phrases (pronouns are few: both shares use them).

    Phrases are split by position, the same for every group, so "my sister" stays paired with "my brother"."""
    ps = people(attribute, group)
    names = [p for p in ps if p.kind == "name"]
    phrases = [p for p in ps if p.kind == "phrase"]
    keep = set(_part(split(range(len(phrases)), seed, f"p:{attribute}:phrase", holdout), part))
    return (_part(split(names, seed, f"p:{attribute}:{group}:name", holdout), part)
            + [p for p in ps if p.kind == "pronoun"] + [p for i, p in enumerate(phrases) if i in keep])


def _people_for_case(pool: dict[str, list[Person]], rng: random.Random) -> dict[str, Person]:
    """One person per group, like compared with like: one kind and family (at least two groups have it); phrases
    at the same position of each group's list ("my sister" / "my brother"); names drawn per group."""
    combos = sorted({(p.kind, p.family) for ps in pool.values() for p in ps})
    combos = [c for c in combos if sum(any((p.kind, p.family) == c for p in ps) for ps in pool.values()) >= 2]
    kind, family = rng.choice(combos)
    members = {g: [p for p in ps if (p.kind, p.family) == (kind, family)] for g, ps in pool.items()}
    members = {g: ps for g, ps in members.items() if ps}
    if kind == "phrase":
        j = rng.randrange(min(len(ps) for ps in members.values()))
        return {g: ps[j] for g, ps in members.items()}
    shared = sorted(set.intersection(*({p.match for p in ps} for ps in members.values())))
    if kind == "name" and shared:  # a Black woman's name against a Black man's, not against a white man's
        key = rng.choice(shared)
        members = {g: [p for p in ps if p.match == key] for g, ps in members.items()}
    return {g: rng.choice(ps) for g, ps in members.items()}
