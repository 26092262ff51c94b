"""The data of an attack: the example, the state being searched, goal scores and the final result.

An attack edits WORDS of the original text (token index → replacement), so every state knows its edits in
original-text offsets and how many words it changed; the text itself is derived, never stored twice.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from lmcritic.perturb.base import Edit, Token, apply_edits, tokenize


class Status(str, enum.Enum):
    """How an attack on one example ended."""

    SUCCEEDED = "succeeded"  # the goal was reached within the constraints
    FAILED = "failed"  # the search ran out of words/candidates without reaching the goal
    SKIPPED = "skipped"  # the model already fails the clean example (nothing to attack)
    BUDGET = "budget"  # the per-example query budget ran out first


@dataclass(frozen=True)
class Example:
    """What to attack: ``text`` (the editable part), the correct ``label``/answer, an optional ``target``
    (targeted label, or the string a generation goal wants present/absent) and per-example ``choices``."""

    text: str
    label: str | None = None
    target: str | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class GoalScore:
    """A goal's view of one text: ``score`` grows towards the goal; ``success`` once it is reached."""

    score: float
    success: bool
    prediction: str | None = None


@dataclass(frozen=True)
class State:
    """The original text, its word tokens and the substitutions made so far (token index → new word)."""

    original: str
    tokens: tuple[Token, ...]
    subs: tuple[tuple[int, str, str], ...] = ()  # (token index, replacement, swap name), sorted by index

    @classmethod
    def start(cls, text: str) -> "State":
        return cls(text, tuple(tokenize(text)))

    def with_sub(self, index: int, word: str, kind: str) -> "State":
        kept = tuple(s for s in self.subs if s[0] != index)
        return State(self.original, self.tokens, tuple(sorted((*kept, (index, word, kind)))))

    def reverted(self, index: int) -> "State":
        """This state without its substitution at ``index`` (if any)."""
        return State(self.original, self.tokens, tuple(s for s in self.subs if s[0] != index))

    @property
    def changed(self) -> frozenset[int]:
        return frozenset(i for i, _, _ in self.subs)

    @property
    def edits(self) -> tuple[Edit, ...]:
        return tuple(Edit(self.tokens[i].start, self.tokens[i].end, self.tokens[i].text, w, k)
                     for i, w, k in self.subs)

    @property
    def text(self) -> str:
        return apply_edits(self.original, self.edits) if self.subs else self.original

    def without(self, index: int) -> str:
        """The current text with word ``index`` deleted (leave-one-out importance)."""
        tok = self.tokens[index]
        end = tok.end + 1 if self.original[tok.end : tok.end + 1] == " " else tok.end
        gone = Edit(tok.start, end, self.original[tok.start : end], "", "delete")
        return apply_edits(self.original, (*[e for e in self.edits if e.start != tok.start], gone))


@dataclass(frozen=True)
class AttackResult:
    """One attacked example: the texts, the edits (original offsets), queries spent and how it ended."""

    original: str
    adversarial: str
    edits: tuple[Edit, ...]
    queries: int
    status: Status
    recipe: str
    original_prediction: str | None = None
    adversarial_prediction: str | None = None
    original_score: float | None = None
    adversarial_score: float | None = None
    n_words: int = 0
    similarity: float | None = None  # MiniLM cosine of adversarial vs original (None: not computed)
    importance: str = ""  # how words were ranked: gradient | loo | pwws | order
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def words_changed(self) -> int:
        return len({(e.start, e.end) for e in self.edits})

    @property
    def changed_fraction(self) -> float:
        return self.words_changed / self.n_words if self.n_words else 0.0

    @property
    def succeeded(self) -> bool:
        return self.status is Status.SUCCEEDED
