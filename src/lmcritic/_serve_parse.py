"""Requests in, replies out, for ``lmcritic serve``: every malformed field is a 400 naming it."""
from __future__ import annotations

import json
import os
from typing import Any, overload

from lmcritic.backends.base import Backend
from lmcritic.errors import ConfigError
from lmcritic.requests import ChatMessage, GenParams


class APIError(Exception):
    """An OpenAI-style error reply: status code, one-line message, the offending field."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


# request parsing: every failure is a 400 naming the field
def json_object(body: bytes | None) -> dict[str, Any]:
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "request body is not valid JSON") from None
    except RecursionError:  # [[[[...]]]] 100k deep: refused, not a crash
        raise APIError(400, "request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise APIError(400, f"request body must be a JSON object, got {type(data).__name__}")
    return data


def prompts(body: dict[str, Any]) -> list[str]:
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise APIError(400, "prompt: must be a string or a non-empty list of strings (token ids are not "
                       "supported; lm-eval: tokenized_requests=False)", "prompt")
    return prompts


def messages(body: dict[str, Any]) -> tuple[ChatMessage, ...]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise APIError(400, "messages: must be a non-empty list of {role, content}", "messages")
    return tuple(message(m, i) for i, m in enumerate(raw))


def message(m: object, i: int) -> ChatMessage:
    content = m.get("content") if isinstance(m, dict) else None
    if isinstance(content, list):  # content parts: keep the text ones
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        content = "".join(p for p in parts if isinstance(p, str)) if len(parts) == len(content) else None
    if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(content, str):
        raise APIError(400, f"messages[{i}]: needs a string 'role' and text 'content'", "messages")
    return ChatMessage(m["role"], content)


def params(body: dict[str, Any], max_tokens: int, logprobs: int | None = None) -> GenParams:
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else (stop or [])
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise APIError(400, "stop: must be a string or a list of strings", "stop")
    try:
        return GenParams(max_new_tokens=max_tokens, temperature=number(body, "temperature", 1.0),
                         top_p=number(body, "top_p", 1.0), top_k=integer(body, "top_k", 0, 0) or 0,
                         seed=integer(body, "seed", None), stop=tuple(s for s in stops if s), logprobs=logprobs)
    except ConfigError as err:
        raise APIError(400, str(err)) from None


def number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise APIError(400, f"{name}: must be a number, got {json.dumps(value)[:40]}", name)
    return float(value)


@overload
def integer(body: dict[str, Any], name: str, default: int, lo: int | None = None, hi: int | None = None) -> int: ...


@overload
def integer(body: dict[str, Any], name: str, default: None, lo: int | None = None,
            hi: int | None = None) -> int | None: ...


def integer(body: dict[str, Any], name: str, default: int | None, lo: int | None = None,
            hi: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or (lo is not None and value < lo) or \
            (hi is not None and value > hi):
        bounds = f" in [{lo}, {hi}]" if hi is not None else (f" >= {lo}" if lo is not None else "")
        raise APIError(400, f"{name}: must be an integer{bounds}, got {json.dumps(value)[:40]}", name)
    return value


def boolean(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise APIError(400, f"{name}: must be true or false", name)
    return value


def only_one(body: dict[str, Any]) -> bool:
    """Checks n/best_of; returns whether the reply is to be streamed."""
    if body.get("n", 1) != 1 or body.get("best_of", 1) != 1:
        raise APIError(400, "n: only n=1 (and best_of=1) is supported", "n")
    return boolean(body, "stream")


def default_name(backend: Backend) -> str:
    info = backend.describe()
    return str(info.get("model") or info.get("name") or backend.kind)


def read_key(env: str | None) -> str | None:
    if env is None:
        return None
    key = os.environ.get(env)
    if not key:
        raise ConfigError(f"the server was asked to check an API key from ${env}, but it is not set",
                          f"export {env}=... or drop --api-key-env")
    return key
