"""A small JSON-over-HTTP client (stdlib only): retries with backoff, Retry-After, a rate limiter.

The API key is read from its environment variable on every request and kept nowhere else; any text
that reaches an exception or a log line is scrubbed of it in case a server echoes it back.
"""
from __future__ import annotations

import email.utils
import errno
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from lmcritic.errors import BackendError

log = logging.getLogger("lmcritic.http")

MAX_DELAY_S = 60.0  # longest single wait, whatever Retry-After says
SERVE_HINT = "is the server running? start one with `lmcritic serve --model ...`"
TIMEOUT_HINT = "raise timeout, or lower concurrency"


class RateLimiter:
    """Token bucket: at most ``per_minute`` requests a minute, bursts of ``burst``; thread-safe.

    Slots are reserved under the lock (tokens may go negative), so concurrent callers queue up evenly.
    """

    def __init__(self, per_minute: float, burst: float = 1.0) -> None:
        if per_minute <= 0:
            raise ValueError("requests_per_minute must be > 0")
        self.rate = per_minute / 60.0
        self.burst = burst
        self._tokens = burst
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate) - 1
            self._last = now
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)


class Retryable(Exception):
    """One failed attempt that may succeed later; ``delay`` is the server's Retry-After, if any."""

    def __init__(self, reason: str, delay: float | None = None, hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.delay, self.hint = reason, delay, hint


class Unreachable(BackendError):
    """The server refused the connection and has never answered: most likely it is not started."""


class JSONClient:
    """POST JSON to ``base_url + path`` and return the decoded reply, or raise a one-line BackendError."""

    def __init__(self, base_url: str, api_key_env: str | None, timeout: float, max_retries: int,
                 backoff: float, requests_per_minute: float | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        self.limiter = RateLimiter(requests_per_minute) if requests_per_minute else None
        self._reached = False  # once the server has answered, a refused connection is worth retrying

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            try:
                return self.attempt(path, payload)
            except Retryable as err:
                if attempt == self.max_retries:
                    raise BackendError(self.scrub(f"{url} failed after {attempt + 1} attempts: {err.reason}"),
                                       err.hint) from None
                delay = self.delay(attempt, err.delay)
                log.info("retrying %s in %.2f s after %s (attempt %d/%d)", url, delay, self.scrub(err.reason),
                         attempt + 2, self.max_retries + 1)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """How long to wait before attempt ``attempt + 1``: Retry-After, else exponential backoff with jitter."""
        if retry_after is not None:
            return min(MAX_DELAY_S, retry_after)
        return min(MAX_DELAY_S, self.backoff * 2**attempt * (1 + random.random()))  # full jitter on top

    def attempt(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One try: the decoded reply, :class:`Retryable` for what may pass, BackendError for what will not."""
        url, body = self.base_url + path, json.dumps(payload).encode("utf-8")
        if self.limiter:
            self.limiter.acquire()
        req = urllib.request.Request(url, data=body, method="POST", headers=self._headers())
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            self._reached = True
            raise self._http_error(url, err) from None
        except (TimeoutError, socket.timeout):
            raise Retryable(f"timed out after {self.timeout:g} s", hint=TIMEOUT_HINT) from None
        except (urllib.error.URLError, ConnectionError, OSError) as err:
            raise self._connection_error(url, err) from None
        except http.client.HTTPException as err:  # e.g. the server closed mid-reply
            raise Retryable(f"broken reply: {type(err).__name__}") from None
        self._reached = True
        return self._decode(url, raw)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _connection_error(self, url: str, err: OSError) -> Exception:
        reason = getattr(err, "reason", err)
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return Retryable(f"timed out after {self.timeout:g} s", hint=TIMEOUT_HINT)
        refused = isinstance(reason, ConnectionRefusedError) or getattr(reason, "errno", None) == errno.ECONNREFUSED
        if refused and not self._reached:  # never answered: most likely not started, so say so at once
            return Unreachable(f"cannot reach {url}: connection refused", SERVE_HINT)
        text = "connection refused" if refused else self.scrub(str(getattr(reason, "strerror", None) or reason))
        return Retryable(f"cannot reach the server: {text}", hint=SERVE_HINT)

    def _http_error(self, url: str, err: urllib.error.HTTPError) -> Exception:
        detail = self.scrub(_error_detail(err))
        if err.code == 429 or err.code >= 500:
            retry = "set requests_per_minute or lower concurrency" if err.code == 429 else "see the server's log"
            return Retryable(f"HTTP {err.code} {detail}".strip(), _retry_after(err.headers.get("Retry-After")), retry)
        hint: str | None = None
        if err.code in (401, 403):
            hint = f"set the API key in ${self.api_key_env}" if self.api_key_env else "pass api_key_env=..."
        elif err.code == 404:
            hint = "check base_url (it usually ends in /v1) and the model name"
        return BackendError(f"{url} answered HTTP {err.code}: {detail}", hint)

    def _decode(self, url: str, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BackendError(f"{url} did not answer JSON: {self.scrub(raw[:120].decode('utf-8', 'replace'))!r}") \
                from None
        if not isinstance(data, dict):
            raise BackendError(f"{url} answered {type(data).__name__} JSON, expected an object")
        return data

    def scrub(self, text: str) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return text.replace(key, "***") if key else text


def _error_detail(err: urllib.error.HTTPError) -> str:
    """The server's own error message (OpenAI style ``{"error": {"message": ...}}``), one line, short."""
    try:
        raw = err.read(4096).decode("utf-8", "replace")
    except OSError:
        return err.reason or ""
    try:
        data = json.loads(raw)
        msg = data.get("error", data) if isinstance(data, dict) else data
        msg = msg.get("message", msg) if isinstance(msg, dict) else msg
    except ValueError:
        msg = raw
    return " ".join(str(msg).split())[:300]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
