"""The openai backend over several servers: least-outstanding balancing, ejection and retry, and a load test
against three real ``lmcritic serve`` processes with one killed mid-run."""
from __future__ import annotations

import signal
import socket
import threading
import time
from typing import Any

import pytest

from _fleet import fleet
from lmcritic.backends.openai import OpenAIBackend
from lmcritic.errors import BackendError, ConfigError
from test_openai_backend import OK, gen, scripted

SLOW = {**OK, "sleep": 0.5}


def pool(urls: list[str], **kw: Any) -> OpenAIBackend:
    return OpenAIBackend("m", base_url=urls, api_key_env=None, backoff=kw.pop("backoff", 0.01), **kw)


def test_least_outstanding_sends_most_requests_to_the_fast_server() -> None:
    with scripted([], default=SLOW) as (slow, seen_slow), scripted([]) as (fast, seen_fast):
        out = pool([slow, fast], concurrency=4).generate([gen(str(i)) for i in range(40)])
    assert [r.text for r in out] == ["ok"] * 40
    # the slow server holds each request 0.5 s, so it is the busier one nearly all the time
    assert len(seen_slow) + len(seen_fast) == 40 and len(seen_fast) >= 3 * len(seen_slow)


def test_a_failing_server_is_ejected_and_its_request_retried_elsewhere() -> None:
    down = {"status": 503, "body": {"error": {"message": "overloaded"}}}
    with scripted([], default=down) as (bad, seen_bad), scripted([]) as (good, seen_good):
        backend = pool([bad, good], backoff=30, concurrency=1)
        assert [r.text for r in backend.generate([gen(str(i)) for i in range(6)])] == ["ok"] * 6
    stats = backend.endpoint_stats()
    assert len(seen_bad) == 1 and len(seen_good) == 6  # ejected for >= 30 s after its one failure
    assert stats.retries == 1 and stats.endpoints[bad] == {"sent": 1, "failed": 1, "ejections": 1}


def test_an_ejected_server_comes_back_after_its_ejection() -> None:
    slow_ok = {**OK, "sleep": 0.05}
    with scripted([{"status": 503, "body": {}}]) as (flaky, seen_flaky), \
            scripted([], default=slow_ok) as (steady, _):
        backend = pool([flaky, steady], backoff=0.01, concurrency=1)
        backend.generate([gen(str(i)) for i in range(8)])
    assert len(seen_flaky) >= 3  # failed once, then back in service for later requests
    assert backend.endpoint_stats().endpoints[flaky]["failed"] == 1


def test_every_server_down_gives_up_with_one_line() -> None:
    with scripted([], default={"status": 502, "body": {}}) as (a, _), scripted([], default={"status": 502,
                                                                                            "body": {}}) as (b, _):
        with pytest.raises(BackendError, match=r"/completions on 2 endpoints failed after 3 attempts: HTTP 502"):
            pool([a, b], max_retries=2).generate([gen("x")])
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    start = time.monotonic()
    with pytest.raises(BackendError, match="connection refused"):
        pool([f"http://127.0.0.1:{p}/v1" for p in ports]).generate([gen("x")])
    assert time.monotonic() - start < 5  # nothing ever answered: said at once, not after every backoff


def test_options_and_identity() -> None:
    with pytest.raises(ConfigError, match="twice"):
        pool(["http://a/v1", "http://a/v1"])
    with pytest.raises(ConfigError, match="empty list"):
        pool([])
    a, b = pool(["http://a/v1", "http://b/v1"]), pool(["http://b/v1", "http://a/v1/"])
    assert a.fingerprint() == b.fingerprint() != pool(["http://a/v1"]).fingerprint()
    assert a.concurrency == 32 and a.describe()["base_url"] == ["http://a/v1", "http://b/v1"]


def test_load_three_serve_processes_one_killed_mid_run() -> None:
    n = 300
    with fleet(3) as servers:
        backend = pool([url for _, url in servers], backoff=0.2)
        victim, victim_url = servers[2]

        def kill_at_a_third() -> None:
            while sum(e["sent"] for e in backend.endpoint_stats().endpoints.values()) < n // 3:
                time.sleep(0.005)
            victim.send_signal(signal.SIGKILL)

        killer = threading.Thread(target=kill_at_a_third, daemon=True)
        killer.start()
        out = backend.generate([gen(f"case {i:04d}", max_new_tokens=64) for i in range(n)])
        killer.join(timeout=5)
    assert victim.poll() is not None
    assert [r.text for r in out] == [f"case {i:04d}"[::-1] for i in range(n)]  # every case, once, in order
    stats = backend.endpoint_stats()
    assert stats.retries >= 1 and stats.endpoints[victim_url]["failed"] >= 1
    assert stats.retries == sum(e["failed"] for e in stats.endpoints.values())
