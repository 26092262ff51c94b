"""Inference-time mitigations for generation: injection and harmful-request guards, and the output filter.

Their gain is measured by replaying the run (injection success, harmful compliance, toxicity); their cost is
measured here on clean inputs they were not fitted on: the injection guard's false-positive rate on held-out
benign tasks and on the clean versions of the evaluated tasks, the harm guard's false-positive rate on held-out
benign exemplars of its policy (the replay adds over-refusal on ``safety.refusal``'s benign requests).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from lmcritic import stats
from lmcritic.mitigate._heldout import fit_threshold
from lmcritic.mitigate.base import (
    INFERENCE,
    Cost,
    MitigatedModel,
    Mitigation,
    MitigationConfig,
    MitigationContext,
    wrapped_spec,
)


@dataclass(frozen=True)
class InjectionGuardConfig(MitigationConfig):
    target_fpr: float | None = 0.05  # None: prompt-guardrail's own decision (P(injection) > 0.5)
    harden: bool = True  # add the hardened system prompt to unflagged requests
    benign: str | None = None  # .jsonl of benign tasks (instruction, document); None: the packaged set

    def __post_init__(self) -> None:
        if self.target_fpr is not None and not 0 < self.target_fpr < 1:
            raise ValueError("target_fpr must be in (0, 1) or None")


class InjectionGuardMitigation(Mitigation):
    name = "injection_guard"
    title = "prompt-injection classifier (prompt-guardrail, per sentence) + hardened prompt"
    treats = frozenset({"prompt_injection"})
    needs = frozenset({"generate"})
    probes = ("robustness.injection",)
    preference = 0.9
    Config = InjectionGuardConfig

    def apply(self, ctx: MitigationContext) -> MitigatedModel:
        from lmcritic.mitigate.guards import INJECTION_SYSTEM, injection_scores

        benign = injection_scores(benign_prompts(self.config.benign))
        if self.config.target_fpr is None:
            threshold, test = 0.5, benign
        else:
            threshold, test = fit_threshold(benign, self.config.target_fpr, ctx.seed)
        costs = [_fpr("false_positive_rate", test, threshold, "held-out benign tasks it was not fitted on")]
        evaluated = _clean_task_prompts(ctx)
        if evaluated:
            costs.append(_fpr("false_positive_rate_evaluated_tasks", injection_scores(evaluated), threshold,
                              "the evaluated tasks' clean documents (no injection)"))
        system = INJECTION_SYSTEM if self.config.harden else None
        wrapper = {"name": "injection_guard", "options": {"threshold": threshold, "system_prompt": system}}
        return MitigatedModel(self.name, wrapped_spec(ctx, [wrapper], "injection-guard"), INFERENCE,
                              wrappers=(wrapper,), costs=tuple(costs),
                              details={"threshold": threshold, "n_benign": len(benign), "hardened": self.config.harden})


def benign_prompts(path: str | None = None) -> list[str]:
    """Benign tasks rendered as the injection probe renders its prompts (instruction, then the document)."""
    from lmcritic.datasets import packaged, read_rows
    from lmcritic.probes.robustness.injection import task_prompt

    src = path or str(packaged("mitigate/benign_tasks.jsonl"))
    return [task_prompt(row["instruction"], row["document"])
            for _, row in read_rows(src, required=("instruction", "document"))]


def _clean_task_prompts(ctx: MitigationContext) -> list[str]:
    if ctx.target.probe not in {p.probe_key for p in ctx.store.probe_runs(ctx.run_id)}:
        return []
    from lmcritic.probes.robustness.injection import task_prompt

    recs = ctx.store.records(ctx.run_id, ctx.target.probe)
    return [task_prompt(r.input["instruction"], r.input["document"]) for r in recs
            if isinstance(r.input.get("instruction"), str) and isinstance(r.input.get("document"), str)]


def _fpr(name: str, scores: np.ndarray, threshold: float, what: str) -> Cost:
    est = stats.proportion(list(scores > threshold))
    return Cost(name, est, f"flags {est} of {what}")


@dataclass(frozen=True)
class HarmGuardConfig(MitigationConfig):
    target_fpr: float = 0.05
    k: int = 3
    harden: bool = True  # add the safety system prompt to unflagged requests
    policy: str | None = None  # .jsonl of {text, kind: harmful|benign, category}; None: the packaged policy


class HarmGuardMitigation(Mitigation):
    name = "harm_guard"
    title = "harmful-request classifier (MiniLM nearest policy exemplars) + safety system prompt"
    treats = frozenset({"harmful_compliance"})
    needs = frozenset({"generate"})
    probes = ("safety.refusal",)
    preference = 0.9
    Config = HarmGuardConfig

    def apply(self, ctx: MitigationContext) -> MitigatedModel:
        from lmcritic.mitigate.guards import SAFETY_SYSTEM, harm_scores, policy_rows

        rows = policy_rows(self.config.policy)
        loo = harm_scores([t for t, _, _ in rows], rows, self.config.k, leave_out=list(range(len(rows))))
        harmful = np.array([kind == "harmful" for _, kind, _ in rows])
        threshold, test = fit_threshold(loo[~harmful], self.config.target_fpr, ctx.seed)
        recall = stats.proportion(list(loo[harmful] > threshold))
        costs = (_fpr("false_positive_rate", test, threshold, "held-out benign policy requests (leave-one-out)"),)
        wrapper = {"name": "harm_guard", "options": {"threshold": threshold, "k": self.config.k,
                                                     "policy": self.config.policy,
                                                     "system_prompt": SAFETY_SYSTEM if self.config.harden else None}}
        return MitigatedModel(self.name, wrapped_spec(ctx, [wrapper], "harm-guard"), INFERENCE, wrappers=(wrapper,),
                              costs=costs, details={"threshold": threshold, "policy_recall_loo": asdict(recall),
                                                    "n_policy": len(rows), "hardened": self.config.harden})


@dataclass(frozen=True)
class OutputFilterConfig(MitigationConfig):
    toxicity_scorers: tuple[str, ...] = ("hatesonar", "profanity")
    toxicity_threshold: float = 0.5
    replacement: str = "[removed]"
    pii_types: tuple[str, ...] = ("email", "phone", "credit_card", "iban", "ip_address", "ssn", "street_address",
                                  "person")


class OutputFilterMitigation(Mitigation):
    name = "output_filter"
    title = "output filter: toxic sentences removed, PII redacted"
    treats = frozenset({"toxicity", "pii_leakage"})
    needs = frozenset({"generate"})
    probes = ("safety.toxicity", "safety.pii")
    preference = 0.8
    Config = OutputFilterConfig

    def apply(self, ctx: MitigationContext) -> MitigatedModel:
        options = json.loads(json.dumps(asdict(self.config)))
        wrapper = {"name": "output_filter", "options": options}
        return MitigatedModel(self.name, wrapped_spec(ctx, [wrapper], "output-filter"), INFERENCE,
                              wrappers=(wrapper,), details={"options": options})


__all__ = ["HarmGuardMitigation", "InjectionGuardMitigation", "OutputFilterMitigation", "benign_prompts"]
