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

Model calls are serialized with a lock: the backend batches within a request, the server does not mix them.
"""
from __future__ import annotations

import hmac
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Sequence

from lmcritic._serve_replies import chat_logprobs, completion_logprobs, logprobs_block, maybe_stream, usage
from lmcritic._serve_sse import SSE, write_stream
from lmcritic.backends.base import Backend
from lmcritic.errors import BackendError, ConfigError, LmcriticError
from lmcritic.requests import (
    Capability,
    ChatMessage,
    GenerateRequest,
    GenerateResult,
    GenParams,
    RollingRequest,
)

MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /completions
DEFAULT_CHAT_MAX_TOKENS = 256


class APIError(Exception):
    """An OpenAI-style error reply: status code, one-line message, the offending field."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


class API:
    """The endpoints, independent of HTTP plumbing: ``handle(method, path, headers, body) -> (status, json)``."""

    def __init__(self, backend: Backend, model_name: str, api_key_env: str | None = None) -> None:
        self.backend, self.model_name = backend, model_name
        self._key = _read_key(api_key_env)
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, headers: Any, body: bytes | None) -> tuple[int, dict[str, Any]]:
        path = path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/health":
            return 200, {"status": "ok"}
        routes = {"/v1/models": ("GET", self.models), "/v1/completions": ("POST", self.completions),
                  "/v1/chat/completions": ("POST", self.chat_completions)}
        if path not in routes:
            raise APIError(404, f"unknown path {path}; try /v1/models, /v1/completions, /v1/chat/completions",
                           code="not_found")
        self._check_key(headers.get("Authorization"))
        want, endpoint = routes[path]
        if method != want:
            raise APIError(405, f"{path} takes {want}, not {method}", code="method_not_allowed")
        return 200, endpoint(_json_object(body) if want == "POST" else {})

    def _check_key(self, header: str | None) -> None:
        check_bearer(self._key, header)

    def models(self, _: dict[str, Any]) -> dict[str, Any]:
        card = {"id": self.model_name, "object": "model", "created": 0, "owned_by": "lmcritic"}
        return {"object": "list", "data": [card]}

    def completions(self, body: dict[str, Any]) -> dict[str, Any] | SSE:
        prompts = _prompts(body)
        max_tokens = _integer(body, "max_tokens", DEFAULT_MAX_TOKENS, 0)
        logprobs = _integer(body, "logprobs", None, 0, 20)
        echo = _boolean(body, "echo")
        stream = _only_one(body)
        scoring = logprobs is not None and echo and max_tokens == 0
        if logprobs is not None and echo and not scoring:
            raise APIError(400, "logprobs with echo: only scoring (max_tokens=0) is supported; drop echo to get "
                           "the generated tokens' logprobs", "logprobs")
        if scoring:
            if stream:
                raise APIError(400, "stream: scoring (echo with max_tokens=0) is not streamed", "stream")
            choices, usage = self._score(prompts, _boolean(body, "prefix_token"))
        else:
            choices, usage = self._complete(prompts, _params(body, max_tokens, logprobs), echo)
        return maybe_stream(body, stream, self._envelope("cmpl", "text_completion", choices, usage))

    def chat_completions(self, body: dict[str, Any]) -> dict[str, Any] | SSE:
        messages = _messages(body)
        stream = _only_one(body)
        default = _integer(body, "max_completion_tokens", DEFAULT_CHAT_MAX_TOKENS, 0)
        top = _integer(body, "top_logprobs", None, 0, 20)
        want = _boolean(body, "logprobs")
        if top is not None and not want:
            raise APIError(400, "top_logprobs: needs logprobs=true", "top_logprobs")
        params = _params(body, _integer(body, "max_tokens", default, 0), (top or 0) if want else None)
        self._need(Capability.CHAT, "messages", "this model has no chat template; use /v1/completions")
        (res,) = self._generate([GenerateRequest(messages=messages, params=params)])
        choice = {"index": 0, "message": {"role": "assistant", "content": res.text},
                  "logprobs": chat_logprobs(res) if want else None, "finish_reason": res.finish_reason}
        return maybe_stream(body, stream, self._envelope("chatcmpl", "chat.completion", [choice], usage([res])))

    def _complete(self, prompts: list[str], params: GenParams, echo: bool) -> tuple[list[dict], dict]:
        self._need(Capability.GENERATE, "prompt", "this model cannot generate text")
        results = self._generate([GenerateRequest(prompt=p, params=params) for p in prompts])
        choices = [{"index": i, "text": (p if echo else "") + r.text,
                    "logprobs": completion_logprobs(r) if params.logprobs is not None else None,
                    "finish_reason": r.finish_reason} for i, (p, r) in enumerate(zip(prompts, results))]
        return choices, usage(results)

    def _score(self, prompts: list[str], prefix: bool) -> tuple[list[dict], dict]:
        self._need(Capability.ROLLING_LOGPROBS, "logprobs", "this model cannot score text")
        rolls = self._call("rolling_logprobs", [RollingRequest(p, prefix=prefix, top1=True) for p in prompts])
        choices = [{"index": i, "text": p, "logprobs": logprobs_block(r), "finish_reason": "length"}
                   for i, (p, r) in enumerate(zip(prompts, rolls))]
        n = sum(len(r.tokens) for r in rolls)
        return choices, {"prompt_tokens": n, "completion_tokens": 0, "total_tokens": n}

    def _generate(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        """Generate; a backend that cannot give the generated tokens' log-probs asked for is a 400, not nulls."""
        results = self._call("generate", requests)
        if requests[0].params.logprobs is not None and any(r.logprobs is None for r in results):
            raise APIError(400, f"logprobs: the {self.backend.kind} backend does not return log-probs of generated "
                           "tokens (the hf backend does)", "logprobs")
        return results

    def _need(self, capability: Capability, param: str, why: str) -> None:
        if not self.backend.supports(capability):
            raise APIError(400, f"{param}: {why} (model {self.model_name} cannot {capability.value})", param)

    def _call(self, method: str, requests: Sequence[Any]) -> list[Any]:
        return self._locked(lambda reqs: self.backend.call(method, reqs), requests)

    def _locked(self, fn: Any, requests: Sequence[Any]) -> list[Any]:
        """Run one backend call at a time; lmcritic errors map to 400 (bad input) or 500 (backend)."""
        try:
            with self._lock:
                return list(fn(list(requests)))
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


def make_server(backend: Backend | None, host: str = "127.0.0.1", port: int = 0, model_name: str | None = None,
                api_key_env: str | None = None, max_body_bytes: int = MAX_BODY_BYTES,
                quiet: bool = False, log_path: str | None = None, api: Any = None) -> ThreadingHTTPServer:
    """Bind (port 0: any free port, see ``server.server_address``); call ``serve_forever()`` to serve.

    ``model_name`` defaults to the backend's model name; with ``api_key_env`` every /v1 request must carry
    ``Authorization: Bearer $api_key_env``. ``log_path`` appends every completion to a JSONL traffic log
    (``lmcritic monitor ingest`` reads it); ``api`` replaces the backend API (the ``--upstream`` proxy).
    """
    from lmcritic._serve_log import TrafficLog

    if api is None:
        api = API(backend, model_name or _default_name(backend), api_key_env)  # fails before binding
    server = ThreadingHTTPServer((host, port), _Handler)
    server.api = api  # type: ignore[attr-defined]
    server.max_body_bytes = max_body_bytes  # type: ignore[attr-defined]
    server.quiet = quiet  # type: ignore[attr-defined]
    server.traffic_log = TrafficLog(log_path) if log_path else None  # type: ignore[attr-defined]
    return server


def serve(model_spec: Any, host: str = "127.0.0.1", port: int = 8000, backend: str | None = None,
          api_key_env: str | None = None, model_name: str | None = None, log_path: str | None = None,
          api: Any = None) -> int:
    """Load ``model_spec`` (a name, path or :class:`ModelSpec`) and serve it until Ctrl-C (``api``: serve
    that instead, e.g. the ``--upstream`` proxy; no model is loaded)."""
    from lmcritic.backends import ModelSpec, load_model

    spec = model_spec if isinstance(model_spec, ModelSpec) else ModelSpec(name=str(model_spec), backend=backend)
    if api is None:
        print(f"lmcritic: loading model {spec.name!r} ...", file=sys.stderr)
    model = load_model(spec) if api is None else _NoModel()
    try:
        server = make_server(model, host, port, model_name or spec.name, api_key_env, log_path=log_path, api=api)
    except OSError as err:
        model.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}",
                          "pick another --port, or --port 0 for any free one") from None
    bound_host, bound_port = server.server_address[:2]
    if api_key_env is None and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"lmcritic: warning: serving on {host} without an API key (use --api-key-env)", file=sys.stderr)
    print(f"lmcritic: serving {spec.name} at http://{bound_host}:{bound_port}/v1 (Ctrl-C to stop)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("lmcritic: stopped", file=sys.stderr)
    finally:
        server.server_close()
        model.close()
        if server.traffic_log is not None:  # type: ignore[attr-defined]
            server.traffic_log.close()  # type: ignore[attr-defined]
    return 0


class _NoModel:
    def close(self) -> None:
        """The proxy holds no model."""


class _Handler(BaseHTTPRequestHandler):
    """HTTP plumbing: read a bounded body, call the API, write JSON, log one line (never the headers)."""

    server_version = "lmcritic"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        start = time.perf_counter()
        body = None
        try:
            body = self._read_body() if method == "POST" else None
            api: API = self.server.api  # type: ignore[attr-defined]
            status, payload = api.handle(method, self.path, self.headers, body)
        except APIError as err:
            status, payload = err.status, err.body()
        extra = payload.pop("_guard", None) if isinstance(payload, dict) else getattr(payload, "meta", None)
        if isinstance(payload, SSE):
            size, reply = write_stream(self, payload)
        else:
            size, reply = self._send(status, payload), payload
        elapsed = time.perf_counter() - start
        log = getattr(self.server, "traffic_log", None)
        if log is not None and method == "POST":
            log.record_http(self.path, body, status, reply, elapsed, isinstance(payload, SSE), extra)
        self._log(f'"{method} {self.path.split("?")[0]}" {status} {size} {elapsed:.3f}s')

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise APIError(411, "chunked request bodies are not supported; send Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise APIError(400, "bad Content-Length header") from None
        limit = self.server.max_body_bytes  # type: ignore[attr-defined]
        if length > limit:
            self.close_connection = True
            raise APIError(413, f"request body of {length:,} bytes is over the {limit:,}-byte limit")
        return self.rfile.read(length)

    def _send(self, status: int, payload: dict[str, Any]) -> int:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return len(data)

    def _log(self, text: str) -> None:
        if not self.server.quiet:  # type: ignore[attr-defined]
            sys.stderr.write(f"{self.address_string()} {self.log_date_time_string()} {text}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: ``_dispatch`` logs its own line with the timing."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        self._log(format % args)


# request parsing: every failure is a 400 naming the field
def _json_object(body: bytes | None) -> dict[str, Any]:
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise APIError(400, f"request body must be a JSON object, got {type(data).__name__}")
    return data


def _prompts(body: dict[str, Any]) -> list[str]:
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise APIError(400, "prompt: must be a string or a non-empty list of strings (token ids are not "
                       "supported; lm-eval: tokenized_requests=False)", "prompt")
    return prompts


def _messages(body: dict[str, Any]) -> tuple[ChatMessage, ...]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise APIError(400, "messages: must be a non-empty list of {role, content}", "messages")
    return tuple(_message(m, i) for i, m in enumerate(raw))


def _message(m: Any, i: int) -> ChatMessage:
    content = m.get("content") if isinstance(m, dict) else None
    if isinstance(content, list):  # content parts: keep the text ones
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        content = "".join(p for p in parts if isinstance(p, str)) if len(parts) == len(content) else None
    if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(content, str):
        raise APIError(400, f"messages[{i}]: needs a string 'role' and text 'content'", "messages")
    return ChatMessage(m["role"], content)


def _params(body: dict[str, Any], max_tokens: int, logprobs: int | None = None) -> GenParams:
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else (stop or [])
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise APIError(400, "stop: must be a string or a list of strings", "stop")
    try:
        return GenParams(max_new_tokens=max_tokens, temperature=_number(body, "temperature", 1.0),
                         top_p=_number(body, "top_p", 1.0), top_k=_integer(body, "top_k", 0, 0) or 0,
                         seed=_integer(body, "seed", None), stop=tuple(s for s in stops if s), logprobs=logprobs)
    except ConfigError as err:
        raise APIError(400, str(err)) from None


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise APIError(400, f"{name}: must be a number, got {json.dumps(value)[:40]}", name)
    return float(value)


def _integer(body: dict[str, Any], name: str, default: int | None, lo: int | None = None,
             hi: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or (lo is not None and value < lo) or \
            (hi is not None and value > hi):
        bounds = f" in [{lo}, {hi}]" if hi is not None else (f" >= {lo}" if lo is not None else "")
        raise APIError(400, f"{name}: must be an integer{bounds}, got {json.dumps(value)[:40]}", name)
    return value


def _boolean(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise APIError(400, f"{name}: must be true or false", name)
    return value


def _only_one(body: dict[str, Any]) -> bool:
    """Checks n/best_of; returns whether the reply is to be streamed."""
    if body.get("n", 1) != 1 or body.get("best_of", 1) != 1:
        raise APIError(400, "n: only n=1 (and best_of=1) is supported", "n")
    return _boolean(body, "stream")


# replies
def _default_name(backend: Backend) -> str:
    info = backend.describe()
    return str(info.get("model") or info.get("name") or backend.kind)


def _read_key(env: str | None) -> str | None:
    if env is None:
        return None
    key = os.environ.get(env)
    if not key:
        raise ConfigError(f"the server was asked to check an API key from ${env}, but it is not set",
                          f"export {env}=... or drop --api-key-env")
    return key
