"""Data parallel on Ray: N replicas of any backend as Ray actors, one model copy each.

``{backend: ray, options: {replicas: 4, num_gpus: 1, inner: {name: ..., backend: hf, options: {...}}}}``.
The driver keeps the cache, the budget and the store (the runner wraps this backend like any other); a call's
requests go out in chunks of ``batch_size``, one chunk per replica at a time, and come back in order. A replica
whose process dies is replaced by a fresh one and the chunk it held is sent again; a chunk's results are kept
once, so no case is lost or counted twice. Backends' results do not depend on how requests are batched, so the
results equal a single-process run's (log-probs of texts scored in one padded batch may differ in the last float
digits, ~1e-6), and the fingerprint is the inner backend's: the two share a cache.

Connects to the cluster at ``address`` (or ``$RAY_ADDRESS``), else starts a local Ray instance. Ray is imported
only when this backend is built (``pip install 'lmcritic[ray]'``).
"""
from __future__ import annotations

import logging
import math
import os
from collections import deque
from typing import Any, Sequence

from lmcritic.backends.base import Backend
from lmcritic.errors import BackendError, ConfigError, LmcriticError
from lmcritic.requests import (
    METHODS,
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

log = logging.getLogger("lmcritic.ray")


class _Replica:
    """One Ray actor: builds the inner backend once in its own process and serves calls on it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from lmcritic.backends import ModelSpec, load_model

        self.backend = load_model(ModelSpec(**spec))

    def identity(self) -> tuple[list[str], str, dict[str, Any], int]:
        b = self.backend
        return sorted(c.value for c in b.capabilities), b.fingerprint(), b.describe(), os.getpid()

    def call(self, method: str, requests: list[Any]) -> list[Any]:
        return self.backend.call(method, requests)


class RayBackend(Backend):
    """``replicas`` copies of ``inner`` (a model spec: ``name``, ``backend``, ``options``; default: ``model``
    as a known name) on Ray. Each replica reserves ``num_cpus`` and ``num_gpus``; ``max_restarts`` bounds how
    many dead replicas one backend replaces before it gives up."""

    kind = "ray"

    def __init__(self, inner: dict[str, Any] | None = None, replicas: int = 2, num_gpus: float = 0,
                 num_cpus: float = 1, batch_size: int = 16, max_restarts: int = 3, address: str | None = None,
                 model: str | None = None) -> None:
        spec = _inner_spec(inner, model)
        if replicas < 1 or batch_size < 1 or max_restarts < 0 or num_gpus < 0 or num_cpus < 0:
            raise ConfigError("need replicas >= 1, batch_size >= 1, max_restarts >= 0 and num_gpus, num_cpus >= 0")
        self.ray = init_ray(address, num_cpus * replicas)
        self.spec, self.batch_size, self.max_restarts = spec, batch_size, max_restarts
        self._actor_cls = self.ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0)(_Replica)
        self.restarts, self.resent = 0, 0  # replicas replaced, requests sent again after a replica died
        self.chunks_done = 0
        self.actors = [self._actor_cls.remote(spec) for _ in range(replicas)]
        ids = [self._get(a.identity.remote()) for a in self.actors]
        if len({fp for _, fp, _, _ in ids}) != 1:
            raise BackendError("the replicas loaded different models (their fingerprints differ)",
                               "point inner at a fixed checkpoint, not one that changes between loads")
        caps, self._fingerprint, self._inner, _ = ids[0]
        # white-box access (gradients) stays inside the replicas' processes: probes that need it are skipped
        self._capabilities = frozenset(Capability(c) for c in caps) - {Capability.GRADIENTS}

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    def fingerprint(self) -> str:
        """The inner backend's: a Ray run and a single-process run of one model share cached results."""
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "replicas": len(self.actors), "batch_size": self.batch_size,
                "inner": self._inner, "model": self._inner.get("model", self.spec.get("name"))}

    def call(self, method: str, requests: Sequence[Any]) -> list[Any]:
        if method not in METHODS:
            return super().call(method, requests)  # the one-line unknown-method error
        self.require(METHODS[method].capability)
        return self._scatter(method, list(requests))

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        return self.call("loglikelihood", requests)

    def rolling_logprobs(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        return self.call("rolling_logprobs", requests)

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        return self.call("generate", requests)

    def classify(self, requests: Sequence[ClassifyRequest]) -> list[ClassifyResult]:
        return self.call("classify", requests)

    def pseudo_loglikelihood(self, requests: Sequence[PseudoLoglikelihoodRequest]
                             ) -> list[PseudoLoglikelihoodResult]:
        return self.call("pseudo_loglikelihood", requests)

    def embed(self, requests: Sequence[EmbeddingRequest]) -> list[EmbeddingResult]:
        return self.call("embed", requests)

    def _scatter(self, method: str, reqs: list[Any]) -> list[Any]:
        """Chunks out to idle replicas, results back in order; a dead replica's chunk goes out again."""
        chunks = [reqs[i:i + self.batch_size] for i in range(0, len(reqs), self.batch_size)]
        done: dict[int, list[Any]] = {}
        queue = deque(range(len(chunks)))
        busy: dict[Any, tuple[int, int]] = {}  # Ray object ref -> (chunk, replica slot)
        while queue or busy:
            taken = {slot for _, slot in busy.values()}
            for slot in [s for s in range(len(self.actors)) if s not in taken][:len(queue)]:
                c = queue.popleft()
                busy[self.actors[slot].call.remote(method, chunks[c])] = (c, slot)
            ready, _ = self.ray.wait(list(busy), num_returns=1)
            c, slot = busy.pop(ready[0])
            try:
                done[c] = self._get(ready[0])
                self.chunks_done += 1
            except _ReplicaDied as err:
                self._replace(slot, err)
                queue.appendleft(c)
                self.resent += len(chunks[c])
        return [r for c in range(len(chunks)) for r in done[c]]

    def _get(self, ref: object) -> Any:
        """The result, the inner backend's own error, or :class:`_ReplicaDied` when the process is gone."""
        from ray.exceptions import RayActorError, RayTaskError

        try:
            return self.ray.get(ref)
        except RayActorError as err:
            raise _ReplicaDied(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
        except RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, LmcriticError):
                raise cause from None
            raise BackendError(f"a ray replica failed: {type(cause).__name__}: {cause}") from None

    def _replace(self, slot: int, err: Exception) -> None:
        if self.restarts >= self.max_restarts:
            raise BackendError(f"ray replica {slot} died and {self.restarts} were already replaced: {err}",
                               "see the replica's log (ray logs); raise max_restarts if the failures pass")
        log.warning("ray replica %d died (%s); starting a new one and resending its batch", slot, err)
        self.ray.kill(self.actors[slot], no_restart=True)
        self.restarts += 1
        self.actors[slot] = self._actor_cls.remote(self.spec)
        if self._get(self.actors[slot].identity.remote())[1] != self._fingerprint:
            raise BackendError("a restarted ray replica loaded a different model (fingerprint changed)")

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        self.actors = []

    def __repr__(self) -> str:
        return f"RayBackend({self.spec.get('name')!r}, replicas={len(self.actors)})"


class _ReplicaDied(Exception):
    """The replica's process is gone (killed, crashed, out of memory); its chunk can be sent again."""


def _inner_spec(inner: dict[str, Any] | None, model: str | None) -> dict[str, Any]:
    """``inner`` as ModelSpec keywords (``model`` is accepted for ``name``), checked before Ray starts."""
    from lmcritic._typecheck import check_options
    from lmcritic.backends import BACKENDS, DEFAULT_MODEL

    spec = dict(inner) if inner is not None else {"name": model or DEFAULT_MODEL}
    if "model" in spec and "name" not in spec:
        spec["name"] = spec.pop("model")
    check_options(spec, ("name", "backend", "options"), "ray backend inner")
    options: Any = spec.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError("ray backend inner: options must be a mapping")
    if "name" not in spec:  # {backend: hf, options: {model: DIR}} names DIR, not the default model
        spec["name"] = options.get("model") or model or DEFAULT_MODEL
    if spec.get("backend") == "ray":
        raise ConfigError("the ray backend's inner backend is ray too", "give inner the backend to replicate")
    if spec.get("backend") is not None:
        BACKENDS.get(spec["backend"])  # an unknown name fails here, with a did-you-mean
    return spec


def init_ray(address: str | None, num_cpus: float) -> Any:
    """Ray, connected to ``address`` or ``$RAY_ADDRESS`` if set, else to a local instance started with
    ``num_cpus`` logical CPUs (only the first call starts one)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs Ray", "pip install 'lmcritic[ray]'") from None
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        ray.init(address=address, num_cpus=None if address else max(1, math.ceil(num_cpus)),
                 include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    return ray
