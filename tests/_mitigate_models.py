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


TRAINABLE = "trainable-rule-test"  # RuleModel with a trainer


class RuleTrainer:
    """A trainer for ``rule-test`` models, like a fine-tune in the one way that matters here: each shortcut token's
    push is refitted to its smoothed log-odds of the positive label in the rows that carry it, and a token no row
    carries keeps the push it had (no example, no gradient). It records every corpus it was given."""

    seen: list[Any] = []

    def train(self, base: dict, data: Any, task: Any, out: Any, config: Any, seed: int = 0,
              progress: bool = True) -> Any:
        import json
        import math

        from lmcritic.mitigate.trainers import Trained

        RuleTrainer.seen.append((out, [r.text for r in data.rows]))
        options = dict(base.get("options") or {})
        pushes = dict(options.get("shortcuts") or {})
        for token in pushes:
            rows = [r for r in data.rows if re.search(rf"(?i)\b{re.escape(token)}\b", r.text)]
            if rows:
                pos = sum(str(r.label) == "positive" for r in rows)
                pushes[token] = round(math.log((pos + 0.5) / (len(rows) - pos + 0.5)), 4)
        spec = {"name": base.get("name", "rule"), "backend": TRAINABLE, "options": {**options, "shortcuts": pushes}}
        (out / "model").mkdir(parents=True, exist_ok=True)
        (out / "model" / "spec.json").write_text(json.dumps(spec))
        return Trained(spec, str(out / "model"), {"steps": config.steps, "init": "model", "adapter": "full",
                                                  "wall_s": 0.0})


def register() -> None:
    from lmcritic.backends import BACKENDS
    from lmcritic.mitigate.trainers import TRAINERS

    for name, target in (("rule-test", "_mitigate_models:RuleModel"), ("gullible-test", "_mitigate_models:Gullible"),
                         (TRAINABLE, "_mitigate_models:RuleModel")):
        if name not in BACKENDS:
            BACKENDS.add(name, target)
    if TRAINABLE not in TRAINERS:  # rule-test itself stays a black box
        TRAINERS.add(TRAINABLE, "_mitigate_models:RuleTrainer")
