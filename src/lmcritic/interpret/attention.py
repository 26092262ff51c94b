"""Attention as explanation: raw last-layer attention and attention rollout (Abnar & Zuidema, 2020).

Both read the attention row of the query position: the classifier's first token (CLS), or, for a causal LM,
the last context token (the one that predicts the continuation). Attention does not depend on which target
is explained (a foil changes nothing) and its weights are non-negative: they say where the model looks, not
what pushes toward the target; faithfulness scores make that difference visible.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from lmcritic.interpret._build import build
from lmcritic.interpret._whitebox import Prepared, prepare
from lmcritic.interpret.base import Attributor
from lmcritic.interpret.types import Explanation, Target

if TYPE_CHECKING:
    import torch

    from lmcritic.backends.base import Backend


def attention_maps(prep: Prepared) -> Any:
    """Every layer's attention for the input, averaged over heads: a tensor [layers, L, L]."""
    import torch

    layers = prep.wb.attentions(prep.ids)
    if not layers:
        from lmcritic.errors import CapabilityError

        raise CapabilityError("the model returns no attention weights", "use grad_x_input or integrated_gradients")
    return torch.stack([a[0].float().mean(0) for a in layers])


def rollout(maps: torch.Tensor, residual: float = 0.5) -> Any:
    """Abnar & Zuidema: mix each layer with the identity (the residual stream), renormalize rows, multiply up."""
    import torch

    n = maps.shape[-1]
    eye = torch.eye(n, dtype=maps.dtype)
    joint = eye
    for layer in maps:
        mixed = residual * eye + (1 - residual) * layer
        mixed = mixed / mixed.sum(-1, keepdim=True)
        joint = mixed @ joint
    return joint


class AttentionWeights(Attributor):
    """The last layer's head-averaged attention from the query position."""

    name = "attention"

    def __call__(self, model: Backend, target: Target) -> Explanation:
        t0 = time.perf_counter()
        prep = prepare(model, target)
        last = attention_maps(prep)[-1]
        return self._explain(prep, last, target, t0)

    def _explain(self, prep: Prepared, matrix: torch.Tensor, target: Target, t0: float) -> Explanation:
        row = matrix[prep.query].tolist()
        grid = tuple(tuple(round(float(x), 5) for x in r) for r in matrix.tolist())
        return build(self.name, target, prep.tokens, prep.offsets, row, attention=grid,
                     timings={"total_s": time.perf_counter() - t0},
                     details={"query_token": prep.query, "target_agnostic": True})


class AttentionRollout(AttentionWeights):
    """Attention rollout over all layers (residual weight 0.5, as in the paper)."""

    name = "attention_rollout"

    def __init__(self, residual: float = 0.5) -> None:
        from lmcritic.errors import ConfigError

        if not 0 <= residual < 1:
            raise ConfigError(f"rollout residual must be in [0, 1), got {residual}")
        self.residual = residual

    def __call__(self, model: Backend, target: Target) -> Explanation:
        t0 = time.perf_counter()
        prep = prepare(model, target)
        return self._explain(prep, rollout(attention_maps(prep), self.residual), target, t0)
