"""The shared perturbation API: word tokens with char spans, edits in original offsets, and the two kinds
of transformation — sentence-level ``Perturbation`` (robustness suites) and word-level ``WordSwap``
(what attack search iterates over).

Edits are kept in ORIGINAL-text offsets so a record can show exactly what changed, and so attacks can
compose swaps at several positions without re-tokenizing.
"""
from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Sequence

from lmcritic.errors import ConfigError

_WORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9']*[A-Za-z0-9])?|[A-Za-z0-9]")


@dataclass(frozen=True)
class Token:
    """A word of the input with its char span in the text."""

    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Word tokens (letters, digits, inner apostrophes); punctuation and whitespace are skipped. Chinese runs
    are segmented into words (:func:`lmcritic.lang.segment`), so mixed text keeps its words in both languages."""
    from lmcritic.lang._detect import has_han

    if has_han(text):
        from lmcritic.lang._segment import segment

        return segment(text)
    return [Token(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


@dataclass(frozen=True)
class Edit:
    """One change, with char offsets in the ORIGINAL text; ``kind`` is the transformation's registry name."""

    start: int
    end: int
    before: str
    after: str
    kind: str


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Apply non-overlapping edits given in any order (insertions are edits with start == end)."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    out, pos = [], 0
    for e in ordered:
        if e.start < pos or e.end < e.start or e.end > len(text):
            raise ConfigError(f"edits overlap or fall outside the text at {e.start}:{e.end}",
                              "give non-overlapping edits in original-text offsets")
        if text[e.start : e.end] != e.before:
            raise ConfigError(f"edit expects {e.before!r} at {e.start}:{e.end} but the text has "
                              f"{text[e.start:e.end]!r}", "compute edits on the same original text")
        out.append(text[pos : e.start])
        out.append(e.after)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


class Perturbation(ABC):
    """Sentence-level transformation: text -> (perturbed text, edits), or None if it does not apply.

    ``preserves_label`` is False for directional ones (e.g. negation), whose expected effect is a change.
    ``languages`` names the languages it is written for (:mod:`lmcritic.lang` codes; the English ones keep the
    default): probes apply it only to cases in those languages and say so when it applies to none.
    Construct with config (e.g. ``Typos(rate=0.1)``), call with data and a seeded ``random.Random``.
    """

    name: ClassVar[str] = "perturbation"
    preserves_label: ClassVar[bool] = True
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})  # what it is written for; None: any

    @abstractmethod
    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        """The perturbed text and its edits, or None when nothing in ``text`` can be changed."""


class WordSwap(ABC):
    """Word-level candidates: replacements for ``tokens[index]``, the building block of attack search."""

    name: ClassVar[str] = "word_swap"
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})

    @abstractmethod
    def candidates(self, tokens: Sequence[Token], index: int) -> list[str]:
        """Replacement strings for ``tokens[index]`` (never the word itself); may be empty."""


def finish(text: str, edits: Sequence[Edit]) -> tuple[str, tuple[Edit, ...]] | None:
    """Helper for implementations: None when there is nothing to change, else the applied text and edits."""
    edits = tuple(e for e in edits if e.before != e.after)
    if not edits:
        return None
    return apply_edits(text, edits), tuple(sorted(edits, key=lambda e: e.start))


def match_case(template: str, word: str) -> str:
    """Give ``word`` the casing pattern of ``template`` (UPPER, Title or as-is)."""
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word
