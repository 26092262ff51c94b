"""``lmcritic serve``: an OpenAI-compatible HTTP server over any lmcritic backend (stdlib ``http.server``).

It lets any OpenAI client (lmcritic's own ``openai`` backend, the OpenAI SDKs, curl) critique a local model;
lm-eval's ``local-completions`` needs string prompts (``tokenized_requests=False``) and real ``top_logprobs``
(see below). Any ``model`` name in a request is accepted: one server, one model. Endpoints: ``GET /v1/models``,
``POST /v1/completions``, ``POST /v1/chat/completions`` and ``GET /health``.

Scoring: ``/v1/completions`` with ``echo=true``, ``max_tokens=0`` and ``logprobs`` returns per-token
``tokens``, ``token_logprobs``, ``top_logprobs`` (the top-1 alternative) and ``text_offset`` from
``backend.rolling_logprobs`` over the whole prompt (the window is the backend's maximum). As on OpenAI-style
servers the first token is context only (log-prob ``null``), so a continuation's log-likelihood summed from
these equals the hf backend's (lm-eval's) ``loglikelihood``. lmcritic extensions:

* ``"prefix_token": true`` scores the first token too, after the model's prefix token (BOS/EOS), and every
  later token after that prefix: what perplexity over a whole text needs (lm-eval's rolling windows);
* ``token_ids`` and ``text_end_offset`` lists (byte-level tokens of one character share a start offset,
  so ends cannot be inferred from the next start).

Holding load (see :mod:`lmcritic._scheduler`): one worker runs the model; requests queue (at most
``max_queue``; a full queue, or one that could not serve the request by its deadline, is 503 with
Retry-After); each has a deadline (``request_timeout``, or a shorter
``"timeout"`` in the body: past it, 504); a client that hangs up is dropped, before or during generation;
``max_tokens`` is capped (``max_tokens_cap``, 400 above it); a long generation pauses between tokens for
much shorter waiting requests (the least remaining work goes first). Bad input of any kind is a 4xx naming
the field, never a crash.
"""
from __future__ import annotations

import hmac
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from lmcritic import _scheduler
from lmcritic import _serve_parse as parse
from lmcritic._serve_parse import APIError
from lmcritic._serve_replies import chat_logprobs, completion_logprobs, logprobs_block, maybe_stream, usage
from lmcritic._serve_sse import SSE
from lmcritic.backends.base import Backend
from lmcritic.errors import BackendError, ConfigError, LmcriticError
from lmcritic.requests import Capability, GenerateRequest, GenerateResult, GenParams, RollingRequest

MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /completions
DEFAULT_CHAT_MAX_TOKENS = 256
MAX_TOKENS_CAP = 2048  # a request asking for more is refused (--max-tokens-cap)
REQUEST_TIMEOUT_S = 120.0  # a request's deadline from arrival (--request-timeout); the body may ask for less
MAX_QUEUE = 64  # requests queued or running; beyond it: 503 with Retry-After (--max-queue)
YIELD_AFTER_S = 0.2  # a generation runs at least this long before it pauses for much shorter waiting work

__all__ = ["API", "APIError", "Limits", "check_bearer", "make_server", "serve"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server, and how many may wait."""

    max_tokens_cap: int = MAX_TOKENS_CAP
    request_timeout: float = REQUEST_TIMEOUT_S
    max_queue: int = MAX_QUEUE
    yield_after: float = YIELD_AFTER_S  # inf: a generation never pauses for others

    def __post_init__(self) -> None:
        for name, lo in (("max_tokens_cap", 1), ("request_timeout", 0.001), ("max_queue", 1), ("yield_after", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= lo:
                raise ConfigError(f"serve: {name} must be a number >= {lo}, got {value!r}")


@dataclass(frozen=True)
class _Request:
    """One request's body and how to run its model work (its deadline, and whether its client is gone)."""

    body: dict[str, Any]
    timeout_s: float
    client_gone: Callable[[], bool] | None


class API:
    """The endpoints, independent of HTTP plumbing: ``handle(method, path, headers, body) -> (status, json)``.

    Model work runs on the scheduler's one worker thread; ``client_gone`` (polled while a request waits)
    lets the server drop the work of a client that hung up. :meth:`close` stops the worker.
    """

    cancellable = True  # handle() takes client_gone (the --upstream proxy's API does not)

    def __init__(self, backend: Backend, model_name: str, api_key_env: str | None = None,
                 limits: Limits | None = None) -> None:
        self.backend, self.model_name = backend, model_name
        self._key = parse.read_key(api_key_env)
        self.limits = limits or Limits()
        self.scheduler = _scheduler.Scheduler(self.limits.max_queue, self.limits.yield_after).start()

    def close(self) -> None:
        self.scheduler.stop()

    def handle(self, method: str, path: str, headers: Any, body: bytes | None,
               client_gone: Callable[[], bool] | None = None) -> tuple[int, dict[str, Any] | SSE]:
        path = path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/health":
            return 200, {"status": "ok", "queued": self.scheduler.size}
        routes = {"/v1/models": ("GET", self.models), "/v1/completions": ("POST", self.completions),
                  "/v1/chat/completions": ("POST", self.chat_completions)}
        if path not in routes:
            raise APIError(404, f"unknown path {path}; try /v1/models, /v1/completions, /v1/chat/completions",
                           code="not_found")
        self._check_key(headers.get("Authorization"))
        want, endpoint = routes[path]
        if method != want:
            raise APIError(405, f"{path} takes {want}, not {method}", code="method_not_allowed")
        data = parse.json_object(body) if want == "POST" else {}
        return 200, endpoint(_Request(data, self._timeout(data), client_gone))

    def _check_key(self, header: str | None) -> None:
        check_bearer(self._key, header)

    def _timeout(self, body: dict[str, Any]) -> float:
        """The server's deadline, or a shorter one the request asks for (lmcritic extension ``timeout``)."""
        asked = body.get("timeout")
        if asked is None:
            return self.limits.request_timeout
        if isinstance(asked, bool) or not isinstance(asked, (int, float)) or not asked > 0:
            raise APIError(400, "timeout: must be a number of seconds > 0", "timeout")
        return min(float(asked), self.limits.request_timeout)

    def models(self, _: _Request) -> dict[str, Any]:
        card = {"id": self.model_name, "object": "model", "created": 0, "owned_by": "lmcritic"}
        return {"object": "list", "data": [card]}

    def completions(self, req: _Request) -> dict[str, Any] | SSE:
        body = req.body
        prompts = parse.prompts(body)
        max_tokens = self._max_tokens(body, "max_tokens", DEFAULT_MAX_TOKENS)
        logprobs = parse.integer(body, "logprobs", None, 0, 20)
        echo = parse.boolean(body, "echo")
        stream = parse.only_one(body)
        scoring = logprobs is not None and echo and max_tokens == 0
        if logprobs is not None and echo and not scoring:
            raise APIError(400, "logprobs with echo: only scoring (max_tokens=0) is supported; drop echo to get "
                           "the generated tokens' logprobs", "logprobs")
        if scoring:
            if stream:
                raise APIError(400, "stream: scoring (echo with max_tokens=0) is not streamed", "stream")
            choices, used = self._score(req, prompts, parse.boolean(body, "prefix_token"))
        else:
            choices, used = self._complete(req, prompts, parse.params(body, max_tokens, logprobs), echo)
        return maybe_stream(body, stream, self._envelope("cmpl", "text_completion", choices, used))

    def chat_completions(self, req: _Request) -> dict[str, Any] | SSE:
        body = req.body
        messages = parse.messages(body)
        stream = parse.only_one(body)
        default = self._max_tokens(body, "max_completion_tokens", DEFAULT_CHAT_MAX_TOKENS)
        top = parse.integer(body, "top_logprobs", None, 0, 20)
        want = parse.boolean(body, "logprobs")
        if top is not None and not want:
            raise APIError(400, "top_logprobs: needs logprobs=true", "top_logprobs")
        params = parse.params(body, self._max_tokens(body, "max_tokens", default), (top or 0) if want else None)
        self._need(Capability.CHAT, "messages", "this model has no chat template; use /v1/completions")
        (res,) = self._generate(req, [GenerateRequest(messages=messages, params=params)])
        choice = {"index": 0, "message": {"role": "assistant", "content": res.text},
                  "logprobs": chat_logprobs(res) if want else None, "finish_reason": res.finish_reason}
        return maybe_stream(body, stream, self._envelope("chatcmpl", "chat.completion", [choice], usage([res])))

    def _max_tokens(self, body: dict[str, Any], name: str, default: int) -> int:
        value = parse.integer(body, name, min(default, self.limits.max_tokens_cap), 0)
        assert value is not None  # an int default
        if value > self.limits.max_tokens_cap:
            raise APIError(400, f"{name}: {value} is over this server's cap of {self.limits.max_tokens_cap} "
                           "(lmcritic serve --max-tokens-cap)", name)
        return value

    def _complete(self, req: _Request, prompts: list[str], params: GenParams, echo: bool) -> tuple[list, dict]:
        self._need(Capability.GENERATE, "prompt", "this model cannot generate text")
        results = self._generate(req, [GenerateRequest(prompt=p, params=params) for p in prompts])
        choices = [{"index": i, "text": (p if echo else "") + r.text,
                    "logprobs": completion_logprobs(r) if params.logprobs is not None else None,
                    "finish_reason": r.finish_reason} for i, (p, r) in enumerate(zip(prompts, results))]
        return choices, usage(results)

    def _score(self, req: _Request, prompts: list[str], prefix: bool) -> tuple[list[dict], dict]:
        self._need(Capability.ROLLING_LOGPROBS, "logprobs", "this model cannot score text")
        rolls = self._call(req, "rolling_logprobs", [RollingRequest(p, prefix=prefix, top1=True) for p in prompts])
        choices = [{"index": i, "text": p, "logprobs": logprobs_block(r), "finish_reason": "length"}
                   for i, (p, r) in enumerate(zip(prompts, rolls))]
        n = sum(len(r.tokens) for r in rolls)
        return choices, {"prompt_tokens": n, "completion_tokens": 0, "total_tokens": n}

    def _need(self, capability: Capability, param: str, why: str) -> None:
        if not self.backend.supports(capability):
            raise APIError(400, f"{param}: {why} (model {self.model_name} cannot {capability.value})", param)

    def _generate(self, req: _Request, requests: list[GenerateRequest]) -> list[GenerateResult]:
        """Generate; one prompt on a backend that can pause is stepped token by token, so it yields to short
        requests. A backend that cannot give the generated tokens' log-probs asked for is a 400, not nulls."""
        start = getattr(self.backend, "start_generation", None)
        if len(requests) != 1 or start is None or requests[0].params.logprobs is not None:
            results = self._call(req, "generate", requests)
        else:
            work = _Stepped(start, requests[0], lambda: self.backend.call("generate", requests))
            results = [self._run(req, work.step, work.remaining)]
        if requests[0].params.logprobs is not None and any(r.logprobs is None for r in results):
            raise APIError(400, f"logprobs: the {self.backend.kind} backend does not return log-probs of generated "
                           "tokens (the hf backend does)", "logprobs")
        return results

    def _call(self, req: _Request, method: str, requests: Sequence[Any]) -> list[Any]:
        work = sum(r.params.max_new_tokens for r in requests) if method == "generate" else len(requests)
        return self._run(req, lambda pause: (True, list(self.backend.call(method, list(requests)))), lambda: work)

    def _run(self, req: _Request, step: _scheduler.Step, remaining: Callable[[], float]) -> Any:
        """Run model work on the worker; its failures become HTTP errors (400 bad input, 500 backend, 503 busy,
        504 past the deadline, 499 for a client that left)."""
        try:
            return self.scheduler.run(step, req.timeout_s, req.client_gone, remaining)
        except _scheduler.QueueFull as err:
            raise APIError(503, f"{err}; retry in {err.retry_after} s", code="server_busy",
                           headers={"Retry-After": str(err.retry_after)}) from None
        except _scheduler.DeadlinePassed as err:
            raise APIError(504, str(err), code="timeout") from None
        except _scheduler.Cancelled as err:
            raise APIError(499, str(err), code="client_closed") from None
        except BackendError as err:
            raise APIError(500, f"backend error: {err}", code="backend_error") from None
        except LmcriticError as err:
            raise APIError(400, str(err)) from None
        except Exception as err:  # a crash in the model must not kill the server
            raise APIError(500, f"backend error: {type(err).__name__}: {err}", code="backend_error") from None

    def _envelope(self, prefix: str, obj: str, choices: list[dict], usage: dict) -> dict[str, Any]:
        return {"id": f"{prefix}-{uuid.uuid4().hex[:24]}", "object": obj, "created": int(time.time()),
                "model": self.model_name, "choices": choices, "usage": usage}


def check_bearer(key: str | None, header: str | None) -> None:
    """401 unless ``header`` is ``Bearer <key>`` (constant-time compare); no key configured: anyone may call."""
    if key is None:
        return
    given = (header or "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), key.encode()):
        raise APIError(401, "missing or invalid API key (send 'Authorization: Bearer <key>')", code="invalid_api_key")


class _Stepped:
    """A generation the worker advances step by step (``start_generation``); None from it means the backend
    cannot pause this one (beam search), which then runs in one go through ``fallback``."""

    def __init__(self, start: Callable[[GenerateRequest], Any], request: GenerateRequest,
                 fallback: Callable[[], list[Any]]) -> None:
        self.start, self.request, self.fallback, self.gen = start, request, fallback, None

    def step(self, pause: Callable[[], bool]) -> tuple[bool, Any]:
        if self.gen is None:
            self.gen = self.start(self.request)
            if self.gen is None:
                return True, self.fallback()[0]
        result = self.gen.step(pause)
        return result is not None, result

    def remaining(self) -> float:
        """New tokens still to generate (at most): the scheduler serves the least first."""
        return self.request.params.max_new_tokens - (getattr(self.gen, "n_new", 0) if self.gen is not None else 0)


def make_server(backend: Backend | None, host: str = "127.0.0.1", port: int = 0, model_name: str | None = None,
                api_key_env: str | None = None, max_body_bytes: int = MAX_BODY_BYTES, quiet: bool = False,
                limits: Limits | None = None, log_path: str | None = None, api: object = None) -> Any:
    """Bind (port 0: any free port, see ``server.server_address``); call ``serve_forever()`` to serve and
    ``server_close()`` to stop (it also stops the model worker and closes the traffic log).

    ``model_name`` defaults to the backend's model name; with ``api_key_env`` every /v1 request must carry
    ``Authorization: Bearer $api_key_env``. ``log_path`` appends every completion to a JSONL traffic log
    (``lmcritic monitor ingest`` reads it); ``api`` replaces the backend API (the ``--upstream`` proxy). A bad
    port or host is a one-line :class:`ConfigError`.
    """
    from lmcritic._serve_http import bind
    from lmcritic._serve_log import TrafficLog

    if api is None:
        if backend is None:
            raise ConfigError("make_server needs a backend or an api", "pass the model to serve")
        api = API(backend, model_name or parse.default_name(backend), api_key_env, limits)  # fails before binding
    try:
        return bind(api, host, port, max_body_bytes=max_body_bytes, quiet=quiet,
                    traffic_log=TrafficLog(log_path) if log_path else None)
    except BaseException:
        getattr(api, "close", lambda: None)()
        raise


def serve(model_spec: object, host: str = "127.0.0.1", port: int = 8000, backend: str | None = None,
          api_key_env: str | None = None, model_name: str | None = None, limits: Limits | None = None,
          log_path: str | None = None, api: object = None) -> int:
    """Load ``model_spec`` (a name, path or :class:`ModelSpec`) and serve it until Ctrl-C or SIGTERM (``api``:
    serve that instead, e.g. the ``--upstream`` proxy; no model is loaded)."""
    from lmcritic._serve_http import check_address
    from lmcritic._signals import terminate_as_interrupt
    from lmcritic.backends import ModelSpec, load_model

    spec = model_spec if isinstance(model_spec, ModelSpec) else ModelSpec(name=str(model_spec), backend=backend)
    check_address(host, port)  # before minutes of model loading
    if api is None:
        print(f"lmcritic: loading model {spec.name!r} ...", file=sys.stderr)
    model: Backend | _NoModel = load_model(spec) if api is None else _NoModel()
    try:
        server = make_server(model if isinstance(model, Backend) else None, host, port, model_name or spec.name,
                             api_key_env, limits=limits,
                             log_path=log_path, api=api)
    except BaseException:
        model.close()
        raise
    bound_host, bound_port = server.server_address[:2]
    if api_key_env is None and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"lmcritic: warning: serving on {host} without an API key (use --api-key-env)", file=sys.stderr)
    shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
    print(f"lmcritic: serving {spec.name} at http://{shown}:{bound_port}/v1 (Ctrl-C to stop)", file=sys.stderr)
    try:
        with terminate_as_interrupt():
            server.serve_forever()
    except KeyboardInterrupt:
        print("lmcritic: stopped", file=sys.stderr)
    finally:
        server.server_close()
        model.close()
    return 0


class _NoModel:
    def close(self) -> None:
        """The proxy holds no model."""
