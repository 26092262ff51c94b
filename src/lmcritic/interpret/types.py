"""What an explanation is: the target being explained and the scores given to the input's tokens and words.

Everything is a frozen dataclass that round-trips through JSON (``lmcritic._serde``), so explanations can be
stored with a run and read back by the report and by diagnosis.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from lmcritic.errors import InputError
from lmcritic.probes.base import ExplainTarget

KINDS = ("continuation", "label")


@dataclass(frozen=True)
class Target:
    """What to explain.

    ``kind="continuation"``: log P(``target`` | ``text``) of a causal LM, minus log P(``foil`` | ``text``) when a
    foil is given. ``kind="label"``: log P(``target`` label | ``text``) of a classifier (minus the foil label's).
    ``span`` is the character range of ``text`` that holds the actual input (e.g. the review inside a prompt
    template): faithfulness removes, and spurious shares count, only words inside it. None: the whole text.
    """

    text: str
    target: str
    foil: str | None = None
    kind: str = "continuation"
    span: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown explanation target kind {self.kind!r}", f"use one of {', '.join(KINDS)}")
        if not isinstance(self.text, str) or not self.text.strip():
            raise InputError("the text to explain is empty", "give the context or text the model saw")
        if not isinstance(self.target, str) or not self.target:
            raise InputError("the explanation target is empty", "give the continuation or label to explain")
        if self.span is not None:
            lo, hi = self.span
            if not 0 <= lo < hi <= len(self.text):
                raise InputError(f"span {self.span} is outside the text (length {len(self.text)})")

    @classmethod
    def from_explain(cls, explain: ExplainTarget) -> "Target":
        """From a record's :class:`~lmcritic.probes.base.ExplainTarget`; its ``span`` text becomes the character
        range of its last occurrence in the context (None when it does not occur)."""
        span = None
        if explain.span and explain.span.strip():
            at = explain.context.rfind(explain.span)
            span = (at, at + len(explain.span)) if at >= 0 else None
        return cls(text=explain.context, target=explain.target, foil=explain.foil, kind=explain.kind, span=span)

    def as_explain(self) -> ExplainTarget:
        """Back to the record field (the span as the text it covers)."""
        span = self.text[self.span[0]:self.span[1]] if self.span is not None else None
        return ExplainTarget(self.text, self.target, self.foil, self.kind, span)

    def label(self) -> str:
        """A short human description, e.g. ``' negative' vs ' positive'``."""
        vs = f" vs {self.foil!r}" if self.foil is not None else ""
        return f"{self.target!r}{vs}"


@dataclass(frozen=True)
class Explanation:
    """Scores for each input token and word; positive means the part pushes toward ``target`` (vs the foil).

    ``score`` is the explained quantity f(x) on the full input and ``baseline_score`` f at the baseline (IG);
    ``delta`` is integrated gradients' convergence delta: sum(attributions) - (f(x) - f(baseline)).
    ``attention`` (attention methods only) is the token-by-token matrix the scores were read from.
    """

    method: str
    target: Target
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    scores: tuple[float, ...]
    words: tuple[str, ...]
    word_offsets: tuple[tuple[int, int], ...]
    word_scores: tuple[float, ...]
    score: float | None = None
    baseline_score: float | None = None
    delta: float | None = None
    n_steps: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    attention: tuple[tuple[float, ...], ...] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def top_words(self, k: int = 5) -> list[tuple[str, float]]:
        """The k words of the span pushing hardest toward the target, strongest first."""
        order = sorted(self.in_span(), key=lambda i: -self.word_scores[i])
        return [(self.words[i], self.word_scores[i]) for i in order[:k]]

    def in_span(self) -> list[int]:
        """Indices of the words inside the target's span (all words when there is no span)."""
        if self.target.span is None:
            return list(range(len(self.words)))
        lo, hi = self.target.span
        return [i for i, (a, b) in enumerate(self.word_offsets) if a >= lo and b <= hi]


@dataclass(frozen=True)
class Faithfulness:
    """ERASER (DeYoung et al., 2020) faithfulness of one explanation, as AOPC over top-k% removal.

    comprehensiveness = f(x) - f(x without the top k% words): high is faithful (removing them hurts).
    sufficiency = f(x) - f(only the top k% words): low is faithful (they alone keep the prediction).
    ``random_*`` are the same for random word orders (the floor an explanation should beat). ``units``:
    "probability" (classifier label, or target vs foil) or "logprob" (a continuation without foil).
    """

    method: str
    comprehensiveness: float
    sufficiency: float
    random_comprehensiveness: float
    random_sufficiency: float
    per_k: dict[str, dict[str, float]]
    full_score: float
    units: str
    n_words: int
    n_queries: int
    seconds: float


def label_position(names: Sequence[str], label: str) -> int:
    """Where ``label`` is among a classifier head's ``names``: the name itself, else a sentiment class read by the
    probes' rules (``positive`` on a head that says ``LABEL_1`` or ``POS``): records name classes, and a model
    fine-tuned without ``id2label`` says LABEL_k."""
    from lmcritic.probes._label_map import head_label

    named = label if label in names else head_label(names, label)
    if named is None or named not in names:
        raise InputError(f"label {label!r} is not one of the classifier's labels {list(names)}",
                         "name one of those labels (or a sentiment class, if the head is a sentiment head)")
    return list(names).index(named)
