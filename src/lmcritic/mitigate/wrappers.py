"""Inference-time mitigations as backend wrappers, and the ``mitigated`` backend that stacks them.

A wrapper is a :class:`WrapperBackend`: it declares exactly its inner backend's capabilities, passes every
method through unless it overrides it, and folds its settings into the fingerprint, so cached answers of the
unwrapped model are never reused for the wrapped one. Wrappers are registered in :data:`WRAPPERS` and built from
JSON-able options, so a mitigated model is a plain model spec that replays exactly::

    model:
      name: smollm2-135m+calibrate
      backend: mitigated
      options:
        inner: {name: smollm2-135m}
        wrappers: [{name: calibrate, options: {label_words: [" negative", " positive"], bias: [-0.5, -0.9]}}]

Every wrapper keeps ``last_actions`` (what it did on its latest call) and ``counts`` (totals), so the cost of a
guard (inputs refused, routed) can be reported next to its gain.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Sequence

from lmcritic._serde import stable_hash, to_jsonable
from lmcritic.backends.base import Backend
from lmcritic.backends.whitebox import WhiteBox
from lmcritic.errors import ConfigError
from lmcritic.mitigate.base import model_spec_of
from lmcritic.registry import Registry
from lmcritic.requests import (
    Capability,
    ClassifyRequest,
    ClassifyResult,
    EmbeddingRequest,
    EmbeddingResult,
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    PseudoLoglikelihoodRequest,
    PseudoLoglikelihoodResult,
    RollingRequest,
    RollingResult,
)

WRAPPERS: Registry[type["WrapperBackend"]] = Registry("wrappers")
WRAPPERS.add("calibrate", "lmcritic.mitigate.calibrate:CalibratedBackend")
WRAPPERS.add("normalize_input", "lmcritic.mitigate.normalize:NormalizedBackend")
WRAPPERS.add("adversarial_guard", "lmcritic.mitigate.guards:AdversarialGuard")
WRAPPERS.add("injection_guard", "lmcritic.mitigate.guards:InjectionGuard")
WRAPPERS.add("harm_guard", "lmcritic.mitigate.guards:HarmGuard")
WRAPPERS.add("output_filter", "lmcritic.mitigate.output_filter:OutputFilterBackend")


class WrapperBackend(Backend):
    """Same capabilities as ``inner``; every method passes through unless a subclass overrides it.

    Subclasses set ``kind`` and keep their settings in ``self.settings`` (JSON-able), which go into the
    fingerprint and the description.
    """

    kind = "wrapper"

    def __init__(self, inner: Backend, settings: dict[str, Any]) -> None:
        self.inner = inner
        self.settings = to_jsonable(settings)
        self.counts: Counter = Counter()
        self.last_actions: list[dict[str, Any]] = []

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.inner.capabilities

    def fingerprint(self) -> str:
        return stable_hash(self.inner.fingerprint(), self.kind, self.settings)[:16]

    def describe(self) -> dict[str, Any]:
        inner = self.inner.describe()
        return {**inner, "wrappers": [*inner.get("wrappers", []), {"name": self.kind, "options": self.settings}]}

    def note(self, actions: list[dict[str, Any]]) -> None:
        """Record what this call did (one dict per request) and add it to the totals."""
        self.last_actions = actions
        for a in actions:
            self.counts.update({k: int(v) for k, v in a.items() if isinstance(v, (bool, int))})
        self.counts["requests"] += len(actions)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        return self.inner.loglikelihood(requests)

    def rolling_logprobs(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        return self.inner.rolling_logprobs(requests)

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return self.inner.generate(requests)

    def classify(self, requests: Sequence[ClassifyRequest]) -> list[ClassifyResult]:
        return self.inner.classify(requests)

    def pseudo_loglikelihood(self, requests: Sequence[PseudoLoglikelihoodRequest]) -> list[PseudoLoglikelihoodResult]:
        return self.inner.pseudo_loglikelihood(requests)

    def embed(self, requests: Sequence[EmbeddingRequest]) -> list[EmbeddingResult]:
        return self.inner.embed(requests)

    def white_box(self) -> WhiteBox:
        """The inner model's gradient access (a wrapper changes inputs or scores, not the network)."""
        return self.inner.white_box()

    def close(self) -> None:
        self.inner.close()


def split_call(requests: Sequence[Any], chosen: Sequence[bool], on_chosen: Callable[[list[Any]], list[Any]],
               others: Callable[[list[Any]], list[Any]]) -> list[Any]:
    """One batched call for the chosen requests and one for the rest, results back in request order."""
    idx_a = [i for i, c in enumerate(chosen) if c]
    idx_b = [i for i, c in enumerate(chosen) if not c]
    out: list[Any] = [None] * len(requests)
    for idx, fn in ((idx_a, on_chosen), (idx_b, others)):
        if idx:
            for i, r in zip(idx, fn([requests[i] for i in idx])):
                out[i] = r
    return out


def build_wrapper(inner: Backend, spec: object) -> WrapperBackend:
    """``{"name": ..., "options": {...}}`` (or a bare name) around ``inner``."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"a wrapper must be a name or a mapping with 'name' (and 'options'), got {spec!r}")
    unknown = set(spec) - {"name", "options"}
    if unknown:
        raise ConfigError(f"wrapper {spec['name']!r}: unknown key {sorted(unknown)[0]!r}", "use name and options")
    cls = WRAPPERS.get(spec["name"])
    options = dict(spec.get("options") or {})
    try:
        return cls(inner, **options)
    except TypeError as err:
        raise ConfigError(f"bad options for wrapper {spec['name']!r}: {err}") from None


class MitigatedBackend(WrapperBackend):
    """``inner`` (a model spec) inside ``wrappers`` (applied in order, the first closest to the model).

    Registered as the ``mitigated`` backend, so a run spec, ``--model model.yaml`` and ``lmcritic serve`` load it.
    """

    kind = "mitigated"

    def __init__(self, inner: object = None, wrappers: Sequence[Any] = (), model: str | None = None,
                 cache: bool | str = True) -> None:
        from lmcritic.backends import load_model

        if not isinstance(inner, (dict, str)):
            raise ConfigError("the mitigated backend needs inner: a model name or {name, backend, options}")
        spec = model_spec_of(inner)
        for w in wrappers:  # a misspelt wrapper fails before the model loads
            WRAPPERS.get(_wrapper_name(w))
        stack: Backend = _cached(load_model(spec), cache)
        for w in wrappers:
            stack = build_wrapper(stack, w)
        super().__init__(stack, {"inner": to_jsonable(spec), "wrappers": list(wrappers)})
        self.name = model or f"{spec.name}+{'+'.join(_wrapper_name(w) for w in wrappers)}"

    def fingerprint(self) -> str:
        return self.inner.fingerprint()  # the stack's hash already covers every wrapper's settings

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "name": self.name, "backend": "mitigated"}

    def layers(self) -> list[WrapperBackend]:
        """The wrappers, outermost first."""
        out, b = [], self.inner
        while isinstance(b, WrapperBackend):
            out.append(b)
            b = b.inner
        return out


def _cached(model: Backend, cache: bool | str) -> Backend:
    """The inner model behind the shared call cache (keyed by ITS fingerprint): requests a wrapper passes through
    unchanged are answered as the original run answered them; the wrapped model's own answers are cached apart."""
    if cache is False:
        return model
    from pathlib import Path

    from lmcritic.runner import lmcritic_home
    from lmcritic.store.cache import CachedBackend

    return CachedBackend(model, Path(cache) if isinstance(cache, str) else lmcritic_home() / "cache.sqlite")


def _wrapper_name(spec: str | dict[str, Any]) -> str:
    return spec if isinstance(spec, str) else str(spec.get("name", "?"))


__all__ = ["WRAPPERS", "MitigatedBackend", "WrapperBackend", "build_wrapper", "split_call"]
