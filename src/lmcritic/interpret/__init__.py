"""Interpretability: attributions of a classifier's label or a causal LM's continuation to the input words,
their faithfulness (ERASER comprehensiveness/sufficiency), agreement between methods, a spurious-feature
signal, and self-contained HTML heatmaps.

Methods are registered lazily (nothing heavy at import): ``attributor("integrated_gradients", n_steps=None)``
builds one; call it with a model and a :class:`Target`. ``explain_worst`` explains a run's worst failures and
stores the explanations with the run under the pseudo-probe ``interpret.explanations``.
"""
from __future__ import annotations

import importlib
from typing import Any

from lmcritic.registry import Registry

ATTRIBUTORS: Registry[Any] = Registry("attributors", subclass_of="lmcritic.interpret.base:Attributor")
ATTRIBUTORS.add("grad_x_input", "lmcritic.interpret.gradients:GradientXInput")
ATTRIBUTORS.add("integrated_gradients", "lmcritic.interpret.gradients:IntegratedGradients")
ATTRIBUTORS.add("attention", "lmcritic.interpret.attention:AttentionWeights")
ATTRIBUTORS.add("attention_rollout", "lmcritic.interpret.attention:AttentionRollout")
ATTRIBUTORS.add("occlusion", "lmcritic.interpret.occlusion:Occlusion")
ATTRIBUTORS.add("leave_one_out", "lmcritic.interpret.occlusion:LeaveOneOut")

_EXPORTS = {
    "Target": "lmcritic.interpret.types", "Explanation": "lmcritic.interpret.types",
    "Faithfulness": "lmcritic.interpret.types", "ERASER": "lmcritic.interpret.faithfulness",
    "agreement": "lmcritic.interpret.faithfulness", "rank_correlation": "lmcritic.interpret.faithfulness",
    "top_k_overlap": "lmcritic.interpret.faithfulness", "spurious_share": "lmcritic.interpret.spurious",
    "token_heatmap_html": "lmcritic.interpret.html", "attention_heatmap_html": "lmcritic.interpret.html",
    "explanation_html": "lmcritic.interpret.html", "CaseExplanation": "lmcritic.interpret.cases",
    "explain_record": "lmcritic.interpret.cases", "explain_worst": "lmcritic.interpret.run",
    "EXPLANATIONS_KEY": "lmcritic.stages",
}


def attributor(name: str, **config: Any) -> Any:
    """Build a registered attribution method: ``attributor("occlusion", window=2)``."""
    return ATTRIBUTORS.get(name)(**config)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lmcritic.interpret' has no attribute {name!r}")


__all__ = ["ATTRIBUTORS", "attributor", *sorted(_EXPORTS)]
