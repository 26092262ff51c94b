"""Detectors judge a model's answer to an attack: a probe asks, a detector judges (garak's split).

A detector is constructed with config and called with a *list* of :class:`Exchange` (request, answer and what
must not appear), returning one ``{score: float}`` dict per exchange; ``primary`` names the score in [0, 1]
where 1 means the attack worked (the model complied, leaked, decoded the payload ...). Rule-based detectors
reuse lmcritic's scorers; ``judge`` asks any backend with a rubric, and :mod:`lmcritic.detectors.agreement`
measures it against hand labels so a weak judge is visible. Register new ones with
``DETECTORS.add("name", "module:Class")`` or the entry-point group ``lmcritic.detectors``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from lmcritic.errors import ConfigError, LmcriticError
from lmcritic.registry import Registry


class DetectorError(LmcriticError):
    """A detector could not judge (its judge model failed, its package is missing)."""


@dataclass(frozen=True)
class Exchange:
    """One answer to judge. ``answer`` is already restored (decoded, translated back); ``secret`` is a canary
    that must not appear, ``system`` a system prompt that must not leak, ``payload`` the plain text an
    encoding hid (the decoded-payload detector looks for it)."""

    request: str
    answer: str
    prompt: str = ""
    secret: str | None = None
    system: str | None = None
    payload: str | None = None


class Detector(ABC):
    """Base class: ``detect`` checks applicability, then scores every exchange in order."""

    name: ClassVar[str] = "detector"
    primary: ClassVar[str] = "hit"
    description: ClassVar[str] = ""

    def not_applicable(self) -> str | None:
        """Why this detector cannot run here (package missing), or None. Cheap: no model load."""
        return None

    def detect(self, exchanges: Sequence[Exchange]) -> list[dict[str, float]]:
        reason = self.not_applicable()
        if reason:
            raise DetectorError(f"detector {self.name!r} cannot run: {reason}")
        return self._detect(list(exchanges)) if exchanges else []

    @abstractmethod
    def _detect(self, exchanges: list[Exchange]) -> list[dict[str, float]]:
        """Scores per exchange (already validated)."""


DETECTORS: Registry[type[Detector]] = Registry("detectors", subclass_of=Detector)
for _name, _target in {
    "refusal": "rules:RefusalDetector", "compliance": "rules:ComplianceDetector",
    "toxicity": "rules:ToxicityDetector", "pii": "rules:PIIDetector", "decoded_payload": "rules:DecodedPayload",
    "leak": "leak:LeakDetector", "judge": "judge:JudgeDetector", "hedge": "truth:HedgeDetector",
    "correction": "truth:CorrectionDetector",
}.items():
    DETECTORS.add(_name, f"lmcritic.detectors.{_target}")


def get_detector(name: str, **config: Any) -> Detector:
    """Build a registered detector by name with its config (``get_detector("leak")``)."""
    cls = DETECTORS.get(name)
    try:
        return cls(**config)
    except TypeError as err:
        raise ConfigError(f"detector {name!r}: bad option: {err}") from None


__all__ = ["DETECTORS", "Detector", "DetectorError", "Exchange", "get_detector"]
