"""A black-box model given as a Python callable: an API wrapper, a rule system, a model behind a function.

The callable is user code, so everything it returns is checked (type, length, probabilities), everything
it raises becomes a :class:`BackendError` naming the request, not a crash mid-run, and a call that does not
return within ``timeout`` seconds becomes a :class:`BackendTimeout` instead of a hang.
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable, Sequence

from lmcritic._serde import stable_hash
from lmcritic.backends import _deadline
from lmcritic.backends.base import Backend, check_generate, check_text
from lmcritic.errors import BackendError, ConfigError
from lmcritic.registry import import_string
from lmcritic.requests import (
    Capability,
    ClassifyRequest,
    ClassifyResult,
    GenerateRequest,
    GenerateResult,
    GenParams,
)

TASKS = ("generate", "classify")
PROB_TOLERANCE = 1e-3
DEFAULT_TIMEOUT = 600.0  # seconds per call of the callable: generous for an API wrapper, finite for a hang


class PythonBackend(Backend):
    """Wrap ``fn`` as a model.

    generate: ``fn(prompt) -> str`` (``fn(list[str]) -> list[str]`` when ``batched``); with ``chat=True``
    ``fn`` takes a list of ``{"role", "content"}`` dicts instead (a plain prompt becomes one user message).
    If ``fn`` has a parameter named ``params`` it receives the request's :class:`GenParams`; stop sequences
    are always applied here by truncation, since a black box may ignore them.
    classify: ``fn(text)`` (``fn(text, text_pair)`` for pairs) returns ``{label: prob}`` or probabilities
    aligned with ``labels``; they must be finite, non-negative and sum to 1.

    ``model`` is what :class:`~lmcritic.backends.ModelSpec` passes (``--model pkg.mod:fn --backend python``):
    the callable's import path when ``fn`` is omitted, else a display name. ``timeout``: seconds one call of
    ``fn`` may take (per request; per batch when ``batched``); None waits forever.
    """

    kind = "python"

    def __init__(self, fn: Callable[..., Any] | str | None = None, task: str = "generate",
                 labels: Sequence[str] | None = None, batched: bool = False, chat: bool = False,
                 name: str | None = None, model: str | None = None, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        if fn is None and model is None:
            raise ConfigError("the python backend needs fn", "pass fn='package.module:function'")
        self.fn = _resolve(fn if fn is not None else model)  # type: ignore[arg-type]
        if task not in TASKS:
            raise ConfigError(f"python backend task must be one of {', '.join(TASKS)}, got {task!r}")
        if labels is not None and (len(labels) < 2 or len(set(labels)) != len(labels)):
            raise ConfigError(f"labels must be at least two distinct names, got {list(labels)}")
        self.task, self.batched, self.chat = task, batched, chat
        self.labels = tuple(labels) if labels is not None else None
        self.name = name or (model if fn is not None and model else _qualname(self.fn))
        self.timeout = _deadline.check_timeout(timeout, "python backend")
        self._takes_params = _accepts_keyword(self.fn, "params")

    @property
    def capabilities(self) -> frozenset[Capability]:
        if self.task == "classify":
            return frozenset({Capability.CLASSIFY})
        return frozenset({Capability.GENERATE, Capability.CHAT} if self.chat else {Capability.GENERATE})

    def fingerprint(self) -> str:
        """Hash of what the callable is (qualified name and source) and how it is called; the name is a label."""
        options = {"task": self.task, "labels": self.labels, "batched": self.batched, "chat": self.chat}
        return stable_hash("python", _qualname(self.fn), _source(self.fn), options)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "name": self.name, "fn": _qualname(self.fn), "task": self.task,
                "labels": list(self.labels) if self.labels else None, "batched": self.batched, "chat": self.chat,
                "timeout": self.timeout}

    def __repr__(self) -> str:
        return f"PythonBackend(fn={_qualname(self.fn)}, task={self.task!r}, batched={self.batched}, chat={self.chat})"

    # generate
    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self.require(Capability.GENERATE)
        for i, req in enumerate(requests):
            check_generate(req, self, i)
        texts: list[str | None] = [None] * len(requests)
        todo = [i for i, r in enumerate(requests) if r.params.max_new_tokens > 0]
        for params, idx in _group_by_params(requests, todo).items():
            kwargs = {"params": params} if self._takes_params else {}
            for i, text in zip(idx, self._call_many([(self._input(requests[i]),) for i in idx], idx, kwargs)):
                texts[i] = _check_str(text, i, self.name)
        return [_finish(t, r.params) for t, r in zip(texts, requests)]

    def _input(self, req: GenerateRequest) -> Any:
        if not self.chat:
            return req.prompt
        if req.messages is None:
            return [{"role": "user", "content": req.prompt}]
        return [{"role": m.role, "content": m.content} for m in req.messages]

    # classify
    def classify(self, requests: Sequence[ClassifyRequest]) -> list[ClassifyResult]:
        self.require(Capability.CLASSIFY)
        for i, req in enumerate(requests):
            check_text(req.text, f"request {i} text")
            if req.text_pair is not None:
                check_text(req.text_pair, f"request {i} text_pair")
        pairs = any(r.text_pair is not None for r in requests) and self.batched  # keep batch columns aligned
        items = [(r.text, r.text_pair) if pairs or r.text_pair is not None else (r.text,) for r in requests]
        outs = self._call_many(items, list(range(len(requests))), {})
        return [self._to_result(out, i) for i, out in enumerate(outs)]

    def _to_result(self, out: object, index: int) -> ClassifyResult:
        if isinstance(out, dict):
            scores = {str(k): v for k, v in out.items()}
            labels = self.labels or tuple(scores)
            if set(scores) != set(labels):
                raise BackendError(f"python model {self.name} returned labels {sorted(scores)} for request "
                                   f"{index}, expected {sorted(labels)}")
            probs = [scores[label] for label in labels]
        elif isinstance(out, Sequence) and not isinstance(out, str) and self.labels:
            if len(out) != len(self.labels):
                raise BackendError(f"python model {self.name} returned {len(out)} probabilities for request "
                                   f"{index}, expected {len(self.labels)} (one per label)")
            labels, probs = self.labels, list(out)
        else:
            need = "a {label: prob} dict" + (" or a sequence of probabilities" if self.labels else
                                             " (or pass labels=[...] to return a sequence)")
            raise BackendError(f"python model {self.name} returned {type(out).__name__} for request {index}; "
                               f"expected {need}")
        return ClassifyResult(tuple(labels), _check_probs(probs, index, self.name))

    # calling user code
    def _call_many(self, items: list[tuple[Any, ...]], idx: list[int], kwargs: dict[str, Any]) -> list[Any]:
        """Call ``fn(*item)`` per item, or ``fn(*columns)`` once when batched; failures become BackendErrors."""
        if not self.batched:
            return [self._guarded(functools.partial(self.fn, *a, **kwargs), f"request {i}", i)
                    for i, a in zip(idx, items)]
        if not items:
            return []
        columns = [list(col) for col in zip(*items)]
        where = f"the batch of requests {_span(idx)}"
        outs = self._guarded(lambda: self.fn(*columns, **kwargs), where, idx[0] if len(idx) == 1 else None)
        if isinstance(outs, (str, bytes)) or not isinstance(outs, Sequence) or len(outs) != len(items):
            got = len(outs) if isinstance(outs, Sequence) else type(outs).__name__
            raise BackendError(f"python model {self.name} returned {got} outputs for {where}, "
                               f"expected a list of {len(items)}")
        return list(outs)

    def _guarded(self, call: Callable[[], Any], where: str, index: int | None = None) -> Any:
        try:
            return _deadline.call_with_timeout(call, self.timeout, f"python model {self.name} on {where}", index)
        except BackendError:
            raise
        except Exception as err:  # user code: any failure is reported, never swallowed
            raise BackendError(f"python model {self.name} failed on {where}: {type(err).__name__}: {err}") from err


def _resolve(fn: Callable[..., Any] | str) -> Callable[..., Any]:
    if isinstance(fn, str):
        try:
            fn = import_string(fn)  # type: ignore[assignment]
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"cannot import python model {fn!r}: {err}", "give it as 'package.module:attr'") from None
    if not callable(fn):
        raise ConfigError(f"python model must be callable, got {type(fn).__name__}")
    return fn


def _accepts_keyword(fn: Callable[..., Any], name: str) -> bool:
    """True if ``fn`` declares a parameter called ``name`` (``**kwargs`` alone does not count)."""
    try:
        param = inspect.signature(fn).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


def _qualname(fn: Callable[..., Any]) -> str:
    if isinstance(fn, functools.partial):
        return f"partial({_qualname(fn.func)}, {fn.args!r}, {sorted(fn.keywords.items())!r})"
    target = fn if hasattr(fn, "__qualname__") else type(fn)
    module = getattr(target, "__module__", None) or getattr(getattr(target, "__objclass__", None), "__module__", "?")
    return f"{module}.{getattr(target, '__qualname__', repr(target))}"


def _source(fn: Callable[..., Any]) -> str | None:
    """The callable's source, so editing the function changes the fingerprint; None when unavailable."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    for obj in (target, type(target)):
        try:
            return inspect.getsource(obj)
        except (OSError, TypeError):
            continue
    return None


def _span(idx: list[int]) -> str:
    contiguous = idx == list(range(idx[0], idx[-1] + 1))
    return f"{idx[0]}..{idx[-1]}" if contiguous else ", ".join(map(str, idx[:8])) + (", ..." if len(idx) > 8 else "")


def _group_by_params(requests: Sequence[GenerateRequest], todo: list[int]) -> dict[GenParams, list[int]]:
    groups: dict[GenParams, list[int]] = {}
    for i in todo:
        groups.setdefault(requests[i].params, []).append(i)
    return groups


def _check_str(text: object, index: int, name: str) -> str:
    if not isinstance(text, str):
        raise BackendError(f"python model {name} returned {type(text).__name__} for request {index}, expected str")
    return text


def _finish(text: str | None, params: GenParams) -> GenerateResult:
    """Apply stop sequences by truncation; a zero-token request never calls the function."""
    if text is None:
        return GenerateResult("", "length")
    cuts = [text.find(s) for s in params.stop if s and s in text]
    return GenerateResult(text[: min(cuts)] if cuts else text, "stop")


def _check_probs(probs: list[Any], index: int, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(p) for p in probs)
    except (TypeError, ValueError):
        raise BackendError(f"python model {name} returned non-numeric probabilities for request {index}") from None
    if not all(math.isfinite(p) and p >= 0 for p in values):
        raise BackendError(f"python model {name} returned probabilities {list(values)} for request {index}; "
                           "each must be finite and >= 0")
    if abs(sum(values) - 1) > PROB_TOLERANCE:
        raise BackendError(f"python model {name} returned probabilities summing to {sum(values):.6g} for request "
                           f"{index}; they must sum to 1 (apply a softmax)")
    return values
