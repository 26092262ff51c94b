"""The attribution-method interface: construct with config, call with a model and targets.

White-box methods need a backend's gradient access (``GRADIENTS``: ``Backend.white_box()``); black-box ones
only the backend's ``loglikelihood`` or ``classify``, so API models can be explained too. ``not_applicable``
says why a method cannot run on a model before any work, as probes do.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Sequence

from lmcritic.interpret.types import Explanation, Target
from lmcritic.requests import Capability

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend


class Attributor(ABC):
    """Scores each input token by its contribution to a :class:`Target`."""

    name: ClassVar[str] = "attributor"
    white_box: ClassVar[bool] = True

    def not_applicable(self, model: Backend, target: Target | None = None) -> str | None:
        """Why this method cannot explain ``target`` on ``model``, or None."""
        if self.white_box:
            if not model.supports(Capability.GRADIENTS):
                return f"{self.name} needs a white-box (hf) model; the {model.kind} backend is a black box"
            if target is not None:
                want = "seq-classification" if target.kind == "label" else "causal"
                kind = model.white_box().model_kind
                if kind != want:
                    return f"a {target.kind} target needs a {want} model, not {kind}"
            return None
        need = Capability.CLASSIFY if target is not None and target.kind == "label" else Capability.LOGLIKELIHOOD
        if need not in model.capabilities:
            return f"{self.name} needs {need.value}, which the {model.kind} backend does not offer"
        return None

    @abstractmethod
    def __call__(self, model: Backend, target: Target) -> Explanation:
        """Explain one target."""

    def many(self, model: Backend, targets: Sequence[Target]) -> list[Explanation]:
        """Explain several targets (methods that can batch across targets override this)."""
        return [self(model, t) for t in targets]
