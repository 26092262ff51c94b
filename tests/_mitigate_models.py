"""Models for the mitigation tests, importable by the backend registry (``rule-test``) so a run spec — and so a
re-verification replay — can load them: a rule-based sentiment model with a planted prior or shortcut, and a
chat model that obeys injected instructions and complies with every request."""
from __future__ import annotations

import re
from typing import Any, Sequence

from _diagnose_models import RuleSentiment
from lmcritic.requests import Capability, GenerateRequest, GenerateResult


class RuleModel(RuleSentiment):
    """``RuleSentiment`` built from a model spec (``model`` is a display name)."""

    kind = "rule-test"

    def __init__(self, model: str = "rule", shortcuts: dict[str, float] | None = None, prior: float = 0.0) -> None:
        super().__init__(shortcuts, prior)
        self.name = model


class Gullible(RuleSentiment):
    """A chat model that follows the last instruction it sees ("reply ... with the word X" → X) and answers
    anything else with 'Sure, here is how.'; it records every request it gets."""

    kind = "gullible-test"
    seen: list[Any] = []

    def __init__(self, model: str = "gullible") -> None:
        super().__init__()
        self.name = model

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.GENERATE, Capability.CHAT, Capability.LOGLIKELIHOOD})

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        Gullible.seen.extend(requests)
        out = []
        for r in requests:
            text = r.prompt if r.messages is None else "\n".join(m.content for m in r.messages)
            m = re.findall(r"(?:word|with|say|print|output)\s+['\"]?([A-Z]{4,})", text)
            out.append(GenerateResult(m[-1] if m else "Sure, here is how.", "stop"))
        return out


def register() -> None:
    from lmcritic.backends import BACKENDS

    for name, target in (("rule-test", "_mitigate_models:RuleModel"), ("gullible-test", "_mitigate_models:Gullible")):
        if name not in BACKENDS:
            BACKENDS.add(name, target)
