"""CachedBackend: hits are never recomputed, budgets keep what they paid for, and a killed process resumes."""
from __future__ import annotations

import dataclasses
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

import pytest

from lmcritic._serde import stable_hash
from lmcritic.backends.base import Backend
from lmcritic.errors import BackendError, BudgetExceeded, CapabilityError, ConfigError, InputError
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
from lmcritic.store.cache import Budget, CachedBackend, CacheStats, cache_info, estimate_tokens

TESTS = Path(__file__).resolve().parent
ALL = frozenset(Capability) - {Capability.GRADIENTS}


class CountingBackend(Backend):
    """A deterministic model that answers every method from the text alone and logs every request it gets."""

    kind = "counting"

    def __init__(self, name: str = "m", delay: float = 0.0, caps: frozenset[Capability] = ALL) -> None:
        self.name, self.delay, self.caps = name, delay, caps
        self.received: list[tuple[str, object]] = []
        self.batches: list[int] = []

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.caps

    def fingerprint(self) -> str:
        return stable_hash("counting", self.name)

    def _seen(self, method: str, requests: Sequence[object]) -> None:
        self.received += [(method, r) for r in requests]
        self.batches.append(len(requests))
        time.sleep(self.delay)

    def loglikelihood(self, requests):
        self._seen("loglikelihood", requests)
        return [LoglikelihoodResult(-float(len(r.continuation)), len(r.continuation) % 2 == 0,
                                    len(r.continuation.split())) for r in requests]

    def rolling_logprobs(self, requests):
        self._seen("rolling_logprobs", requests)
        return [_rolling(r.text) for r in requests]

    def generate(self, requests):
        self._seen("generate", requests)
        out = []
        for r in requests:
            text = r.prompt if r.prompt is not None else r.messages[-1].content
            out.append(GenerateResult(text[::-1][: r.params.max_new_tokens], "length", len(text), len(text)))
        return out

    def classify(self, requests):
        self._seen("classify", requests)
        return [ClassifyResult(("neg", "pos"), (1 - len(r.text) % 10 / 10, len(r.text) % 10 / 10)) for r in requests]

    def pseudo_loglikelihood(self, requests):
        self._seen("pseudo_loglikelihood", requests)
        return [PseudoLoglikelihoodResult(-1.5 * len(r.text), tuple(r.text), tuple(-1.5 for _ in r.text))
                for r in requests]

    def embed(self, requests):
        self._seen("embed", requests)
        return [EmbeddingResult((float(len(r.text)), float(r.text.count("a")), 0.25)) for r in requests]


def _rolling(text: str) -> RollingResult:
    words = text.split()
    offsets, pos = [], 0
    for w in words:
        start = text.index(w, pos)
        offsets.append((start, start + len(w)))
        pos = start + len(w)
    return RollingResult(tuple(len(w) for w in words), tuple(words), tuple(-len(w) / 10 for w in words),
                         tuple(offsets))


def ll_requests(start: int, stop: int) -> list[LoglikelihoodRequest]:
    return [LoglikelihoodRequest(f"context {i}", " x" * (i % 7 + 1) + f" {i}") for i in range(start, stop)]


def _rows(path: Path) -> int:
    try:
        return sqlite3.connect(path).execute("SELECT count(*) FROM calls").fetchone()[0]
    except sqlite3.Error:
        return 0


# -- caching --------------------------------------------------------------------------------------
def test_hits_are_not_recomputed_and_results_round_trip(tmp_path) -> None:
    reqs = {
        "loglikelihood": ll_requests(0, 5),
        "rolling_logprobs": [RollingRequest("the cat  sat"), RollingRequest("a b", window=8, stride=4)],
        "generate": [GenerateRequest(prompt="hello", params=GenParams(max_new_tokens=3, stop=("\n",))),
                     GenerateRequest(messages=(ChatMessage("system", "be"), ChatMessage("user", "brief")))],
        "classify": [ClassifyRequest("good film"), ClassifyRequest("bad", text_pair="film")],
        "pseudo_loglikelihood": [PseudoLoglikelihoodRequest("abc")],
        "embed": [EmbeddingRequest("banana")],
    }
    assert set(reqs) == set(METHODS)
    direct = CountingBackend()
    first = CachedBackend(CountingBackend(), tmp_path / "c.sqlite")
    for method, rs in reqs.items():
        assert first.call(method, rs) == direct.call(method, rs)
    again_inner = CountingBackend()
    again = CachedBackend(again_inner, tmp_path / "c.sqlite")
    for method, rs in reqs.items():
        got = again.call(method, rs)
        assert got == direct.call(method, rs)
        assert [type(x) for x in got] == [METHODS[method].result] * len(rs)
    assert again_inner.received == []
    assert again.stats == CacheStats(hits=sum(map(len, reqs.values())), misses=0, queries=0, tokens=0)


def test_order_restored_and_duplicates_computed_once(tmp_path) -> None:
    inner = CountingBackend()
    cached = CachedBackend(inner, tmp_path / "c.sqlite", chunk_size=4)
    cached.loglikelihood(ll_requests(0, 10)[::2])  # the even ones are cached
    inner.received.clear()
    reqs = ll_requests(0, 10) * 3
    random.Random(0).shuffle(reqs)
    assert cached.loglikelihood(reqs) == CountingBackend().loglikelihood(reqs)
    sent = [r for _, r in inner.received]
    assert sorted(sent, key=str) == sorted(ll_requests(0, 10)[1::2], key=str)  # odd ones, once each
    assert max(inner.batches) <= 4
    assert (cached.stats.hits, cached.stats.misses, cached.stats.queries) == (15, 5 + 15, 5 + 5)


def test_key_depends_on_fingerprint_method_and_request(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    a, b, a2 = CountingBackend("a"), CountingBackend("b"), CountingBackend("a")
    CachedBackend(a, path).embed([EmbeddingRequest("x")])
    CachedBackend(b, path).embed([EmbeddingRequest("x")])
    CachedBackend(a2, path).embed([EmbeddingRequest("x")])
    assert (len(a.received), len(b.received), len(a2.received)) == (1, 1, 0)  # another model misses
    CachedBackend(a2, path).pseudo_loglikelihood([PseudoLoglikelihoodRequest("x")])  # same JSON, other method
    CachedBackend(a2, path).embed([EmbeddingRequest("y")])
    assert len(a2.received) == 2
    key = stable_hash(a.fingerprint(), "embed", EmbeddingRequest("x"))
    row = sqlite3.connect(path).execute("SELECT method, fingerprint FROM calls WHERE key = ?", (key,)).fetchone()
    assert row == ("embed", a.fingerprint())


def test_in_memory_read_only_clear_and_info(tmp_path) -> None:
    mem_inner = CountingBackend()
    mem = CachedBackend(mem_inner, None)
    mem.embed([EmbeddingRequest("q")] * 2)
    mem.embed([EmbeddingRequest("q")])
    assert len(mem_inner.received) == 1

    path = tmp_path / "c.sqlite"
    writer = CachedBackend(CountingBackend("a"), path)
    writer.loglikelihood(ll_requests(0, 6))
    writer.embed([EmbeddingRequest("e")])
    CachedBackend(CountingBackend("b"), path).embed([EmbeddingRequest("e")])
    ro_inner = CountingBackend("a")
    ro = CachedBackend(ro_inner, path, read_only=True)
    assert ro.loglikelihood(ll_requests(0, 8)) == CountingBackend().loglikelihood(ll_requests(0, 8))
    assert len(ro_inner.received) == 2 and _rows(path) == 8  # computed, not stored
    with pytest.raises(ConfigError):
        ro.clear()
    info = cache_info(path)
    assert info.entries == {"embed": 2, "loglikelihood": 6} and info.fingerprints == 2 and info.size_bytes > 0
    assert writer.clear("loglikelihood") == 6
    assert writer.clear() == 1
    assert cache_info(path).entries == {"embed": 1}  # the other model's entry stays
    missing = tmp_path / "none.sqlite"
    assert cache_info(missing).total == 0
    CachedBackend(CountingBackend(), missing, read_only=True).embed([EmbeddingRequest("z")])
    assert not missing.exists()


def test_is_a_backend(tmp_path) -> None:
    inner = CountingBackend(caps=frozenset({Capability.EMBEDDINGS}))
    cached = CachedBackend(inner, tmp_path / "c.sqlite", budget=Budget(max_queries=5))
    assert isinstance(cached, Backend) and cached.inner is inner
    assert cached.kind == "counting" and cached.capabilities == inner.capabilities
    assert cached.fingerprint() == inner.fingerprint()
    cached.embed([EmbeddingRequest("a")])
    desc = cached.describe()
    assert desc["backend"] == "counting" and desc["cache"]["misses"] == 1 and desc["cache"]["max_queries"] == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        cached.stats.hits = 3  # type: ignore[misc]
    with pytest.raises(CapabilityError):
        cached.classify([])
    sqlite_version = sqlite3.connect(tmp_path / "c.sqlite").execute("PRAGMA user_version").fetchone()[0]
    assert sqlite_version == 1


def test_bad_inputs_and_bad_backends_fail_clearly(tmp_path) -> None:
    class Short(CountingBackend):
        def embed(self, requests):
            return super().embed(requests)[:-1]

    cached = CachedBackend(Short(), tmp_path / "c.sqlite")
    with pytest.raises(BackendError, match="1 results for 2"):
        cached.embed([EmbeddingRequest("a"), EmbeddingRequest("b")])
    assert _rows(tmp_path / "c.sqlite") == 0
    with pytest.raises(InputError, match="EmbeddingRequest"):
        cached.embed(["a"])
    with pytest.raises(InputError, match="surrogate"):
        cached.embed([EmbeddingRequest("bad \ud800")])
    with pytest.raises(ConfigError):
        CachedBackend(CountingBackend(), None, chunk_size=0)
    with pytest.raises(ConfigError):
        Budget(max_queries=-1)


def test_a_row_that_no_longer_loads_is_recomputed(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    CachedBackend(CountingBackend(), path).embed([EmbeddingRequest("a")])
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE calls SET result_json = '{\"old_field\": 1}'")
    inner = CountingBackend()
    assert CachedBackend(inner, path).embed([EmbeddingRequest("a")]) == CountingBackend().embed([EmbeddingRequest("a")])
    assert len(inner.received) == 1
    CachedBackend(inner, path).embed([EmbeddingRequest("a")])
    assert len(inner.received) == 1  # healed


# -- budgets --------------------------------------------------------------------------------------
def test_budget_computes_what_fits_keeps_it_then_raises(tmp_path) -> None:
    path, reqs = tmp_path / "c.sqlite", ll_requests(0, 40)
    inner = CountingBackend()
    cached = CachedBackend(inner, path, budget=Budget(max_queries=25), chunk_size=10)
    with pytest.raises(BudgetExceeded) as err:
        cached.loglikelihood(reqs)
    message = str(err.value)
    assert "25 queries of max 25" in message and "15 request(s)" in message and "rerun" in message
    assert "\n" not in message
    assert len(inner.received) == 25 and inner.batches == [10, 10, 5] and _rows(path) == 25
    rerun_inner = CountingBackend()
    assert CachedBackend(rerun_inner, path).loglikelihood(reqs) == CountingBackend().loglikelihood(reqs)
    assert [r for _, r in rerun_inner.received] == reqs[25:]


def test_budget_hits_and_duplicates_are_free(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    CachedBackend(CountingBackend(), path, budget=Budget(max_queries=10)).loglikelihood(ll_requests(0, 10) * 3)
    inner = CountingBackend()
    replay = CachedBackend(inner, path, budget=Budget(max_queries=0))
    replay.loglikelihood(ll_requests(0, 10))
    with pytest.raises(BudgetExceeded, match="0 queries of max 0"):
        replay.loglikelihood(ll_requests(0, 11))
    assert inner.received == []


def test_token_budget_estimate_and_backend_count(tmp_path) -> None:
    assert [estimate_tokens(s) for s in ("", "abcd", "abcde")] == [1, 1, 2]
    inner = CountingBackend()
    reqs = [LoglikelihoodRequest("", "x" * 8) for _ in range(1)] + [LoglikelihoodRequest("", "y" * 8 + str(i))
                                                                   for i in range(4)]
    cached = CachedBackend(inner, None, budget=Budget(max_tokens=8))  # 2 + 3 + 3 tokens fit, the 4th does not
    with pytest.raises(BudgetExceeded, match="8 tokens of max 8"):
        cached.loglikelihood(reqs)
    assert len(inner.received) == 3
    gen = CachedBackend(CountingBackend(), None)
    gen.generate([GenerateRequest(prompt="abcd", params=GenParams(max_new_tokens=5))])
    assert gen.stats.tokens == 6  # 1 for the prompt + max_new_tokens

    class Counts(CountingBackend):
        def count_tokens(self, texts):
            return [100 for _ in texts]

    counted = CachedBackend(Counts(), None)
    counted.loglikelihood(ll_requests(0, 3))
    assert counted.stats.tokens == 300


# -- concurrency and kills ------------------------------------------------------------------------
def test_threads_share_one_wrapper_and_compute_each_request_once(tmp_path) -> None:
    inner = CountingBackend(delay=0.002)
    cached = CachedBackend(inner, tmp_path / "c.sqlite", chunk_size=7)
    expected = {r: x for r, x in zip(ll_requests(0, 80), CountingBackend().loglikelihood(ll_requests(0, 80)))}
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        reqs = ll_requests(0, 80)
        random.Random(seed).shuffle(reqs)
        try:
            assert cached.loglikelihood(reqs[:60]) == [expected[r] for r in reqs[:60]]
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(Counter(r for _, r in inner.received).values()) == {1}
    s = cached.stats
    assert s.hits + s.misses == 6 * 60 and s.queries == len(inner.received)


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from test_cache import CountingBackend, ll_requests
    from lmcritic.store.cache import CachedBackend

    path, delay = sys.argv[2], float(sys.argv[3])
    start, stop, chunk = map(int, sys.argv[4:7])
    reqs = ll_requests(start, stop)
    if start % 2:
        reqs.reverse()
    results = CachedBackend(CountingBackend(delay=delay), path, chunk_size=chunk).loglikelihood(reqs)
    assert results == CountingBackend().loglikelihood(reqs)
    print("ok")
""")


def _worker(tmp_path: Path, path: Path, delay: float, start: int, stop: int, chunk: int) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT)
    args = [sys.executable, str(script), str(TESTS), str(path), str(delay), str(start), str(stop), str(chunk)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_process_keeps_finished_chunks_and_rerun_sends_only_the_rest(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    proc = _worker(tmp_path, path, 0.2, 0, 200, 10)
    deadline = time.time() + 30
    while time.time() < deadline and _rows(path) < 30 and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _rows(path)
    assert 30 <= done < 200 and done % 10 == 0, (done, proc.stderr.read())
    stored = {r[0] for r in sqlite3.connect(path).execute("SELECT key FROM calls")}
    inner = CountingBackend()
    reqs = ll_requests(0, 200)
    results = CachedBackend(inner, path, chunk_size=10).loglikelihood(reqs)
    sent = [r for _, r in inner.received]
    assert len(sent) == 200 - done
    assert {stable_hash(inner.fingerprint(), "loglikelihood", r) for r in sent}.isdisjoint(stored)
    assert results == CachedBackend(CountingBackend(), None).loglikelihood(reqs)  # as an uninterrupted run


def test_two_processes_share_one_cache_file(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    procs = [_worker(tmp_path, path, 0.02, 0, 120, 5), _worker(tmp_path, path, 0.02, 61, 180, 5)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.strip() == "ok", err
    assert _rows(path) == 180
    inner = CountingBackend()
    replay = CachedBackend(inner, path, budget=Budget(max_queries=0))
    assert replay.loglikelihood(ll_requests(0, 180)) == CountingBackend().loglikelihood(ll_requests(0, 180))
