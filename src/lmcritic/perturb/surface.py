"""Surface form: casing, punctuation, whitespace and contractions — changes a reader barely notices."""
from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

from lmcritic.perturb.base import Edit, Perturbation, finish, match_case, tokenize

_PUNCT = re.compile(r"\s*[.!?]+\s*$")


@dataclass(frozen=True)
class Casing(Perturbation):
    """Change letter case: ``mode`` upper (all caps), lower, title, sentence, or random (one of those)."""

    name = "casing"
    mode: str = "random"

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        modes = ["upper", "lower", "title", "sentence"] if self.mode == "random" else [self.mode]
        rng.shuffle(modes)
        for mode in modes:  # the first mode that changes something (lower-casing lower-case text does not)
            done = finish(text, [Edit(t.start, t.end, t.text, _recase(t.text, mode, i == 0), self.name)
                                 for i, t in enumerate(tokenize(text))])
            if done:
                return done
        return None


def _recase(word: str, mode: str, first: bool) -> str:
    if mode == "upper":
        return word.upper()
    if mode == "lower":
        return word.lower()
    if mode == "title" or (mode == "sentence" and first):
        return word[:1].upper() + word[1:]
    return word


@dataclass(frozen=True)
class Punctuation(Perturbation):
    """Drop or add end punctuation, and drop commas (CheckList's ``punctuation`` INV test, extended)."""

    name = "punctuation"
    drop_commas: float = 0.5  # chance of dropping each comma

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        edits = [Edit(m.start(), m.end(), m.group(), " ", self.name) for m in re.finditer(r"\s*,\s*", text)
                 if 0 < m.start() and m.end() < len(text.rstrip()) and rng.random() < self.drop_commas]
        end = _PUNCT.search(text)
        if end:
            edits.append(Edit(end.start(), end.end(), end.group(), "", self.name))
        elif text.strip():
            stripped = len(text.rstrip())
            edits.append(Edit(stripped, len(text), text[stripped:], rng.choice((".", "!", "...")), self.name))
        return finish(text, edits)


@dataclass(frozen=True)
class Whitespace(Perturbation):
    """Collapse or double spaces between words, strip/add trailing space, remove spaces before punctuation."""

    name = "whitespace"
    rate: float = 0.2

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        edits = []
        for m in re.finditer(r"\s+", text):
            if m.end() < len(text) and not text[m.end()].isalnum() and m.start() > 0:
                edits.append(Edit(m.start(), m.end(), m.group(), "", self.name))  # "word ." -> "word."
            elif rng.random() < self.rate:
                edits.append(Edit(m.start(), m.end(), m.group(), rng.choice(("  ", "\t", " \n")), self.name))
        inner = [m for m in re.finditer(r" ", text.strip()) if m.start() > 0]
        if not edits and inner:  # always change something: one doubled space
            m = rng.choice(inner)
            offset = len(text) - len(text.lstrip())
            edits.append(Edit(m.start() + offset, m.end() + offset, " ", "  ", self.name))
        return finish(text, edits)


@functools.lru_cache(maxsize=1)
def _contractions() -> tuple[dict[str, str], dict[str, str]]:
    """(contracted -> expanded, expanded -> contracted), unambiguous pairs only (CheckList keeps the same rule)."""
    from lmcritic.perturb._resources import lexicon

    pairs = lexicon("register")["contractions"]
    return dict(pairs), {v: k for k, v in pairs.items()}


def expand_edits(text: str, kind: str) -> list[Edit]:
    """Edits that expand contractions, in both ``doesn't`` and SST's tokenized ``does n't`` forms."""
    contracted, _ = _contractions()
    edits = []
    for m in re.finditer(r"\b([A-Za-z]+) ?(n't|'[a-z]{1,2})\b", text):
        key = (m.group(1) + m.group(2)).lower()
        if key in contracted:
            edits.append(Edit(m.start(), m.end(), m.group(), match_case(m.group(1), contracted[key]), kind))
    return edits


def contract_edits(text: str, kind: str) -> list[Edit]:
    """Edits that contract two-word forms (``do not`` -> ``don't``)."""
    _, expanded = _contractions()
    tokens, edits = tokenize(text), list[Edit]()
    for a, b in zip(tokens, tokens[1:]):
        key = f"{a.text} {b.text}".lower()
        if text[a.end : b.start] == " " and key in expanded and not (edits and edits[-1].end > a.start):
            edits.append(Edit(a.start, b.end, text[a.start : b.end], match_case(a.text, expanded[key]), kind))
    return edits


@dataclass(frozen=True)
class Contractions(Perturbation):
    """Expand contractions if the text has any, else contract (CheckList's ``contractions`` INV test)."""

    name = "contractions"
    direction: str = "auto"  # auto | expand | contract

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        if self.direction in ("auto", "expand"):
            done = finish(text, expand_edits(text, self.name))
            if done or self.direction == "expand":
                return done
        return finish(text, contract_edits(text, self.name))
