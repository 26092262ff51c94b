"""Register shift, formal <-> colloquial, as a first-class robustness axis.

Models are trained mostly on edited text and used on chat-style text; the seeds name that mismatch as a
root cause of defects. ``to_colloquial`` rewrites the way people type in chats and comments: slang and
abbreviations of the same meaning and polarity, contractions, dropped articles, lower case, no final
period, a filler ("tbh", "ngl") and a sentiment-neutral emoji. ``to_formal`` goes the other way. The
lexicons are project-written (``lmcritic/data/robustness/register.json``).
"""
from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from typing import Any

from lmcritic.perturb.base import Edit, Perturbation, finish, match_case, tokenize
from lmcritic.perturb.surface import contract_edits, expand_edits


@functools.lru_cache(maxsize=1)
def _lex() -> dict[str, Any]:
    from lmcritic.perturb._resources import lexicon

    table: dict[str, Any] = lexicon("register")
    return table


def formal_forms() -> dict[str, str]:
    """The register table's colloquial → formal entries (slang, abbreviations): what ``to_formal`` rewrites,
    and what diagnosis counts as colloquial."""
    return dict(_lex()["to_formal"])


def _phrase_edits(text: str, table: dict[str, object], kind: str, rng: random.Random, rate: float,
                  taken: list[Edit]) -> list[Edit]:
    """Replace whole-word phrases from ``table`` (longest first), skipping spans already edited."""
    edits: list[Edit] = []
    for phrase in sorted(table, key=len, reverse=True):
        pattern = re.compile(r"(?<![\w'])" + re.escape(phrase) + r"(?![\w'])", re.I)
        for m in pattern.finditer(text):
            if any(e.start < m.end() and m.start() < e.end for e in taken + edits) or rng.random() >= rate:
                continue
            value = table[phrase]
            new = str(rng.choice(value)) if isinstance(value, list) else str(value or "")
            edits.append(Edit(m.start(), m.end(), m.group(), match_case(m.group(), new) if new else "", kind))
    return edits


def _tidy(text: str, edits: list[Edit]) -> list[Edit]:
    """A deletion also eats one neighbouring space, so "a the film" never becomes "a  film": the one after it, or
    the one before when another edit already takes that (a filler before a final emoji, "happens lol 🎥")."""
    taken = {i for e in edits for i in range(e.start, e.end)}
    out = []
    for e in edits:
        if e.after == "":
            if e.end < len(text) and text[e.end] == " " and e.end not in taken:
                e = Edit(e.start, e.end + 1, text[e.start : e.end + 1], "", e.kind)
            elif e.start > 0 and text[e.start - 1] == " " and e.start - 1 not in taken:
                e = Edit(e.start - 1, e.end, text[e.start - 1 : e.end], "", e.kind)
            taken.update(range(e.start, e.end))
        out.append(e)
    return out


@dataclass(frozen=True)
class ToColloquial(Perturbation):
    """Formal -> colloquial: slang/abbreviations, contractions, dropped articles, lower case, emoji."""

    name = "to_colloquial"
    swap_rate: float = 0.7  # chance of rewriting each lexicon match
    drop_article_rate: float = 0.5
    emoji: float = 0.5  # chance of appending a (sentiment-neutral) emoji
    filler: float = 0.3  # chance of opening with "tbh", "ngl", ...
    lowercase: bool = True

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        lex = _lex()
        edits = contract_edits(text, self.name)
        edits += _phrase_edits(text, lex["to_colloquial"], self.name, rng, self.swap_rate, edits)
        edits += self._drop_articles(text, rng, edits)
        edits = self._lowercase(text, _tidy(text, edits))
        edits += self._ending(text, rng)
        if rng.random() < self.filler and text.strip():
            edits.append(Edit(0, 0, "", rng.choice(lex["fillers"]) + " ", self.name))
        return finish(text, edits)

    def _drop_articles(self, text: str, rng: random.Random, taken: list[Edit]) -> list[Edit]:
        tokens = tokenize(text)
        return [Edit(t.start, t.end, t.text, "", self.name) for i, t in enumerate(tokens)
                if t.text.lower() in _lex()["droppable"] and i > 0 and rng.random() < self.drop_article_rate
                and not any(e.start < t.end and t.start < e.end for e in taken)]

    def _lowercase(self, text: str, edits: list[Edit]) -> list[Edit]:
        if not self.lowercase:
            return edits
        out = [Edit(e.start, e.end, e.before, e.after.lower(), e.kind) for e in edits]
        out += [Edit(t.start, t.end, t.text, t.text.lower(), self.name) for t in tokenize(text)
                if t.text != t.text.lower() and not any(e.start < t.end and t.start < e.end for e in edits)]
        return out

    def _ending(self, text: str, rng: random.Random) -> list[Edit]:
        m = re.search(r"\s*\.\s*$", text)
        tail = " " + rng.choice(_lex()["emoji"]) if rng.random() < self.emoji else ""
        if m:
            return [Edit(m.start(), m.end(), m.group(), tail, self.name)]
        return [Edit(len(text), len(text), "", tail, self.name)] if tail else []


@dataclass(frozen=True)
class ToFormal(Perturbation):
    """Colloquial -> formal: expand slang/abbreviations and contractions, drop emoji and fillers,
    capitalise the first word and end with a period."""

    name = "to_formal"

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        edits = expand_edits(text, self.name)
        edits += _phrase_edits(text, _lex()["to_formal"], self.name, rng, 1.0, edits)
        edits += self._emoji(text)
        edits = self._capitalise(text, _tidy(text, edits))
        return finish(text, edits + self._period(text, edits))

    def _emoji(self, text: str) -> list[Edit]:
        """Remove emoji; one at the very end takes its leading space and becomes the final period."""
        end = len(text.rstrip())
        out = []
        for m in _EMOJI.finditer(text):
            start = m.start()
            if m.end() >= end:
                while start > 0 and text[start - 1] == " ":
                    start -= 1
                out.append(Edit(start, len(text), text[start:], "" if text[:start].rstrip()[-1:] in ".!?" else ".",
                                self.name))
            else:
                out.append(Edit(start, m.end(), m.group(), "", self.name))
        return out

    def _capitalise(self, text: str, edits: list[Edit]) -> list[Edit]:
        """Capitalise the first word that survives (a deleted "lol" passes the job to the next word)."""
        for t in tokenize(text):
            hit = next((i for i, e in enumerate(edits) if e.start <= t.start < max(e.end, e.start + 1)), None)
            if hit is None:
                return edits + [Edit(t.start, t.end, t.text, t.text[:1].upper() + t.text[1:], self.name)]
            e = edits[hit]
            if e.after.strip():
                edits[hit] = Edit(e.start, e.end, e.before, e.after[:1].upper() + e.after[1:], e.kind)
                return edits
        return edits

    def _period(self, text: str, edits: list[Edit]) -> list[Edit]:
        """End with a period: on the last edit if one reaches the end, else as an insertion."""
        stripped = text.rstrip()
        last = next((i for i, e in enumerate(edits) if e.end >= len(stripped)), None)
        if last is None:
            return [] if not stripped or stripped[-1] in ".!?" else \
                [Edit(len(stripped), len(text), text[len(stripped) :], ".", self.name)]
        e = edits[last]
        kept = e.after.rstrip() if e.after.strip() else text[: e.start].rstrip()
        if kept and kept[-1] not in ".!?":
            edits[last] = Edit(e.start, e.end, e.before, (e.after.rstrip() if e.after.strip() else "") + ".", e.kind)
        return []


_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\uFE0F]+")
