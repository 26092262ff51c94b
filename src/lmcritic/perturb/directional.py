"""Label-changing perturbations for CheckList DIRectional tests: negation, and appending a clearly
positive or negative phrase. The probe, not the perturbation, states the expected direction."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar

from lmcritic.perturb.base import Edit, Perturbation, finish, tokenize

_AUX = frozenset("is was are were am be been will would can could should shall may might must has have had "
                 "does do did".split())
_NEGATED = re.compile(r"\b(?:not|never|no longer)\b|n't\b", re.I)
_NOT_AFTER = re.compile(r"\s+(?:not|never)\b|\s?n't\b", re.I)


@dataclass(frozen=True)
class Negation(Perturbation):
    """Negate the first auxiliary/copula ("is" -> "is not"), or remove an existing negation.

    Only short sentences are negated (``max_words``): in a long sentence with several clauses, negating
    one clause does not reliably reverse the whole review, and the test would measure our rewrite instead.
    """

    name = "negation"
    preserves_label: ClassVar[bool] = False
    max_words: int = 25

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        tokens = tokenize(text)
        if len(tokens) > self.max_words:
            return None
        if _NEGATED.search(text):
            return self._remove(text)
        aux = next((t for t in tokens if t.text.lower() in _AUX), None)
        if aux is None:
            return None
        return finish(text, [Edit(aux.end, aux.end, "", " not", self.name)])

    def _remove(self, text: str) -> tuple[str, tuple[Edit, ...]] | None:
        for t in tokenize(text):
            if t.text.lower() in _AUX or t.text.lower().endswith("n't"):
                if t.text.lower().endswith("n't"):
                    base = {"won't": "will", "can't": "can", "ca": "can"}.get(t.text.lower(), t.text[:-3])
                    return finish(text, [Edit(t.start, t.end, t.text, base, self.name)])
                m = _NOT_AFTER.match(text, t.end)
                if m:
                    return finish(text, [Edit(m.start(), m.end(), m.group(), "", self.name)])
        return None


@dataclass(frozen=True)
class _AddPhrase(Perturbation):
    """Append a short, unambiguous verdict sentence (CheckList's add_phrase DIR test)."""

    preserves_label: ClassVar[bool] = False
    phrases: ClassVar[tuple[str, ...]] = ()

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        stripped = text.rstrip()
        if not stripped:
            return None
        sep = " " if stripped[-1] in ".!?" else ". "
        return finish(text, [Edit(len(stripped), len(text), text[len(stripped) :],
                                  sep + rng.choice(self.phrases), self.name)])


@dataclass(frozen=True)
class AddPositive(_AddPhrase):
    name = "add_positive"
    phrases = ("I loved it.", "It was wonderful.", "Overall, a great experience.", "I really enjoyed it.",
               "Highly recommended.", "It was excellent.")


@dataclass(frozen=True)
class AddNegative(_AddPhrase):
    name = "add_negative"
    phrases = ("I hated it.", "It was awful.", "Overall, a terrible experience.", "I really disliked it.",
               "Not recommended.", "It was dreadful.")
