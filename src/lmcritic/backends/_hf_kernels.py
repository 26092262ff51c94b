"""Swap slow Python-level activation modules of a loaded HF model for fused torch kernels of the same function.

GPT-2's ``gelu_new`` (transformers' ``NewGELUActivation``; ``FastGELUActivation`` is the same formula) is written as
seven elementwise torch ops over the MLP's 4·d-wide activations: on a 2-core CPU they took ~18% of a 124M
forward (profile in ``benchmarks/results/``). ``torch.nn.functional.gelu(x, approximate="tanh")`` computes the
same tanh approximation in one pass; the two differ by rounding only (max |Δ| ≈ 5e-7 on N(0, 4²) inputs), far
inside the 1e-4 log-likelihood contract with lm-evaluation-harness. Exact-erf GELU, SiLU and the rest are already
single kernels and are left alone.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel

_TANH_GELUS = frozenset({"NewGELUActivation", "FastGELUActivation"})


class FusedTanhGELU(torch.nn.Module):
    """``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`` in one fused kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x, approximate="tanh")


def fuse_activations(model: PreTrainedModel) -> int:
    """Replace every tanh-GELU written in Python with :class:`FusedTanhGELU`, in place; returns how many."""
    swaps = [(parent, name) for parent in model.modules() for name, child in parent.named_children()
             if type(child).__name__ in _TANH_GELUS and not any(True for _ in child.parameters())]
    for parent, name in swaps:
        setattr(parent, name, FusedTanhGELU())
    return len(swaps)
