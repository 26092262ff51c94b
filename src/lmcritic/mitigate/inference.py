"""Inference-time mitigations for label decisions: calibration, input normalisation, an adversarial-input guard.

Each fits what it needs on held-out data (never the evaluation cases), returns the run's model behind a wrapper
(:mod:`lmcritic.mitigate.wrappers`) and reports its cost on clean inputs: the held-out accuracy after
calibration, the share of clean inputs normalisation alters, the guard's false-positive rate measured on a half
of the clean held-out inputs its threshold was not fitted on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lmcritic import stats
from lmcritic.diagnose.hypotheses.objective import CONTENT_FREE  # the diagnosis's inputs: it predicts this fix
from lmcritic.errors import CapabilityError, ConfigError
from lmcritic.mitigate import _heldout as held
from lmcritic.mitigate.base import (
    INFERENCE,
    Cost,
    MitigatedModel,
    Mitigation,
    MitigationConfig,
    MitigationContext,
    wrapped_spec,
)
from lmcritic.requests import Capability

CALIBRATION_METHODS = ("auto", "contextual", "fitted", "temperature", "prior")
SKEWED = 2 / 3  # a training label share from which the corpus's own prior is divided out (auto)


@dataclass(frozen=True)
class CalibrateConfig(MitigationConfig):
    # auto (prior when the diagnosed prior is the label that dominates the training corpus, else contextual;
    # + temperature when held-out labels exist) | contextual | fitted | temperature | prior (the training corpus's
    # label shares divided out: Saerens et al. 2002 / Elkan 2001, toward equal classes)
    method: str = "auto"
    n_heldout: int = 300
    balanced: bool = True  # fitted biases: every class weighs the same (held-out skew is not learnt)

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"method must be one of {CALIBRATION_METHODS}")


class Calibrate(Mitigation):
    """Contextual calibration and temperature scaling of the label scores."""

    name = "calibrate"
    title = "contextual calibration + temperature scaling"
    treats = frozenset({"objective_conflict"})
    needs = frozenset({"label_scores"})
    probes = ("performance.sst2",)
    culprits = frozenset({"prior"})
    preference = 0.9
    Config = CalibrateConfig

    def apply(self, ctx: MitigationContext) -> MitigatedModel:
        from lmcritic.mitigate import calibrate as cal

        model, task = ctx.model(), held.task_of(ctx)
        notes: list[str] = []
        words = list(task.label_words) if task.label_words and model.supports(Capability.LOGLIKELIHOOD) else None
        if not words and not model.supports(Capability.CLASSIFY):
            raise CapabilityError(f"calibrate needs label scores: {ctx.target.probe} gives no label words and the "
                                  f"{model.kind} backend cannot classify", "target a classification probe")
        shares, free = train_shares(ctx, task.labels), None
        if self.config.method == "prior" and shares is None:  # before any held-out row is scored
            raise ConfigError("calibrate method prior divides out the training corpus's label shares",
                              "pass --train PATH (text, label): the rows the model was trained on")
        rows = held.heldout_rows(ctx, task.labels, self.config.n_heldout, notes)
        scores, y = held.score_matrix(held.probe_on_rows(ctx, rows), task.labels) if rows else (None, None)
        method = self.config.method
        if method == "auto":
            method, free = auto_method(ctx, shares)
        if method in ("fitted", "temperature") and scores is None:
            raise ConfigError(f"calibrate method {method} fits on labelled held-out rows",
                              "pass --heldout PATH or --train PATH (text, label)")
        bias, temperature = self._fit(ctx, method, task.labels, scores, y, shares if method == "prior" else free)
        details = {"method": method, "bias": bias.tolist(), "temperature": temperature,
                   **({"train_label_shares": dict(zip(task.labels, shares.tolist()))} if shares is not None else {})}
        costs: tuple[Cost, ...] = ()
        if scores is not None and y is not None and len(y):
            before, after = cal.summary(scores, y, np.zeros(len(task.labels)), 1.0), cal.summary(scores, y, bias,
                                                                                                 temperature)
            details.update(heldout_before=before, heldout_after=after)
            costs = (_accuracy_cost(before, after),)
        option = {"label_words": words} if words else {"labels": list(task.labels)}
        wrapper = {"name": "calibrate", "options": {**option, "bias": bias.tolist(), "temperature": temperature,
                                                    "method": method}}
        return MitigatedModel(self.name, wrapped_spec(ctx, [wrapper], "calibrate"), INFERENCE, wrappers=(wrapper,),
                              costs=costs, details=details, notes=tuple(notes))

    def _fit(self, ctx: MitigationContext, method: str, labels, scores, y,
             prior: np.ndarray | None) -> tuple[np.ndarray, float]:
        """``prior``: the label distribution to divide out when already known (the corpus's shares, or the
        content-free prior ``auto`` measured); measured here for ``contextual`` otherwise."""
        from lmcritic.mitigate import calibrate as cal

        if method == "fitted":
            return cal.fit_bias_temperature(scores, y, self.config.balanced)
        if method in ("prior", "contextual"):
            bias = np.log(prior if prior is not None else content_free_prior(ctx, labels))
        else:
            bias = np.zeros(len(labels))
        bias = bias - bias[0]
        temperature = cal.fit_temperature(scores, y, bias) if scores is not None and len(y) else 1.0
        return bias, temperature


def train_shares(ctx: MitigationContext, labels) -> np.ndarray | None:
    """Each label's share of the training corpus (``--train``; add-one smoothed), or None without labelled rows."""
    if ctx.train is None:
        return None
    from lmcritic.mitigate.data import load_training

    rows = [str(r.label) for r in load_training(ctx.train, labels).rows if r.label is not None]
    if not rows:
        return None
    counts = np.array([rows.count(str(lab)) for lab in labels], dtype=float) + 1.0
    return counts / counts.sum()


def auto_method(ctx: MitigationContext, shares: np.ndarray | None) -> tuple[str, np.ndarray | None]:
    """``prior`` when the diagnosed prior favours the label that dominates the training corpus and the corpus's
    shares imply a stronger prior than the content-free inputs show, else ``contextual``. Content-free inputs are
    out of distribution for a fine-tuned classifier and can under-state the prior its corpus taught (a 90 %-positive
    MiniLM kept 75 % of its minority-class failures under contextual calibration, 20 % under its corpus's shares);
    a prior stronger than the corpus explains came from elsewhere, and the content-free reading holds it. Returns
    the content-free prior too when it was measured, so it is not asked for twice."""
    c = ctx.target.culprit
    if shares is None or c is None or c.kind != "prior" or shares.max() < SKEWED:
        return "contextual", None
    labels = held.task_of(ctx).labels
    if str(c.value) != str(labels[int(shares.argmax())]):
        return "contextual", None
    free = content_free_prior(ctx, labels)
    return ("prior" if np.ptp(np.log(shares)) > np.ptp(np.log(free)) else "contextual"), free


def content_free_prior(ctx: MitigationContext, labels) -> np.ndarray:
    """The model's label distribution on content-free inputs in the probe's own prompt (Zhao et al. 2021)."""
    from lmcritic.diagnose.rescore import Edit, Rescorer, build_probes

    key = ctx.target.probe
    base = next((r for r in ctx.store.records(ctx.run_id, key) if r.text), None)
    if base is None:
        raise ConfigError(f"{key} has no records with input text to build content-free prompts from")
    rescorer = Rescorer(ctx.model(), build_probes(ctx.spec, [key]))
    outs = [o for t in CONTENT_FREE  # one request each: an input the backend refuses must not sink the others
            for o in rescorer.run(key, [Edit(base, t, "content_free")], "calibrate", ctx.target.id)]
    vecs = [v for o in outs if (v := held.label_probs(o.record, labels)) is not None]
    if not vecs:
        why = rescorer.errors[0] if rescorer.errors else "no label probabilities in its records"
        raise ConfigError(f"the content-free prior of {key} could not be measured: {why}")
    prior = np.mean(vecs, axis=0)
    return prior / prior.sum()


def _accuracy_cost(before: dict, after: dict) -> Cost:
    from lmcritic.probes.base import Estimate

    n, k = after["n"], round(after["accuracy"] * after["n"])
    est = Estimate(k / n, n, *stats.wilson(k, n), "wilson")
    return Cost("heldout_accuracy", est, f"held-out accuracy {before['accuracy']:.3f} → {after['accuracy']:.3f} "
                f"(n={n}); ECE {before['ece']:.3f} → {after['ece']:.3f}")


@dataclass(frozen=True)
class NormalizeConfig(MitigationConfig):
    spelling: bool = True
    unicode: bool = True
    squeeze: bool = True
    register: bool | None = None  # formal rewrite of colloquial inputs; None: when the culprit is a register shift
    n_heldout: int = 300


class NormalizeInput(Mitigation):
    """Spell-correction and normalisation of the input before the model (any backend); for a register shift, the
    colloquial inputs rewritten in the formal register training had (a fix that needs no weights or corpus)."""

    name = "normalize_input"
    title = "input normalisation (spell-correction, Unicode, spacing, formal register)"
    treats = frozenset({"fragility", "generalization_mismatch"})
    probes = ("robustness.invariance", "robustness.attack", "robustness.register")
    culprits = frozenset({"typos", "register"})
    preference = 0.6
    Config = NormalizeConfig

    def apply(self, ctx: MitigationContext, inner: dict[str, Any] | None = None) -> MitigatedModel:
        """The run's model (or ``inner``: a fine-tuned one) behind the normaliser, with its cost on clean inputs."""
        opts = {"spelling": self.config.spelling, "unicode": self.config.unicode, "squeeze": self.config.squeeze,
                "register": self._register(ctx)}
        wrapper = {"name": "normalize_input", "options": opts}
        notes: list[str] = self._predicted(ctx) if opts["spelling"] else []
        return MitigatedModel(self.name, wrapped_spec(ctx, [wrapper], "normalize", inner), INFERENCE,
                              wrappers=(wrapper,), costs=self._costs(ctx, opts, notes), details={"options": opts},
                              notes=tuple(notes))

    def _predicted(self, ctx: MitigationContext) -> list[str]:
        """Fragility's estimate of what spell-correcting every input with typos does to their failure rate, said
        before the re-verification measures it, when it does not predict a drop (typos can hide a word the model
        misreads, and correcting them breaks answers they made right by accident)."""
        from lmcritic.diagnose.hypotheses.fragility import PREDICTION

        found = next((e for e in ctx.target.evidence if (e.data or {}).get("prediction") == PREDICTION), None)
        if found is None or found.estimate is None or found.estimate.ci_high < 0:
            return []
        d = found.data
        return [f"the diagnosis does not predict a lower failure rate from spell-correction: of its inputs with "
                f"typos, it fixed {d['fixed']} of {d['failing_scored']} failing and broke {d['broken']} of "
                f"{d['passing_scored']} passing ones, a change of {found.estimate} on them; the re-verification "
                "measures it"]

    def _register(self, ctx: MitigationContext) -> bool:
        """The formal rewrite: as set, else on for a colloquial-register culprit or a register probe's cases."""
        if self.config.register is not None:
            return self.config.register
        culprit = ctx.target.culprit
        return bool(culprit and culprit.kind == "register" and culprit.value == "colloquial") \
            or ctx.target.probe == "robustness.register"

    def _costs(self, ctx: MitigationContext, opts: dict[str, bool], notes: list[str]) -> tuple[Cost, ...]:
        """The share of clean held-out inputs the normaliser alters (each one a risk)."""
        from lmcritic.mitigate.normalize import normalize_text

        task = held.task_of(ctx)
        rows = held.heldout_rows(ctx, task.labels, self.config.n_heldout, notes) if task.labels else None
        if not rows:
            return ()
        changed = stats.proportion([normalize_text(r.text, **opts) != r.text for r in rows.rows])
        return (Cost("clean_inputs_altered", changed, f"normalisation alters {changed} of clean held-out inputs"),)


@dataclass(frozen=True)
class AdversarialGuardConfig(MitigationConfig):
    detector: str = "auto"  # auto: perplexity when the model scores text, else nonwords
    target_fpr: float = 0.05
    action: str = "route"  # route (normalise, then answer) | refuse (generation only)
    n_heldout: int = 400

    def __post_init__(self) -> None:
        if not 0 < self.target_fpr < 1:
            raise ValueError("target_fpr must be in (0, 1)")


class AdversarialGuardMitigation(Mitigation):
    """A detector of adversarial inputs, thresholded at a target false-positive rate on clean held-out inputs."""

    name = "adversarial_guard"
    title = "adversarial-input detector (threshold at a target false-positive rate), flagged inputs routed"
    treats = frozenset({"fragility"})
    probes = ("robustness.attack",)
    preference = 0.4
    Config = AdversarialGuardConfig

    def apply(self, ctx: MitigationContext) -> MitigatedModel:
        from lmcritic.mitigate.guards import adversarial_scores

        model, task = ctx.model(), held.task_of(ctx)
        notes: list[str] = []
        detector = self.config.detector
        if detector == "auto":
            detector = "perplexity" if model.supports(Capability.ROLLING_LOGPROBS) else "nonwords"
        rows = held.heldout_rows(ctx, task.labels, self.config.n_heldout, notes)
        if rows is None:
            raise ConfigError("adversarial_guard sets its threshold on clean held-out inputs",
                              "pass --heldout PATH or --train PATH")
        scores = adversarial_scores(held.case_texts(ctx, rows), detector, model)
        threshold, test = held.fit_threshold(scores, self.config.target_fpr, ctx.seed)
        fpr = stats.proportion(list(test > threshold))
        wrapper = {"name": "adversarial_guard", "options": {"threshold": threshold, "detector": detector,
                                                            "action": self.config.action}}
        cost = Cost("false_positive_rate", fpr, f"flags {fpr} of clean held-out inputs it was not fitted on "
                    f"(target {self.config.target_fpr})")
        return MitigatedModel(self.name, wrapped_spec(ctx, [wrapper], "adv-guard"), INFERENCE, wrappers=(wrapper,),
                              costs=(cost,), details={"detector": detector, "threshold": threshold,
                                                      "n_fit": len(scores) - len(test)}, notes=tuple(notes))


__all__ = ["AdversarialGuardMitigation", "Calibrate", "NormalizeInput", "content_free_prior"]
