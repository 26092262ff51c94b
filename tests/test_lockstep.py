"""Attacks in lockstep: the same results and queries as one by one, in fewer, larger backend calls."""
from __future__ import annotations

from typing import Any, Sequence

import pytest

from lmcritic.attacks import Attack, ClassifierVictim, Example, NoRepeat, UntargetedFlip
from lmcritic.attacks._lockstep import lockstep
from lmcritic.attacks.guided import GuidedGreedy
from lmcritic.backends.base import Backend
from lmcritic.backends.python import PythonBackend
from lmcritic.errors import BackendError
from lmcritic.requests import Capability, ClassifyRequest

NEG = ("awful", "dull", "boring")


def _sentiment(text: str) -> dict[str, float]:
    words = text.split()
    neg = sum(w in NEG for w in words) + 0.2 * sum(w == "ok" for w in words)
    p = max(0.02, 0.8 - 0.25 * neg)
    return {"negative": 1 - p, "positive": p}


class Recording(Backend):
    """Counts the classify calls (and their sizes) that reach the model; fails on ``poison`` texts."""

    kind = "recording"

    def __init__(self, poison: str | None = None) -> None:
        self.inner = PythonBackend(_sentiment, task="classify", labels=("negative", "positive"))
        self.calls: list[int] = []
        self.poison = poison

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.inner.capabilities

    def fingerprint(self) -> str:
        return "recording"

    def classify(self, requests: Sequence[ClassifyRequest]) -> list[Any]:
        if self.poison and any(self.poison in r.text for r in requests):
            raise BackendError(f"cannot score {self.poison!r}")
        self.calls.append(len(requests))
        return self.inner.classify(requests)


class Swap:
    """A word swap offering a few sentiment words (the attacks' WordSwap protocol)."""

    name = "toy"
    languages = None

    def candidates(self, tokens: Sequence[Any], index: int) -> list[str]:
        return [w for w in ("ok", "nice", "awful", "dull") if w != tokens[index].text.lower()]


TEXTS = ["a fine film", "a fine warm film", "a truly fine and warm film", "great film", "awful awful awful film",
         "a fine film indeed"]


def _attack(budget: int = 12) -> Attack:
    return Attack(UntargetedFlip(ClassifierVictim()), [Swap()], [NoRepeat()],  # type: ignore[list-item]
                  GuidedGreedy(importance="loo"), budget=budget, report_similarity=False)


def _jobs(attack: Attack) -> list:
    return [lambda m, t=t: attack.attack(m, Example(t, label="positive")) for t in TEXTS]


def test_lockstep_gives_the_one_by_one_results_in_fewer_calls() -> None:
    alone, merged = Recording(), Recording()
    one_by_one = [job(alone) for job in _jobs(_attack())]
    together = lockstep(merged, _jobs(_attack()))
    assert [(r.status, r.adversarial, r.queries, r.adversarial_score) for r in together] == \
        [(r.status, r.adversarial, r.queries, r.adversarial_score) for r in one_by_one]
    assert {r.status.value for r in together} >= {"succeeded", "skipped"}  # the examples differ in length of search
    assert sum(merged.calls) == sum(alone.calls)  # the same questions ...
    assert len(merged.calls) < len(alone.calls) / 2 and max(merged.calls) > max(alone.calls)  # ... in fewer calls


def test_lockstep_runs_one_job_at_a_time_in_order() -> None:
    trace: list[str] = []

    def job(name: str):
        def run(model: Backend) -> str:
            for step in range(3):
                trace.append(f"{name}{step}")
                model.classify([ClassifyRequest(f"{name} {step}")])
            return name
        return run

    model = Recording()
    assert lockstep(model, [job("a"), job("b")]) == ["a", "b"]
    assert trace == ["a0", "b0", "a1", "b1", "a2", "b2"] and model.calls == [2, 2, 2]


def test_an_error_is_raised_after_every_job_finished_and_a_handled_one_is_not() -> None:
    model = Recording(poison="bad")
    finished: list[str] = []

    def job(text: str, catch: bool):
        def run(m: Backend) -> str:
            try:
                m.classify([ClassifyRequest(text)])
            except BackendError:
                if not catch:
                    raise
            finished.append(text)
            return text
        return run

    with pytest.raises(BackendError, match="bad"):
        lockstep(model, [job("good", False), job("bad one", False), job("fine", False)])
    assert finished == []  # the merged call failed, so every job that asked in it got the error
    assert lockstep(model, [job("bad", True), job("bad too", True)]) == ["bad", "bad too"]
    with pytest.raises(ZeroDivisionError):
        lockstep(model, [lambda m: 1 / 0, lambda m: m.classify([ClassifyRequest("x")])])


def test_one_job_runs_on_the_model_itself() -> None:
    model = Recording()
    assert lockstep(model, [lambda m: m is model]) == [True]
    assert lockstep(model, []) == []


def test_attack_probes_share_results_per_model_object() -> None:
    """robustness.detect builds the same attack as robustness.attack: on the same model object it reuses the
    results (no model call, no gradient pass); another model object (a mitigated model's run) is attacked afresh."""
    from lmcritic.probes.base import Case
    from lmcritic.probes.robustness import attack_common as common

    cfg = common.AttackConfig(n=len(TEXTS), budget=12)
    cases = [Case(id=f"c{i}", input={"text": t}, expected="positive", tags={"recipe": "toy"})
             for i, t in enumerate(TEXTS)]
    model, other = Recording(), Recording()
    first = common.attack_cases(cfg, model, cases, lambda m, recipe: _attack())
    asked = len(model.calls)
    again = common.attack_cases(cfg, model, cases[::-1], lambda m, recipe: _attack())
    assert len(model.calls) == asked and again == first[::-1]
    other_budget = common.attack_cases(common.AttackConfig(n=len(TEXTS), budget=3), model, cases[:1],
                                       lambda m, recipe: _attack(3))  # other options: not the same attack
    assert other_budget[0].queries <= 3 < first[0].queries and len(model.calls) > asked
    fresh = common.attack_cases(cfg, other, cases, lambda m, recipe: _attack())
    assert other.calls and [r.adversarial for r in fresh] == [r.adversarial for r in first]
