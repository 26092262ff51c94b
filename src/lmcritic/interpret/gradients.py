"""Gradient-based attributions: gradient × input and integrated gradients (Captum, on the embedding layer).

Integrated gradients (Sundararajan et al., 2017) uses Captum's ``LayerIntegratedGradients`` with internal
batching sized from a token budget. With ``n_steps=None`` the step count adapts: it grows until the
convergence delta |sum(attr) - (f(x) - f(baseline))| is within ``tol`` of |f(x) - f(baseline)|, so easy
inputs need a fraction of Captum's default 50 steps and hard ones get more instead of a silent bad answer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmcritic.errors import ConfigError
from lmcritic.interpret._build import build
from lmcritic.interpret._whitebox import Prepared, prepare
from lmcritic.interpret.base import Attributor
from lmcritic.interpret.types import Explanation, Target

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend

IG_METHODS = ("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right")


class GradientXInput(Attributor):
    """Shrikumar et al. (2016): the embedding's dot product with the gradient of f. One forward + backward."""

    name = "grad_x_input"

    def __call__(self, model: Backend, target: Target) -> Explanation:
        import torch

        t0 = time.perf_counter()
        prep = prepare(model, target)
        with prep.wb.gradients():
            emb = prep.layer(prep.ids).detach().requires_grad_(True)
            score = prep.score_embeds(emb)
            (grad,) = torch.autograd.grad(score.sum(), emb)
        attr = (grad * emb.detach()).sum(-1)[0].tolist()
        elapsed = time.perf_counter() - t0
        return build(self.name, target, prep.tokens, prep.offsets, attr, score=float(score[0].detach()),
                     timings={"total_s": elapsed})


@dataclass(frozen=True)
class IGConfig:
    n_steps: int | None = None  # None: adaptive (see tol); an int: exactly that many, like Captum
    method: str = "gausslegendre"
    tol: float = 0.05  # adaptive target: |delta| <= tol * |f(x) - f(baseline)| (or <= abs_tol)
    abs_tol: float = 1e-3
    schedule: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    token_budget: int = 1024  # tokens per forward: internal_batch_size = token_budget // input length

    def __post_init__(self) -> None:
        if self.method not in IG_METHODS:
            raise ConfigError(f"unknown integration method {self.method!r}", f"use one of {', '.join(IG_METHODS)}")
        if self.n_steps is not None and self.n_steps < 2:
            raise ConfigError(f"n_steps must be >= 2, got {self.n_steps}")
        if not self.schedule or any(s < 2 for s in self.schedule) or self.tol <= 0 or self.token_budget < 1:
            raise ConfigError("IG schedule steps must be >= 2, tol > 0 and token_budget >= 1")


class IntegratedGradients(Attributor):
    """``IntegratedGradients(n_steps=None, tol=0.05)(model, target)``; see :class:`IGConfig`."""

    name = "integrated_gradients"

    def __init__(self, **config: Any) -> None:
        self.config = IGConfig(**config)

    def __call__(self, model: Backend, target: Target) -> Explanation:
        t0 = time.perf_counter()
        prep = prepare(model, target)
        cfg = self.config
        steps = (cfg.n_steps,) if cfg.n_steps else cfg.schedule
        tries = []
        for n in steps:
            attr, delta, fx, fb = integrate(prep, n, cfg.method, cfg.token_budget)
            tries.append({"n_steps": n, "delta": delta})
            if abs(delta) <= max(cfg.tol * abs(fx - fb), cfg.abs_tol):
                break
        elapsed = time.perf_counter() - t0
        return build(self.name, target, prep.tokens, prep.offsets, attr, score=fx, baseline_score=fb, delta=delta,
                     n_steps=n, timings={"total_s": elapsed},
                     details={"method": cfg.method, "tries": tries, "converged": abs(delta) <= max(
                         cfg.tol * abs(fx - fb), cfg.abs_tol),
                         "baseline": "pad tokens in the span (template and special tokens kept)"})


def integrate(prep: Prepared, n_steps: int, method: str = "gausslegendre", token_budget: int = 1024,
              internal_batch_size: int | None = None) -> tuple[list[float], float, float, float]:
    """One Captum LayerIntegratedGradients pass: (token attributions, delta, f(x), f(baseline))."""
    import torch
    from captum.attr import LayerIntegratedGradients

    batch = internal_batch_size or max(1, token_budget // max(1, prep.ids.shape[1]))
    lig = LayerIntegratedGradients(prep.forward_ids, prep.layer)
    with prep.wb.gradients():
        attr, delta = lig.attribute(prep.ids, baselines=prep.baseline, n_steps=n_steps, method=method,
                                    internal_batch_size=min(batch, n_steps), return_convergence_delta=True)
    with torch.no_grad():
        fx, fb = (float(v) for v in prep.forward_ids(torch.cat([prep.ids, prep.baseline])))
    return attr.sum(-1)[0].detach().float().tolist(), float(delta[0]), fx, fb
