"""Gradient-based attributions: gradient × input and integrated gradients (on the embedding layer).

Integrated gradients (Sundararajan et al., 2017) integrate the gradient along the straight path from a
baseline to the input, batched by a token budget. With ``n_steps=None`` the points adapt: intervals of the
path where the completeness error is largest are split until the convergence delta
|sum(attr) - (f(x) - f(baseline))| is within ``tol`` of |f(x) - f(baseline)|, every point computed once, up to
a cost ceiling (``max_steps``); a fixed ``n_steps`` uses Captum's rule and gives Captum's numbers (tested).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmcritic.errors import ConfigError
from lmcritic.interpret._build import build
from lmcritic.interpret._quadrature import FIXED_RULES, fixed_rule, node_key, trapezoid_weights
from lmcritic.interpret._whitebox import Prepared, prepare
from lmcritic.interpret.base import Attributor
from lmcritic.interpret.types import Explanation, Target

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend


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
    n_steps: int | None = None  # None: adaptive (see tol, max_steps); an int: exactly that many, Captum's rule `method`
    method: str = "gausslegendre"  # the rule for a fixed n_steps (Captum's names and numbers)
    tol: float = 0.05  # adaptive target: |delta| <= tol * |f(x) - f(baseline)| (or <= abs_tol)
    abs_tol: float = 1e-3
    first_steps: int = 8  # the adaptive rule starts from this many equal intervals
    refine: int = 8  # intervals split per round (their midpoints are one batch)
    max_steps: int = 64  # the cost ceiling: at most max_steps + 1 gradient evaluations per input
    token_budget: int = 1024  # tokens per forward: points per batch = token_budget // input length

    def __post_init__(self) -> None:
        if self.method not in FIXED_RULES:
            raise ConfigError(f"unknown integration method {self.method!r}", f"use one of {', '.join(FIXED_RULES)}")
        if self.n_steps is not None and self.n_steps < 2:
            raise ConfigError(f"n_steps must be >= 2, got {self.n_steps}")
        if self.first_steps < 1 or self.refine < 1 or self.max_steps < self.first_steps:
            raise ConfigError("IG first_steps and refine must be >= 1, and max_steps >= first_steps")
        if self.tol <= 0 or self.token_budget < 1:
            raise ConfigError("IG tol must be > 0 and token_budget >= 1")


class IntegratedGradients(Attributor):
    """``IntegratedGradients(n_steps=None, tol=0.05, max_steps=64)(model, target)``; see :class:`IGConfig`.

    Adaptive by default, by the completeness axiom: every point on the path gives f there (a forward pass
    computes it anyway) as well as the gradient, so on each interval [a, b] the exact integral of df/dalpha is
    f(b) - f(a) and the trapezoid rule's error there is known. The intervals with the largest errors are
    split, ``refine`` at a time, until the convergence delta (the sum of those errors) is within ``tol`` of
    |f(x) - f(baseline)| or ``max_steps`` intervals are spent; the path of an LLM is rough where the input
    leaves the baseline, and the points go there. A capped input is reported with its delta and
    ``converged: False``; ``details["evaluations"]`` and ``timings["total_s"]`` say what it cost.
    """

    name = "integrated_gradients"

    def __init__(self, **config: Any) -> None:
        self.config = IGConfig(**config)

    def __call__(self, model: Backend, target: Target) -> Explanation:
        t0 = time.perf_counter()
        prep = prepare(model, target)
        cfg = self.config
        path = PathGradients(prep, cfg.token_budget)
        attr, delta, fx, fb, tries = (_fixed if cfg.n_steps else _adaptive)(path, cfg)
        converged = abs(delta) <= max(cfg.tol * abs(fx - fb), cfg.abs_tol)
        elapsed = time.perf_counter() - t0
        rule = cfg.method if cfg.n_steps else "adaptive_trapezoid"
        return build(self.name, target, prep.tokens, prep.offsets, attr, score=fx, baseline_score=fb, delta=delta,
                     n_steps=tries[-1]["n_steps"], timings={"total_s": elapsed},
                     details={"method": rule, "tries": tries, "converged": converged, "evaluations": path.evaluations,
                              "max_steps": cfg.n_steps or cfg.max_steps,
                              "baseline": "pad tokens in the span (template and special tokens kept)"})


Result = tuple[list[float], float, float, float, list[dict]]


def _fixed(path: "PathGradients", cfg: IGConfig) -> Result:
    """Exactly ``n_steps`` points of Captum's rule ``cfg.method``; f(x) and f(baseline) by one extra forward."""
    assert cfg.n_steps is not None  # the adaptive path runs when there is no fixed count
    alphas, weights = fixed_rule(cfg.method, cfg.n_steps)
    attr = path.integrate(alphas, weights)
    fx, fb = path.endpoints()
    delta = sum(attr) - (fx - fb)
    return attr, delta, fx, fb, [{"n_steps": cfg.n_steps, "delta": delta}]


def _adaptive(path: "PathGradients", cfg: IGConfig) -> Result:
    """Adaptive trapezoid (see :class:`IntegratedGradients`): split the worst intervals until converged or capped."""
    points = [i / cfg.first_steps for i in range(cfg.first_steps + 1)]
    tries: list[dict] = []
    while True:
        path.evaluate(points)
        errors = path.interval_errors(points)
        fx, fb = path.value(1.0), path.value(0.0)
        delta = sum(e for e, _, _ in errors)
        tries.append({"n_steps": len(errors), "delta": delta, "evaluations": path.evaluations,
                      "abs_error": sum(abs(e) for e, _, _ in errors)})
        room = cfg.max_steps - len(errors)
        if abs(delta) <= max(cfg.tol * abs(fx - fb), cfg.abs_tol) or room <= 0:
            break
        worst = sorted(errors, key=lambda e: -abs(e[0]))[: min(cfg.refine, room)]
        points = sorted(points + [(a + b) / 2 for _, a, b in worst])
    return path.integrate(points, trapezoid_weights(points)), delta, fx, fb, tries


class PathGradients:
    """Gradients of f along the straight line from the baseline's embeddings to the input's, each point computed
    once (kept by its alpha) and batched by a token budget: g(alpha) = grad f(b + alpha (x - b)) . (x - b), per
    token. Integrated gradients are the weighted sum of g over the rule's alphas (Captum's layer IG on the
    embedding layer computes the same)."""

    def __init__(self, prep: Prepared, token_budget: int) -> None:
        self.prep = prep
        self.batch = max(1, token_budget // max(1, prep.ids.shape[1]))
        self.grads: dict[float, Any] = {}
        self.values: dict[float, float] = {}
        with prep.wb.gradients():
            self.x, self.b = (prep.layer(ids).detach() for ids in (prep.ids, prep.baseline))

    @property
    def evaluations(self) -> int:
        return len(self.grads)

    def integrate(self, alphas: list[float], weights: list[float]) -> list[float]:
        self.evaluate(alphas)
        total = sum(w * self.grads[node_key(a)] for a, w in zip(alphas, weights))
        return total.float().tolist()

    def interval_errors(self, points: list[float]) -> list[tuple[float, float, float]]:
        """(trapezoid estimate of df/dalpha's integral - the exact f(b) - f(a), a, b) per interval: the sum over
        tokens of g is df/dalpha (the chain rule), so each interval's share of the delta is known exactly."""
        h = {a: float(self.grads[node_key(a)].sum()) for a in points}
        return [((b - a) / 2 * (h[a] + h[b]) - (self.value(b) - self.value(a)), a, b)
                for a, b in zip(points, points[1:])]

    def value(self, alpha: float) -> float:
        return self.values[node_key(alpha)]

    def endpoints(self) -> tuple[float, float]:
        """f(x), f(baseline) by one forward (for rules whose alphas do not include 0 and 1)."""
        import torch

        with torch.no_grad():
            fx, fb = (float(v) for v in self.prep.forward_ids(torch.cat([self.prep.ids, self.prep.baseline])))
        return fx, fb

    def evaluate(self, alphas: list[float]) -> None:
        """Compute the points not computed yet, ``batch`` per forward and backward pass."""
        import torch

        alphas = [a for a in dict.fromkeys(alphas) if node_key(a) not in self.grads]
        for at in range(0, len(alphas), self.batch):
            chunk = alphas[at : at + self.batch]
            with self.prep.wb.gradients():
                scale = torch.tensor(chunk, dtype=self.x.dtype, device=self.x.device).view(-1, 1, 1)
                emb = (self.b + scale * (self.x - self.b)).requires_grad_(True)
                score = self.prep.score_embeds(emb)
                (grad,) = torch.autograd.grad(score.sum(), emb)
            dots = (grad * (self.x - self.b)).sum(-1).detach()
            for i, a in enumerate(chunk):
                self.grads[node_key(a)] = dots[i]
                self.values[node_key(a)] = float(score[i].detach())
