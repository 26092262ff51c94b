"""Reusable backend contract checks (plain functions, not tests): every backend's tests can call them.

* :func:`assert_declares_honestly` — each declared capability's method returns well-formed results on small
  inputs (right count, right type, sane values, JSON round-trip for the cache); each undeclared one raises
  :class:`CapabilityError` before doing any work.
* :func:`assert_batch_invariant` — results equal (to 1e-4) whatever the batch size and however the caller
  splits the list.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Callable, Sequence

import pytest

from lmcritic._serde import from_jsonable, to_jsonable
from lmcritic.errors import CapabilityError
from lmcritic.requests import (
    METHODS,
    Capability,
    ChatMessage,
    ClassifyRequest,
    ClassifyResult,
    EmbeddingRequest,
    EmbeddingResult,
    GenerateRequest,
    GenerateResult,
    GenParams,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    PseudoLoglikelihoodRequest,
    PseudoLoglikelihoodResult,
    RollingRequest,
    RollingResult,
)

TOL = 1e-4
TEXTS = ("the movie is a delight", "a dull , lifeless film")
SMALL: dict[str, list[Any]] = {
    "loglikelihood": [LoglikelihoodRequest("the movie is", " great"), LoglikelihoodRequest("the movie is", " bad"),
                      LoglikelihoodRequest("a dull film ", "indeed")],
    "rolling_logprobs": [RollingRequest(TEXTS[0]), RollingRequest(TEXTS[1], window=4, stride=2)],
    "generate": [GenerateRequest(prompt="the movie", params=GenParams(max_new_tokens=4)),
                 GenerateRequest(prompt="a film", params=GenParams(max_new_tokens=3, temperature=0.7, seed=1))],
    "classify": [ClassifyRequest(TEXTS[0]), ClassifyRequest(TEXTS[1], text_pair="it is bad")],
    "pseudo_loglikelihood": [PseudoLoglikelihoodRequest(t) for t in TEXTS],
    "embed": [EmbeddingRequest(t) for t in TEXTS],
}
CHAT = [GenerateRequest(messages=(ChatMessage("user", "hello"),), params=GenParams(max_new_tokens=3))]


def assert_declares_honestly(backend: Any) -> None:
    """Declared capabilities work on small inputs; undeclared ones raise CapabilityError."""
    caps = backend.capabilities
    for name, method in METHODS.items():
        requests = SMALL[name]
        if method.capability in caps:
            results = backend.call(name, requests)
            assert len(results) == len(requests), f"{name}: {len(results)} results for {len(requests)} requests"
            for req, res in zip(requests, results):
                assert isinstance(res, method.result), f"{name} returned {type(res).__name__}"
                CHECKS[method.result](req, res)
                assert from_jsonable(method.result, to_jsonable(res)) == res, f"{name}: result does not round-trip"
        else:
            with pytest.raises(CapabilityError):
                backend.call(name, requests)
    if Capability.CHAT in caps:
        [res] = backend.generate(CHAT)
        _check_generate(CHAT[0], res)
    else:
        with pytest.raises(CapabilityError):
            backend.generate(CHAT)
    if Capability.GRADIENTS in caps:  # white-box: the module, its tokenizer and device are public
        assert hasattr(backend.model, "parameters") and backend.tokenizer is not None and backend.device is not None
    assert isinstance(backend.fingerprint(), str) and backend.fingerprint() == backend.fingerprint()


def assert_batch_invariant(make_backend: Callable[..., Any], requests: Sequence[Any], method: str) -> None:
    """Results for batch sizes 1, 3 and 16, whole or split by the caller, all equal to 1e-4.

    ``make_backend`` may take a ``batch_size`` argument; a backend with a ``batch_size`` attribute also gets it set.
    """
    takes_size = bool(inspect.signature(make_backend).parameters)
    reference = None
    for size in (1, 3, 16):
        backend = make_backend(size) if takes_size else make_backend()
        if hasattr(backend, "batch_size"):
            backend.batch_size = size
        whole = backend.call(method, list(requests))
        split = [r for i in range(0, len(requests), size) for r in backend.call(method, list(requests[i : i + size]))]
        reference = whole if reference is None else reference
        assert_close(whole, reference, f"{method} batch_size={size}")
        assert_close(split, reference, f"{method} split into calls of {size}")


def assert_close(got: Any, want: Any, where: str = "", tol: float = TOL) -> None:
    """Recursive equality with an absolute tolerance on floats (dataclasses, sequences, dicts)."""
    if dataclasses.is_dataclass(got) and not isinstance(got, type):
        assert type(got) is type(want), f"{where}: {type(got).__name__} vs {type(want).__name__}"
        for f in dataclasses.fields(got):
            assert_close(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}", tol)
    elif isinstance(got, (list, tuple)):
        assert len(got) == len(want), f"{where}: length {len(got)} vs {len(want)}"
        for i, (a, b) in enumerate(zip(got, want)):
            assert_close(a, b, f"{where}[{i}]", tol)
    elif isinstance(got, float) and not isinstance(want, bool):
        assert math.isclose(got, want, abs_tol=tol), f"{where}: {got} vs {want}"
    else:
        assert got == want, f"{where}: {got!r} vs {want!r}"


# -- well-formed results ---------------------------------------------------------------------------
def _logprob(x: float, where: str) -> None:
    assert isinstance(x, float) and math.isfinite(x) and x <= 1e-6, f"{where}: bad log-prob {x!r}"


def _check_loglikelihood(req: LoglikelihoodRequest, res: LoglikelihoodResult) -> None:
    _logprob(res.logprob, "loglikelihood")
    assert isinstance(res.is_greedy, bool) and isinstance(res.truncated, bool) and res.n_tokens >= 1


def _check_rolling(req: RollingRequest, res: RollingResult) -> None:
    n = res.n_tokens
    assert n >= 1 and len(res.token_ids) == len(res.tokens) == len(res.offsets) == n
    for lp in res.logprobs:
        _logprob(lp, "rolling")
    starts = [s for s, _ in res.offsets]
    assert starts == sorted(starts) and all(0 <= s <= e <= len(req.text) for s, e in res.offsets)


def _check_generate(req: GenerateRequest, res: GenerateResult) -> None:
    assert isinstance(res.text, str) and res.finish_reason in ("stop", "length")
    assert 0 <= res.n_new_tokens <= req.params.max_new_tokens and res.n_prompt_tokens >= 0
    assert res.finish_reason == "stop" or res.n_new_tokens in (0, req.params.max_new_tokens)


def _check_classify(req: ClassifyRequest, res: ClassifyResult) -> None:
    assert len(res.labels) == len(res.probs) >= 1 and res.label in res.labels
    assert all(0 <= p <= 1 for p in res.probs) and math.isclose(sum(res.probs), 1, abs_tol=1e-4)


def _check_pll(req: PseudoLoglikelihoodRequest, res: PseudoLoglikelihoodResult) -> None:
    assert len(res.tokens) == len(res.token_logprobs) >= 1
    for lp in res.token_logprobs:
        _logprob(lp, "pseudo_loglikelihood")
    assert math.isclose(res.logprob, sum(res.token_logprobs), abs_tol=1e-4)


def _check_embed(req: EmbeddingRequest, res: EmbeddingResult) -> None:
    assert len(res.vector) >= 1 and all(isinstance(x, float) and math.isfinite(x) for x in res.vector)


CHECKS: dict[type, Callable[[Any, Any], None]] = {
    LoglikelihoodResult: _check_loglikelihood,
    RollingResult: _check_rolling,
    GenerateResult: _check_generate,
    ClassifyResult: _check_classify,
    PseudoLoglikelihoodResult: _check_pll,
    EmbeddingResult: _check_embed,
}
