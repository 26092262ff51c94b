"""Goal functions: how close a text is to fooling the model. Every goal scores a LIST of texts with one
batched backend call (a whole beam or candidate set goes to the backend at once).

Victims turn texts into per-label log-scores: a classifier head (``classify``) or a prompted causal LM
(``loglikelihood`` of each label word / answer after a Jinja-free ``{text}`` template).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Sequence

from lmcritic.attacks.base import Example, GoalScore
from lmcritic.backends.base import Backend
from lmcritic.errors import ConfigError
from lmcritic.requests import Capability, GenerateRequest, GenParams, LoglikelihoodRequest

C = Capability


SLOTS = ("{text}", "{{ text }}", "{{text}}")


def render(template: str, text: str) -> str:
    """Put ``text`` into the template's ``{text}`` (or Jinja-style ``{{ text }}``) slot; a plain replace, so
    braces inside ``text`` are safe."""
    return template.replace(slot(template), text)


def slot(template: str) -> str:
    """The text slot of ``template``."""
    for s in SLOTS:
        if s in template:
            return s
    raise ConfigError(f"template {template!r} has no {{text}} slot", "write e.g. 'Review: {text}\\nSentiment:'")


class Victim(ABC):
    """Maps texts to log-scores over answers, in one backend call per list."""

    requires: ClassVar[frozenset[Capability]] = frozenset()

    @abstractmethod
    def answers(self, model: Backend, example: Example) -> tuple[str, ...]:
        """The answer names, in the order of the scores."""

    @abstractmethod
    def log_scores(self, model: Backend, example: Example, texts: Sequence[str]) -> list[list[float]]:
        """Log-scores per text, one per answer."""


class ClassifierVictim(Victim):
    """A classifier-head backend: log of its class probabilities."""

    requires = frozenset({C.CLASSIFY})

    def __init__(self) -> None:
        self._labels: tuple[str, ...] | None = None

    def answers(self, model: Backend, example: Example) -> tuple[str, ...]:
        if self._labels is None:
            from lmcritic.requests import ClassifyRequest

            self._labels = model.classify([ClassifyRequest(example.text)])[0].labels
        return self._labels

    def log_scores(self, model: Backend, example: Example, texts: Sequence[str]) -> list[list[float]]:
        from lmcritic.requests import ClassifyRequest

        out = model.classify([ClassifyRequest(t) for t in texts])
        self._labels = self._labels or (out[0].labels if out else None)
        return [[math.log(max(p, 1e-30)) for p in r.probs] for r in out]


class PromptedVictim(Victim):
    """A causal LM asked ``template`` and scored on each answer's log-likelihood (SST-2 style prompting).

    ``answers`` name the labels; ``words`` are the continuations scored (default: " " + answer). Per-example
    ``choices`` (multiple choice) replace both.
    """

    requires = frozenset({C.LOGLIKELIHOOD})

    def __init__(self, template: str, answers: Sequence[str] = ("negative", "positive"),
                 words: Sequence[str] | None = None) -> None:
        render(template, "x")
        self.template, self._answers = template, tuple(answers)
        self.words = tuple(words) if words else tuple(" " + a for a in answers)
        if len(self.words) != len(self._answers) or len(self._answers) < 2:
            raise ConfigError("a prompted victim needs >= 2 answers and one continuation word per answer")

    def answers(self, model: Backend, example: Example) -> tuple[str, ...]:
        return example.choices or self._answers

    def continuations(self, example: Example) -> tuple[str, ...]:
        return tuple(" " + c.lstrip() for c in example.choices) if example.choices else self.words

    def log_scores(self, model: Backend, example: Example, texts: Sequence[str]) -> list[list[float]]:
        words = self.continuations(example)
        reqs = [LoglikelihoodRequest(render(self.template, t), w) for t in texts for w in words]
        res = model.loglikelihood(reqs)
        k = len(words)
        return [[r.logprob for r in res[i * k : (i + 1) * k]] for i in range(len(texts))]


class Goal(ABC):
    """Scores texts towards an adversarial goal; ``requires`` lists the backend capabilities it uses."""

    name: ClassVar[str] = "goal"

    @property
    @abstractmethod
    def requires(self) -> frozenset[Capability]:
        """Capabilities the backend must offer."""

    @abstractmethod
    def evaluate(self, model: Backend, example: Example, texts: Sequence[str]) -> list[GoalScore]:
        """One score per text, from one batched call (two for generation goals)."""

    def queries_per_text(self) -> int:
        return 1

    def queries_per_batch(self) -> int:
        """Extra model calls per scored list (a generation goal generates once per list)."""
        return 0


def _softmax(xs: Sequence[float]) -> list[float]:
    top = max(xs)
    e = [math.exp(x - top) for x in xs]
    s = sum(e)
    return [v / s for v in e]


class _LabelGoal(Goal):
    def __init__(self, victim: Victim) -> None:
        self.victim = victim

    @property
    def requires(self) -> frozenset[Capability]:
        return self.victim.requires

    def _probs(self, model: Backend, example: Example, texts: Sequence[str]) -> tuple[tuple[str, ...], list]:
        scores = self.victim.log_scores(model, example, texts)
        return self.victim.answers(model, example), [_softmax(s) for s in scores]


class UntargetedFlip(_LabelGoal):
    """Any wrong answer: score = 1 − p(correct); success when the top answer is not the correct one."""

    name = "untargeted"

    def evaluate(self, model: Backend, example: Example, texts: Sequence[str]) -> list[GoalScore]:
        answers, probs = self._probs(model, example, texts)
        truth = _index(answers, example.label, "label")
        out = []
        for p in probs:
            top = max(range(len(p)), key=p.__getitem__)
            out.append(GoalScore(1.0 - p[truth], top != truth, answers[top]))
        return out


class TargetedLabel(_LabelGoal):
    """A chosen wrong answer (``target`` here or per example): score = p(target); success when it is top."""

    name = "targeted"

    def __init__(self, victim: Victim, target: str | None = None) -> None:
        super().__init__(victim)
        self.target = target

    def evaluate(self, model: Backend, example: Example, texts: Sequence[str]) -> list[GoalScore]:
        answers, probs = self._probs(model, example, texts)
        want = _index(answers, self.target or example.target, "target")
        out = []
        for p in probs:
            top = max(range(len(p)), key=p.__getitem__)
            out.append(GoalScore(p[want], top == want, answers[top]))
        return out


class BelowRival(_LabelGoal):
    """Multiple choice / prompted classification on raw log-likelihoods: push log P(correct) below the best
    rival's (or a named ``rival``'s) by ``margin`` nats. Score = LL(rival) − LL(correct)."""

    name = "below_rival"

    def __init__(self, victim: Victim, rival: str | None = None, margin: float = 0.0) -> None:
        super().__init__(victim)
        self.rival, self.margin = rival, margin

    def evaluate(self, model: Backend, example: Example, texts: Sequence[str]) -> list[GoalScore]:
        lls = self.victim.log_scores(model, example, texts)
        answers = self.victim.answers(model, example)
        truth = _index(answers, example.label, "label")
        named = _index(answers, self.rival, "rival") if self.rival else None
        out = []
        for ll in lls:
            rival = named if named is not None else max((i for i in range(len(ll)) if i != truth), key=ll.__getitem__)
            gap = ll[rival] - ll[truth]
            top = max(range(len(ll)), key=ll.__getitem__)
            out.append(GoalScore(gap, gap > self.margin, answers[top]))
        return out


class _GenerationGoal(Goal):
    """Generation goals: a cheap guide (log-likelihood of ``target`` right after the prompt) ranks all texts
    in one batch; only the best-guided text is generated (greedy) to check the goal, so a text counts as
    succeeded only when its real generation does."""

    contain: ClassVar[bool] = True

    def __init__(self, template: str, target: str | None = None, max_new_tokens: int = 32) -> None:
        render(template, "x")
        self.template, self.target, self.max_new_tokens = template, target, max_new_tokens

    @property
    def requires(self) -> frozenset[Capability]:
        return frozenset({C.GENERATE, C.LOGLIKELIHOOD})

    def queries_per_batch(self) -> int:
        return 1

    def evaluate(self, model: Backend, example: Example, texts: Sequence[str]) -> list[GoalScore]:
        target = self.target or example.target
        if not target:
            raise ConfigError(f"the {self.name} goal needs a target string", "set target= or Example.target")
        lls = model.loglikelihood([LoglikelihoodRequest(render(self.template, t), " " + target.strip())
                                   for t in texts])
        guide = [(r.logprob if self.contain else -r.logprob) for r in lls]
        best = max(range(len(texts)), key=guide.__getitem__)
        params = GenParams(max_new_tokens=self.max_new_tokens)
        gen = model.generate([GenerateRequest(prompt=render(self.template, texts[best]), params=params)])[0].text
        hit = target.lower() in gen.lower()
        return [GoalScore(g, (hit == self.contain) if i == best else False, gen if i == best else None)
                for i, g in enumerate(guide)]


class GenerationContains(_GenerationGoal):
    """Make the greedy generation contain ``target`` (case-insensitive)."""

    name = "contains"
    contain = True


class GenerationAvoids(_GenerationGoal):
    """Make the greedy generation no longer contain ``target`` (case-insensitive)."""

    name = "avoids"
    contain = False


def _index(answers: Sequence[str], name: str | None, what: str) -> int:
    if name is None or name not in answers:
        raise ConfigError(f"{what} {name!r} is not one of the model's answers {list(answers)}",
                          f"give the example a {what} among {list(answers)}")
    return list(answers).index(name)


@dataclass
class Oracle:
    """The one door to the model during an attack on one example: memoizes texts (a repeated text costs
    nothing), counts queries (one per distinct text scored, as TextAttack counts them, plus explicit extra
    ones such as a gradient pass) and enforces the per-example ``budget``."""

    goal: Goal
    model: Backend
    example: Example
    budget: int | None = None
    queries: int = 0
    exhausted: bool = False

    def __post_init__(self) -> None:
        self._memo: dict[str, GoalScore] = {}

    def evaluate(self, texts: Sequence[str]) -> list[GoalScore | None]:
        """Scores in order; None for texts left unscored because the budget ran out (``exhausted`` is set)."""
        new = [t for t in dict.fromkeys(texts) if t not in self._memo]
        per, extra = self.goal.queries_per_text(), self.goal.queries_per_batch()
        if self.budget is not None:
            room = max(0, (self.budget - self.queries - extra) // per)
            if room < len(new):
                new, self.exhausted = new[:room], True
        if new:
            self.queries += per * len(new) + extra
            self._memo.update(zip(new, self.goal.evaluate(self.model, self.example, new)))
        return [self._memo.get(t) for t in texts]

    def spend(self, n: int = 1) -> bool:
        """Charge ``n`` extra queries (e.g. a gradient pass); False (and nothing charged) if over budget."""
        if self.budget is not None and self.queries + n > self.budget:
            self.exhausted = True
            return False
        self.queries += n
        return True
