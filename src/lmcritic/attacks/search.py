"""Search: rank words by importance once, then walk them in that order, keeping the best ``width`` states
(width 1 is TextAttack's greedy word-importance search; wider is beam search). At each word every state in
the beam is expanded with every allowed candidate and the whole set is scored in ONE backend call.

Importance (how words are ranked):
* ``gradient`` — one forward+backward pass on a white-box HF backend (charged as 1 query);
* ``loo`` — leave-one-out deletion, one query per modifiable word (black-box);
* ``pwws`` — PWWS's score: softmax(saliency) × best swap gain, which scores every candidate up front;
* ``order`` — left to right, free;
* ``auto`` — ``gradient`` where the backend offers it, else ``loo``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from lmcritic.attacks import _gradients
from lmcritic.attacks.base import GoalScore, State
from lmcritic.attacks.goals import ClassifierVictim, Oracle, PromptedVictim, render, slot
from lmcritic.errors import ConfigError

if TYPE_CHECKING:
    from lmcritic.attacks.attack import Attack

IMPORTANCE = ("auto", "gradient", "loo", "pwws", "order")


class Search(Protocol):
    """What ``Attack`` needs of a search: walk from ``start`` and return (state, score, importance method)."""

    @property
    def importance(self) -> str: ...

    def run(self, attack: "Attack", oracle: Oracle, start: State, first: GoalScore) -> tuple[State, GoalScore, str]:
        ...


@dataclass(frozen=True)
class Ranking:
    order: tuple[int, ...]
    method: str
    scores: tuple[float, ...] = ()
    estimator: Any = field(default=None, compare=False)  # gradient ranking: _gradients.Estimator


@dataclass(frozen=True)
class BeamSearch:
    """Word-importance search keeping ``width`` states (1 = greedy). ``skip_unhelpful``: drop words whose
    leave-one-out deletion moves the goal score by ≤ 0 (only with ``loo``; saves queries on failures)."""

    width: int = 1
    importance: str = "auto"
    skip_unhelpful: bool = False

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ConfigError(f"beam width must be >= 1, got {self.width}")
        if self.importance not in IMPORTANCE:
            raise ConfigError(f"unknown importance {self.importance!r}", f"one of {', '.join(IMPORTANCE)}")

    def run(self, attack: "Attack", oracle: Oracle, start: State, first: GoalScore) -> tuple[State, GoalScore, str]:
        """The best state found, its score, and the importance method used."""
        ranking = rank(self.importance, attack, oracle, start, first, self.skip_unhelpful)
        beam: list[tuple[State, GoalScore]] = [(start, first)]
        for index in ranking.order:
            if oracle.exhausted:
                break
            expansions = [c for s, _ in beam for c in attack.candidates(s, index)]
            if not expansions:
                continue
            scored = [(c, g) for c, g in zip(expansions, oracle.evaluate([c.text for c in expansions])) if g]
            wins = [x for x in scored if x[1].success]
            if wins:
                return (*_best(wins), ranking.method)
            beam = _top(beam + scored, self.width)
        return (*beam[0], ranking.method)


def rank(method: str, attack: "Attack", oracle: Oracle, start: State, first: GoalScore,
         skip_unhelpful: bool = False) -> Ranking:
    """Order the modifiable words of ``start`` by importance (most important first)."""
    words = [i for i in range(len(start.tokens)) if attack.modifiable(start, i)]
    if method == "auto":
        method = "gradient" if _gradient_ok(attack, oracle) else "loo"
    if method == "gradient" and not _gradient_ok(attack, oracle):
        raise ConfigError("gradient importance needs a white-box HF backend and a label goal",
                          "use importance='loo' or 'auto'")
    if method == "order" or not words:
        return Ranking(tuple(words), method)
    if method == "gradient":
        return _by_gradient(attack, oracle, start, words)
    if method == "pwws":
        return _by_pwws(attack, oracle, start, first, words)
    return _by_deletion(oracle, start, first, words, skip_unhelpful)


def _gradient_ok(attack: "Attack", oracle: Oracle) -> bool:
    victim = getattr(attack.goal, "victim", None)
    return isinstance(victim, (ClassifierVictim, PromptedVictim)) and _gradients.white_box(oracle.model) is not None


def _by_gradient(attack: "Attack", oracle: Oracle, start: State, words: list[int]) -> Ranking:
    if not oracle.spend(1):
        return Ranking((), "gradient")
    wb = _gradients.white_box(oracle.model)
    if wb is None:  # _gradient_ok said yes; a model cannot lose GRADIENTS mid-attack
        return Ranking((), "gradient")
    victim, example = attack.goal.victim, oracle.example  # type: ignore[attr-defined]
    truth = _gradients.label_index(oracle.model, victim, example)
    if isinstance(victim, ClassifierVictim):
        grads = _gradients.classifier_importance(wb, start, truth)
    else:
        prompt = render(victim.template, start.text)
        at = victim.template.index(slot(victim.template))
        grads = _gradients.prompted_importance(wb, start, prompt, at, victim.continuations(example), truth)
    weights = grads.norms
    order = sorted(words, key=lambda i: -weights[i])
    return Ranking(tuple(order), "gradient", tuple(weights[i] for i in order), _gradients.Estimator(wb, grads))


def _by_deletion(oracle: Oracle, start: State, first: GoalScore, words: list[int], skip: bool) -> Ranking:
    scores = oracle.evaluate([start.without(i) for i in words])
    gains = {i: (g.score - first.score if g else -math.inf) for i, g in zip(words, scores)}
    order = sorted(words, key=lambda i: -gains[i])
    if skip:
        order = [i for i in order if gains[i] > 0]
    return Ranking(tuple(order), "loo", tuple(gains[i] for i in order))


def _by_pwws(attack: "Attack", oracle: Oracle, start: State, first: GoalScore, words: list[int]) -> Ranking:
    """PWWS (Ren et al. 2019): H(w) = softmax(saliency)(w) · max gain of w's best synonym. Saliency uses
    deletion rather than an <unk> token (a causal LM has no <unk> it was trained on)."""
    sal = oracle.evaluate([start.without(i) for i in words])
    s = [g.score - first.score if g else -1e9 for g in sal]
    top = max(s)
    soft = [math.exp(v - top) for v in s]
    total = sum(soft)
    gains = []
    for i in words:
        cands = attack.candidates(start, i)
        got = [g for g in oracle.evaluate([c.text for c in cands]) if g]
        gains.append(max((g.score - first.score for g in got), default=0.0))
    h = {i: soft[k] / total * gains[k] for k, i in enumerate(words)}
    order = sorted(words, key=lambda i: -h[i])
    return Ranking(tuple(order), "pwws", tuple(h[i] for i in order))


def _best(items: Sequence[tuple[State, GoalScore]]) -> tuple[State, GoalScore]:
    return max(items, key=lambda x: (x[1].score, -len(x[0].subs)))


def _top(items: Sequence[tuple[State, GoalScore]], width: int) -> list[tuple[State, GoalScore]]:
    seen, out = set(), []
    for st, g in sorted(items, key=lambda x: (-x[1].score, len(x[0].subs))):
        if st.text not in seen:
            seen.add(st.text)
            out.append((st, g))
        if len(out) == width:
            break
    return out
