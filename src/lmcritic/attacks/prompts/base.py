"""Prompt-level attacks ("buffs", as garak calls them): transforms that rewrite a request so a model complies.

A :class:`Transform` rewrites :class:`AttackPrompt` s (the seed request stays attached, so detectors know what
the attacker wanted) and may read the model's answer back (``restore``: decode base64, translate back). Static
transforms compose left to right (``"base64+dan"``: encode the request, then wrap it in a persona); an
:class:`Adaptive` attack talks to the model itself (multi-turn escalation, suffix search) and may only end a
chain. Every name lives in one registry, :data:`lmcritic.attacks.prompts.TRANSFORMS`.
"""
from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar, Sequence

from lmcritic.backends.base import Backend, check_text
from lmcritic.errors import ConfigError, InputError, LmcriticError
from lmcritic.requests import Capability, ChatMessage


class TransformError(LmcriticError):
    """A transform could not make a usable prompt (invalid text, a helper model failed)."""


@dataclass(frozen=True)
class AttackPrompt:
    """What goes to the model for one seed request: the current user ``text`` after earlier ``history`` turns.

    ``request`` is the plain seed (what the attacker wants answered); ``chain`` the transforms applied so far.
    """

    request: str
    text: str
    history: tuple[ChatMessage, ...] = ()
    chain: tuple[str, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict, compare=False)  # what transforms measured (fidelity)

    @classmethod
    def plain(cls, request: str) -> "AttackPrompt":
        return cls(request=request, text=request)


@dataclass(frozen=True)
class TransformContext:
    """What a transform may use: the model under test, an optional helper model (translation) and a seed."""

    model: Backend | None = None
    helper: Backend | None = None
    seed: int = 0

    def rng(self, *parts: object) -> random.Random:
        return random.Random("\x1f".join(map(str, (self.seed, *parts))))


class Transform(ABC):
    """A prompt rewrite made before the model is asked. Subclasses set ``name``, ``family`` and
    ``description`` and implement :meth:`apply` (a batch: a helper model may be called once for all)."""

    name: ClassVar[str] = "transform"
    family: ClassVar[str] = "other"
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[Capability]] = frozenset()
    extra_queries: ClassVar[int] = 0  # model calls per prompt beyond the attack itself (translation: 2)

    @abstractmethod
    def apply(self, prompts: Sequence[AttackPrompt], ctx: TransformContext) -> list[AttackPrompt]:
        """The rewritten prompts, in order, each with this transform's name appended to its chain."""

    def restore(self, answers: Sequence[str], ctx: TransformContext) -> list[str]:
        """The answers as a reader of the plain request would see them (identity unless overridden)."""
        return list(answers)

    def _mark(self, p: AttackPrompt) -> AttackPrompt:
        return replace(p, chain=(*p.chain, self.name))


class TextTransform(Transform):
    """A rewrite of one prompt at a time, needing no model (encodings, personas, splitting)."""

    def apply(self, prompts: Sequence[AttackPrompt], ctx: TransformContext) -> list[AttackPrompt]:
        return [self._mark(self.rewrite(p, ctx.rng(self.name, p.request))) for p in prompts]

    @abstractmethod
    def rewrite(self, prompt: AttackPrompt, rng: random.Random) -> AttackPrompt:
        """One rewritten prompt (seeded ``rng``: the same request always gets the same rewrite)."""


@dataclass(frozen=True)
class Attempt:
    """One finished attack on one seed: the turns sent, the answer (raw and restored) and the queries spent."""

    prompt: AttackPrompt
    messages: tuple[ChatMessage, ...]
    raw: str
    answer: str
    queries: int
    details: dict[str, Any] = field(default_factory=dict)


Judge = Callable[[Sequence[AttackPrompt], Sequence[str]], list[bool]]  # success per (prompt, answer)


class Adaptive(ABC):
    """An attack that talks to the model (escalates over turns, searches a suffix) under a query budget."""

    name: ClassVar[str] = "adaptive"
    family: ClassVar[str] = "other"
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.GENERATE})
    extra_queries: ClassVar[int] = 0

    @abstractmethod
    def run(self, model: Backend, prompts: Sequence[AttackPrompt], judge: Judge, send: "Sender") -> list[Attempt]:
        """Attack every prompt; ``judge`` says whether an answer complies, ``send`` asks the model."""


class Sender:
    """How a probe asks the model: chat messages when it has chat, else a plain transcript; greedy, bounded."""

    def __init__(self, model: Backend, max_new_tokens: int, system: str | None = None) -> None:
        self.model, self.max_new_tokens, self.system = model, max_new_tokens, system
        self.chat = Capability.CHAT in model.capabilities

    def ask(self, conversations: Sequence[Sequence[ChatMessage]]) -> list[str]:
        from lmcritic.requests import GenerateRequest, GenParams

        params = GenParams(max_new_tokens=self.max_new_tokens)
        head = (ChatMessage("system", self.system),) if self.system else ()
        reqs = [GenerateRequest(messages=(*head, *c), params=params) if self.chat
                else GenerateRequest(prompt=transcript((*head, *c)), params=params) for c in conversations]
        return [r.text for r in self.model.generate(reqs)] if reqs else []


def lower_first(text: str) -> str:
    """"Give me ..." → "give me ..." so a request reads well inside another sentence (acronyms kept)."""
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text[:2].isupper() else text


def transcript(messages: Sequence[ChatMessage]) -> str:
    """A chat as plain text for models without a chat template."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    body = "\n\n".join(f"{names.get(m.role, m.role.title())}: {m.content}" for m in messages)
    return body + "\n\nAssistant:"


@dataclass(frozen=True)
class Chain:
    """Static transforms applied left to right, optionally ended by one adaptive attack."""

    name: str
    steps: tuple[Transform, ...]
    adaptive: Adaptive | None = None

    @property
    def requires(self) -> frozenset[Capability]:
        out = frozenset().union(*(s.requires for s in self.steps))
        return out | (self.adaptive.requires if self.adaptive else frozenset())

    @property
    def family(self) -> str:
        parts = [s.family for s in self.steps] + ([self.adaptive.family] if self.adaptive else [])
        return "+".join(dict.fromkeys(parts)) or "plain"

    @property
    def extra_queries(self) -> int:
        return sum(s.extra_queries for s in self.steps)

    def not_applicable(self, model: Backend) -> str | None:
        missing = sorted(c.value for c in self.requires - model.capabilities)
        if missing:
            return f"{self.name} needs {', '.join(missing)}; the {model.kind} backend does not offer it"
        return None

    def prepare(self, prompts: Sequence[AttackPrompt], ctx: TransformContext) -> list[AttackPrompt]:
        """Run the static steps; text a model cannot take is a :class:`TransformError` naming the step."""
        out = list(prompts)
        for step in self.steps:
            out = step.apply(out, ctx)
            _check(out, step.name)
        return out

    def restore(self, answers: Sequence[str], ctx: TransformContext) -> list[str]:
        out = list(answers)
        for step in reversed(self.steps):
            out = step.restore(out, ctx)
        return out

    def attack(self, model: Backend, prompts: Sequence[AttackPrompt], ctx: TransformContext, send: Sender,
               judge: Judge) -> list[Attempt]:
        """Prepare, ask (or let the adaptive attack converse), and restore every answer; ``judge`` sees
        restored answers. Queries per attempt include the helper calls of the steps (translation)."""
        ready = self.prepare(prompts, ctx)
        if self.adaptive is not None:
            attempts = self.adaptive.run(model, ready, lambda ps, ans: judge(ps, self.restore(ans, ctx)), send)
        else:
            convos = [(*p.history, ChatMessage("user", p.text)) for p in ready]
            attempts = [Attempt(p, c, a, a, 1) for p, c, a in zip(ready, convos, send.ask(convos))]
        restored = self.restore([a.raw for a in attempts], ctx)
        return [replace(a, answer=r, queries=a.queries + self.extra_queries) for a, r in zip(attempts, restored)]


def _check(prompts: Sequence[AttackPrompt], step: str) -> None:
    for p in prompts:
        try:
            check_text(p.text, f"the prompt made by transform {step!r}")
            for m in p.history:
                check_text(m.content, f"a turn made by transform {step!r}", allow_empty=True)
        except InputError as err:
            raise TransformError(f"transform {step!r} produced invalid text: {err.message}",
                                 "drop it from the chain or fix its output") from None


def build_chain(spec: str, **options: Any) -> Chain:
    """``"base64+dan"`` → a :class:`Chain`; ``"plain"`` is the empty chain. Options go to every step that
    declares them (e.g. ``language`` for ``translate``)."""
    from lmcritic.attacks.prompts import TRANSFORMS

    if spec == "plain":
        return Chain("plain", ())
    names = [n.strip() for n in spec.split("+")]
    objs = [_build(TRANSFORMS.get(n), options) for n in names]
    adaptive = [i for i, o in enumerate(objs) if isinstance(o, Adaptive)]
    if adaptive and adaptive != [len(objs) - 1]:
        raise ConfigError(f"chain {spec!r}: an adaptive attack ({names[adaptive[0]]}) can only end a chain",
                          f"write e.g. 'base64+{names[adaptive[0]]}'")
    last = objs[-1] if adaptive else None
    steps = tuple(o for o in objs if isinstance(o, Transform))
    return Chain(spec, steps, last)  # type: ignore[arg-type]


def _build(cls: Any, options: dict[str, Any]) -> Transform | Adaptive:
    import inspect

    params = inspect.signature(cls).parameters
    try:
        return cls(**{k: v for k, v in options.items() if k in params})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"transform {cls.name}: bad option: {err}") from None
