"""Input normalisation before the model: what character-level noise and typo attacks rely on is undone.

Steps, each optional: Unicode NFKC (full-width letters, ligatures, many homoglyph tricks), zero-width and
control characters removed, runs of spaces collapsed (line breaks kept: prompts use them), letters repeated
three or more times squeezed to two ("soooo" → "soo"), and every word that is a typo — in neither the 82k-word
spelling dictionary nor common use — replaced by its most probable intended word one edit away (a noisy channel:
word frequency times a typing-error model, :mod:`lmcritic.diagnose._spelling`, the same corrector the fragility
diagnosis tests; capitalised words inside a sentence are taken for names and kept). The input side of each
request changes (prompt, chat messages, classifier text); continuations, perplexity and embedding requests pass
through untouched. Optionally (``register``, on by default when the diagnosed culprit is a register shift),
colloquial inputs are rewritten in formal register before the rest.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from typing import Any, Sequence

from lmcritic.backends.base import Backend
from lmcritic.mitigate.wrappers import WrapperBackend
from lmcritic.requests import (
    ChatMessage,
    ClassifyRequest,
    ClassifyResult,
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)

_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_REPEATS = re.compile(r"([A-Za-z])\1{2,}")


def normalize_text(text: str, *, unicode: bool = True, spelling: bool = True, squeeze: bool = True,
                   register: bool = False) -> str:
    """``text`` with the enabled normalisation steps applied (idempotent on clean text). ``register``: a text with
    colloquial markers (slang, chat abbreviations, emoji) is rewritten in formal register first (the rewrite the
    generalization-mismatch diagnosis tests); a text without them is left as it is."""
    if register:
        from lmcritic.diagnose import _text

        text = _text.formalize(text) if _text.colloquial_markers(text) else text
    if unicode:
        text = unicodedata.normalize("NFKC", text)
        text = _INVISIBLE.sub("", text)
        text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    text = _SPACES.sub(" ", text)
    if squeeze:
        text = _REPEATS.sub(r"\1\1", text)
    if spelling:
        from lmcritic.diagnose import _text

        text = _text.spell_correct(text)
    return text


class NormalizedBackend(WrapperBackend):
    """Normalises the input text of every loglikelihood, generate and classify request."""

    kind = "normalize_input"

    def __init__(self, inner: Backend, unicode: bool = True, spelling: bool = True, squeeze: bool = True,
                 register: bool = False) -> None:
        self._opts = {"unicode": unicode, "spelling": spelling, "squeeze": squeeze, "register": register}
        # settings name the register step only when on: a wrapper made before it keeps its fingerprint
        super().__init__(inner, {k: v for k, v in self._opts.items() if k != "register" or register})

    def fix(self, text: str) -> str:
        return normalize_text(text, **self._opts)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        new = [replace(r, context=self.fix(r.context)) for r in requests]
        self._note(requests, new, "context")
        return self.inner.loglikelihood(new)

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        new = [self._generate_request(r) for r in requests]
        self.note([{"changed": a != b} for a, b in zip(requests, new)])
        return self.inner.generate(new)

    def classify(self, requests: Sequence[ClassifyRequest]) -> list[ClassifyResult]:
        new = [replace(r, text=self.fix(r.text), text_pair=None if r.text_pair is None else self.fix(r.text_pair))
               for r in requests]
        self._note(requests, new, "text")
        return self.inner.classify(new)

    def _generate_request(self, r: GenerateRequest) -> GenerateRequest:
        if r.messages is None:
            return replace(r, prompt=self.fix(r.prompt or ""))
        msgs = tuple(ChatMessage(m.role, self.fix(m.content)) if m.role == "user" else m for m in r.messages)
        return replace(r, messages=msgs)

    def _note(self, old: Sequence[Any], new: Sequence[Any], field: str) -> None:
        self.note([{"changed": getattr(a, field) != getattr(b, field)} for a, b in zip(old, new)])


__all__ = ["NormalizedBackend", "normalize_text"]
