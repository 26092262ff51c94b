"""Several servers of one model behind one client: least-outstanding-requests balancing, ejection, retry.

Each request goes to the endpoint with the fewest requests in flight (ties: the one sent fewest so far). An
attempt that fails in a way that may pass (timeout, refused or broken connection, HTTP 429/5xx) ejects that
endpoint for an exponentially growing while (``backoff * 2**k`` with jitter, or the server's Retry-After) and
the request is sent again at once to another endpoint; when all are ejected it waits for the first to come back
and tries it again. A success clears the endpoint's failure count. With one endpoint this is plain retrying
with exponential backoff. Every endpoint has its own rate limit (``requests_per_minute`` each).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from lmcritic.backends._http import JSONClient, Retryable, Unreachable
from lmcritic.errors import BackendError

log = logging.getLogger("lmcritic.http")


@dataclass
class Endpoint:
    """One server and what the balancer knows of it (guarded by the pool's lock)."""

    client: JSONClient
    outstanding: int = 0
    sent: int = 0
    failed: int = 0
    ejections: int = 0
    streak: int = 0  # consecutive failures, for the ejection time
    ejected_until: float = 0.0
    never_reached: bool = False  # refused before it ever answered

    @property
    def url(self) -> str:
        return self.client.base_url


@dataclass
class PoolStats:
    """Counts since the pool was built: ``retries`` is attempts sent again after a failed one."""

    retries: int = 0
    endpoints: dict[str, dict[str, int]] = field(default_factory=dict)


class EndpointPool:
    """POST JSON to whichever of ``urls`` is least busy; one request is attempted ``max_retries + 1`` times."""

    def __init__(self, urls: list[str], api_key_env: str | None, timeout: float, max_retries: int,
                 backoff: float, requests_per_minute: float | None = None) -> None:
        self.endpoints = [Endpoint(JSONClient(u, api_key_env, timeout, 0, backoff, requests_per_minute))
                          for u in urls]
        self.max_retries = max_retries
        self.retries = 0
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.endpoints[0].url

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        last: Retryable | Unreachable | None = None
        for attempt in range(self.max_retries + 1):
            ep = self._acquire()
            if attempt:
                with self._lock:
                    self.retries += 1
            try:
                data = ep.client.attempt(path, payload)
            except (Retryable, Unreachable) as err:
                last = err
                self._failed(ep, err)
                continue
            except BaseException:
                self._release(ep)
                raise
            self._succeeded(ep)
            return data
        raise self._give_up(path, last)

    def _acquire(self) -> Endpoint:
        """The least busy endpoint in service, waiting for the first ejected one to return if none is."""
        while True:
            with self._lock:
                now = time.monotonic()
                live = [e for e in self.endpoints if e.ejected_until <= now]
                if live:
                    ep = min(live, key=lambda e: (e.outstanding, e.sent))
                    ep.outstanding += 1
                    ep.sent += 1
                    return ep
                wait = min(e.ejected_until for e in self.endpoints) - now
            time.sleep(max(wait, 0.001))

    def _release(self, ep: Endpoint) -> None:
        with self._lock:
            ep.outstanding -= 1

    def _succeeded(self, ep: Endpoint) -> None:
        with self._lock:
            ep.outstanding -= 1
            ep.streak, ep.never_reached = 0, False

    def _failed(self, ep: Endpoint, err: Retryable | Unreachable) -> None:
        delay = ep.client.delay(ep.streak, getattr(err, "delay", None))
        with self._lock:
            ep.outstanding -= 1
            ep.failed += 1
            ep.streak += 1
            ep.never_reached = isinstance(err, Unreachable)
            if ep.ejected_until <= time.monotonic():
                ep.ejections += 1
            ep.ejected_until = max(ep.ejected_until, time.monotonic() + delay)
            all_down = all(e.never_reached for e in self.endpoints)
        log.info("ejecting %s for %.2f s after %s", ep.url, delay, ep.client.scrub(str(err)))
        if all_down and isinstance(err, Unreachable):  # nothing ever answered: most likely none is started
            raise err

    def _give_up(self, path: str, last: Retryable | Unreachable | None) -> BackendError:
        where = self.base_url + path if len(self.endpoints) == 1 else f"{path} on {len(self.endpoints)} endpoints"
        reason = self.endpoints[0].client.scrub(last.reason if isinstance(last, Retryable) else str(last))
        return BackendError(f"{where} failed after {self.max_retries + 1} attempts: {reason}",
                            getattr(last, "hint", None))

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(self.retries, {e.url: {"sent": e.sent, "failed": e.failed, "ejections": e.ejections}
                                            for e in self.endpoints})
