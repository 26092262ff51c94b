"""``lmcritic serve --upstream URL``: a monitoring proxy in front of any OpenAI-compatible server.

Without guards the proxy is transparent: the request body goes upstream byte for byte, the reply comes back as
it is (server-sent events are passed through chunk by chunk as they arrive), and ``--log`` records both in the
format ``lmcritic monitor ingest`` reads — so a deployed model is monitored without touching its code. Guards
make it an inline mitigation: an *input* guard answers instead of the model (finish reason ``content_filter``)
when it blocks a prompt; an *output* guard rewrites each answer (the whole answer is needed, so the upstream is
asked without streaming and the client's stream is replayed from the guarded answer). Guards are the
inference-time mitigations of :mod:`lmcritic.mitigate` (:data:`GUARD_WRAPPERS`: ``output_filter``,
``injection_guard`` — alias ``injection`` —, ``harm_guard``, ``adversarial_guard`` refusing), or every guard of a
mitigated model spec (``--guard DIR/model.yaml`` of ``lmcritic mitigate``, with the threshold it fitted).
"""
from __future__ import annotations

import http.client
import json
import os
import time
import urllib.parse
import uuid
from typing import Any, Iterator, Sequence

from lmcritic._serve_parse import APIError, json_object
from lmcritic._serve_sse import SSE, chunks
from lmcritic.backends.base import Backend
from lmcritic.errors import ConfigError
from lmcritic.serve import check_bearer

ROUTES = ("/v1/models", "/v1/completions", "/v1/chat/completions")
BLOCKED = "I can't help with that request."
READ_CHUNK = 4096


class Guard:
    """An inline mitigation: ``check_input`` may answer instead of the model, ``prepare`` may change the request
    (a hardened system prompt), ``filter_output`` may rewrite the answer."""

    name = "guard"
    reply = BLOCKED
    rewrites_output = False

    def check_input(self, text: str) -> dict[str, Any] | None:
        """``None`` to let the request through, else what was decided (logged)."""
        return None

    def prepare(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def filter_output(self, text: str) -> tuple[str, dict[str, Any] | None]:
        return text, None


class MitigationGuard(Guard):
    """A registered inference-time mitigation (:data:`lmcritic.mitigate.wrappers.WRAPPERS`) on HTTP traffic.

    An input guard (``injection_guard``, ``harm_guard``, ``adversarial_guard``) answers ``refusal_text`` when its
    detector scores the prompt over its threshold and adds its hardened system prompt to the rest;
    ``output_filter`` rewrites answers. Options are the wrapper's own, e.g. the threshold ``lmcritic mitigate``
    fitted at a target false-positive rate (``--guard DIR/model.yaml`` takes them from its model spec).
    """

    def __init__(self, name: str, **options: Any) -> None:
        from lmcritic.mitigate.wrappers import WRAPPERS, build_wrapper

        name = GUARD_ALIASES.get(name, name)
        WRAPPERS.get(name)  # did-you-mean for a misspelt name
        if name not in GUARD_WRAPPERS:
            raise ConfigError(f"{name!r} is not a guard the proxy can apply (it changes the model's scores)",
                              f"use one of {', '.join(GUARD_WRAPPERS)}, or serve the mitigated model itself")
        if name == "adversarial_guard" and options.get("action", "route") != "refuse":
            raise ConfigError("adversarial_guard behind the proxy can only refuse",
                              "set adversarial_guard.action=refuse")
        self.name = name
        self.wrapper: Any = build_wrapper(_Upstream(), {"name": name, "options": options})
        self.reply = getattr(self.wrapper, "refusal_text", BLOCKED)
        self.rewrites_output = hasattr(self.wrapper, "filter_text")

    def check_input(self, text: str) -> dict[str, Any] | None:
        if not hasattr(self.wrapper, "scores"):
            return None
        score = float(self.wrapper.scores([text])[0])
        return {self.name: {"blocked": True, "score": round(score, 4)}} if score > self.wrapper.threshold else None

    def prepare(self, body: dict[str, Any]) -> dict[str, Any]:
        system = getattr(self.wrapper, "system_prompt", None)
        if not system:
            return body
        messages = body.get("messages")
        if isinstance(messages, list):
            first = messages[0] if messages and isinstance(messages[0], dict) else {}
            if first.get("role") == "system" and isinstance(first.get("content"), str):
                return {**body, "messages": [{**first, "content": f"{system}\n\n{first['content']}"}, *messages[1:]]}
            return {**body, "messages": [{"role": "system", "content": system}, *messages]}
        prompt = body.get("prompt")
        return {**body, "prompt": f"{system}\n\n{prompt}"} if isinstance(prompt, str) else body

    def filter_output(self, text: str) -> tuple[str, dict[str, Any] | None]:
        if not self.rewrites_output:
            return text, None
        new, actions = self.wrapper.filter_text(text)
        return new, ({self.name: actions} if new != text else None)


class _Upstream(Backend):
    """The wrapped model behind the proxy is the upstream server: a guard never calls it itself."""

    @property
    def capabilities(self) -> frozenset[Any]:
        return frozenset()

    def fingerprint(self) -> str:
        return "upstream"


GUARD_WRAPPERS = ("output_filter", "injection_guard", "harm_guard", "adversarial_guard")
GUARD_ALIASES = {"injection": "injection_guard"}  # the proxy's first name for it


def build_guards(names: Sequence[str], options: Sequence[str] = ()) -> list[Guard]:
    """Guards by name, or every guard of a mitigated model spec (``DIR/model.yaml`` from ``lmcritic mitigate``);
    ``options`` are ``GUARD.KEY=VALUE`` for a guard so named (VALUE parsed as YAML: numbers, lists, ...); they
    override a spec's options."""
    import yaml

    specs = [(GUARD_ALIASES.get(g, g), opts) for name in names for g, opts in _guard_specs(name)]
    per: dict[str, dict[str, Any]] = {g: {} for g, _ in specs}
    for item in options:
        key, sep, value = item.partition("=")
        name, dot, opt = key.partition(".")
        name = GUARD_ALIASES.get(name, name)
        if not sep or not dot or name not in per:
            raise ConfigError(f"bad --guard-option {item!r}", "use GUARD.KEY=VALUE for a guard given with --guard")
        per[name][opt] = yaml.safe_load(value)
    out: list[Guard] = []
    for guard_name, opts in specs:
        try:
            out.append(MitigationGuard(guard_name, **{**opts, **per[guard_name]}))
        except TypeError as err:
            raise ConfigError(f"guard {guard_name!r}: bad option: {err}") from None
    return out


def _guard_specs(name: str) -> list[tuple[str, dict[str, Any]]]:
    """``[(wrapper name, options)]`` for a guard name or a mitigated model spec file."""
    from lmcritic.backends import SPEC_SUFFIXES, read_model_spec

    if not name.lower().endswith(SPEC_SUFFIXES):
        return [(name, {})]
    spec = read_model_spec(name)
    wrappers = [w if isinstance(w, dict) else {"name": w} for w in spec.options.get("wrappers") or ()]
    found = [(w["name"], dict(w.get("options") or {})) for w in wrappers if w.get("name") in GUARD_WRAPPERS]
    if spec.backend != "mitigated" or not found:
        raise ConfigError(f"--guard {name!r}: the model spec has no guard wrapper",
                          f"give a model.yaml of `lmcritic mitigate --method {'|'.join(GUARD_WRAPPERS)}`")
    return found


class ProxyAPI:
    """Same ``handle(method, path, headers, body)`` contract as :class:`lmcritic.serve.API`."""

    def __init__(self, upstream: str, api_key_env: str | None = None, upstream_key_env: str | None = None,
                 guards: Sequence[Guard] = (), timeout: float = 600.0) -> None:
        url = urllib.parse.urlsplit(upstream.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"bad --upstream {upstream!r}", "use the server's base URL, e.g. http://127.0.0.1:8001/v1")
        self.url, self.timeout, self.guards = url, timeout, list(guards)
        self.base_path = url.path.removesuffix("/v1")
        self._key = _env_key(api_key_env)
        self._upstream_key = _env_key(upstream_key_env)
        self.model_name = f"proxy:{upstream}"

    def handle(self, method: str, path: str, headers: Any, body: bytes | None) -> tuple[int, Any]:
        route = path.split("?", 1)[0].rstrip("/") or "/"
        if route == "/health":
            return 200, {"status": "ok", "upstream": urllib.parse.urlunsplit(self.url)}
        if route not in ROUTES:
            raise APIError(404, f"unknown path {route}; try {', '.join(ROUTES)}", code="not_found")
        self._check_key(headers.get("Authorization"))
        if method == "POST" and route != "/v1/models" and self.guards:
            return self._guarded(route, json_object(body))
        return self._forward(method, route, body)

    # -- transparent forwarding ------------------------------------------------------------------------
    def _forward(self, method: str, route: str, body: bytes | None) -> tuple[int, Any]:
        conn, resp = self._request(method, route, body)
        if "text/event-stream" in (resp.getheader("Content-Type") or ""):
            return resp.status, SSE(_relay(conn, resp), raw=True)
        try:
            data = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(data or b"{}")
        except ValueError:
            raise APIError(502, f"upstream answered {resp.status} with a body that is not JSON",
                           code="bad_upstream") from None

    def _request(self, method: str, route: str, body: bytes | None) -> tuple[Any, Any]:
        cls = http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.url.hostname or "", self.url.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self._upstream_key:
            headers["Authorization"] = f"Bearer {self._upstream_key}"
        try:
            conn.request(method, self.base_path + route, body=body, headers=headers)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            raise APIError(502, f"upstream {self.url.hostname}:{self.url.port} unreachable: "
                           f"{type(err).__name__}: {err}", code="upstream_unreachable") from None

    # -- guarded ---------------------------------------------------------------------------------------
    def _guarded(self, route: str, body: dict[str, Any]) -> tuple[int, Any]:
        stream = body.get("stream") is True
        prompt = _prompt_text(body)
        for guard in self.guards:
            decision = guard.check_input(prompt)
            if decision is not None:
                return 200, self._finish(_blocked(route, body, guard.reply), stream, decision)
        upstream = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        for guard in self.guards:
            upstream = guard.prepare(upstream)
        status, reply = self._forward("POST", route, json.dumps(upstream).encode("utf-8"))
        if status >= 400 or not isinstance(reply, dict):
            return status, reply
        actions: dict[str, Any] = {}
        for choice in reply.get("choices") or ():
            _filter_choice(choice, self.guards, actions)
        return status, self._finish(reply, stream, actions or None, body.get("stream_options"))

    @staticmethod
    def _finish(reply: dict[str, Any], stream: bool, meta: dict[str, Any] | None, opts: object = None) -> Any:
        if not stream:
            return {**reply, "_guard": meta} if meta else reply
        usage = isinstance(opts, dict) and opts.get("include_usage") is True
        return SSE(chunks(reply, include_usage=usage), meta=meta)

    def _check_key(self, header: str | None) -> None:
        check_bearer(self._key, header)


def _relay(conn: Any, resp: Any) -> Iterator[bytes]:
    """Upstream SSE bytes as they arrive (read1: whatever is there, without waiting for a full buffer)."""
    try:
        while True:
            data = resp.read1(READ_CHUNK) if hasattr(resp, "read1") else resp.read(READ_CHUNK)
            if not data:
                return
            yield data
    finally:
        conn.close()


def _filter_choice(choice: dict[str, Any], guards: Sequence[Guard], actions: dict[str, Any]) -> None:
    msg = choice.get("message")
    text = msg.get("content") if isinstance(msg, dict) else choice.get("text")
    if not isinstance(text, str):
        return
    for guard in guards:
        text, done = guard.filter_output(text)
        if done:
            actions.update(done)
            choice["finish_reason"] = "content_filter"
            choice["logprobs"] = None  # the log-probs were of the text before filtering
    if isinstance(msg, dict):
        msg["content"] = text
    else:
        choice["text"] = text


def _blocked(route: str, body: dict[str, Any], text: str) -> dict[str, Any]:
    chat = route.endswith("chat/completions")
    choice = ({"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0, "text": text})
    return {"id": f"{'chatcmpl' if chat else 'cmpl'}-guard-{uuid.uuid4().hex[:16]}",
            "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
            "model": body.get("model"), "choices": [{**choice, "logprobs": None, "finish_reason": "content_filter"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


def _prompt_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        texts = [c if isinstance(c, str) else json.dumps(c) for c in users]
        return texts[-1] if texts else ""
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


def _env_key(env: str | None) -> str | None:
    if env is None:
        return None
    key = os.environ.get(env)
    if not key:
        raise ConfigError(f"${env} is not set", f"export {env}=... or drop the option naming it")
    return key


__all__ = ["GUARD_WRAPPERS", "Guard", "MitigationGuard", "ProxyAPI", "build_guards"]
