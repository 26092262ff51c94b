"""Caching, query budgets and resume in one wrapper: ``CachedBackend(model, path, budget=Budget(...))``.

Every request is keyed on ``stable_hash(model fingerprint, method, request)``. A call looks its keys up in
SQLite, sends only the misses to the real backend (each distinct request once, in chunks that the backend
batches), and commits each chunk as soon as it is back, so a killed process keeps every finished chunk
and a rerun asks the model only for what is left. The budget counts only what reaches the model.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from lmcritic._serde import from_jsonable, stable_hash, to_jsonable
from lmcritic.backends.base import Backend
from lmcritic.backends.whitebox import WhiteBox
from lmcritic.errors import BackendError, BackendTimeout, BudgetExceeded, ConfigError, InputError
from lmcritic.requests import METHODS, Capability
from lmcritic.store import _sqlite

CHARS_PER_TOKEN = 4  # the token estimate when the backend cannot count: ~4 characters per token (English BPE)
LOOKUP_CHUNK = 500  # keys per SELECT, under SQLite's bound-variable limit
SCHEMA: tuple[_sqlite.Migration, ...] = (
    """CREATE TABLE calls (key TEXT PRIMARY KEY, method TEXT NOT NULL, fingerprint TEXT NOT NULL,
           request_json TEXT NOT NULL, result_json TEXT NOT NULL, created REAL NOT NULL, elapsed_s REAL);
       CREATE INDEX calls_fingerprint_method ON calls (fingerprint, method)""",
)


@dataclass(frozen=True)
class Budget:
    """Caps on the work that reaches the model; ``None`` means no cap. Cache hits are free.

    Tokens are the backend's own count when it has ``count_tokens(texts: list[str]) -> list[int]``, else
    an estimate of ``ceil(characters / 4)`` over the request's texts; generate adds ``max_new_tokens``.
    """

    max_queries: int | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_queries", "max_tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ConfigError(f"budget {name} must be a whole number >= 0 or None, got {value!r}")

    def fits(self, queries: int, tokens: int) -> bool:
        """Whether spending ``queries`` requests and ``tokens`` tokens in total stays within the caps."""
        return (self.max_queries is None or queries <= self.max_queries) and (
            self.max_tokens is None or tokens <= self.max_tokens
        )

    def take(self, queries: int, spent: int, tokens: Sequence[int]) -> int:
        """How many of the requests costing ``tokens`` (in order) fit after ``queries``/``spent`` were used."""
        n = 0
        while n < len(tokens) and self.fits(queries + n + 1, spent + tokens[n]):
            spent += tokens[n]
            n += 1
        return n


class Ledger(Protocol):
    """Where spent queries and tokens are booked when several processes share one budget (a sharded scan's
    workers): ``reserve`` books the requests that still fit, atomically across processes, and says how many."""

    def reserve(self, budget: Budget, tokens: Sequence[int]) -> int: ...

    def spent(self) -> tuple[int, int]: ...


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of one wrapper's work: hits and misses count requests as asked (duplicates included);
    ``queries`` and ``tokens`` count what reached the model; ``elapsed_s`` is time spent inside it."""

    hits: int = 0
    misses: int = 0
    queries: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class CacheInfo:
    """What a cache file holds, for ``lmcritic cache``-style summaries."""

    path: str
    size_bytes: int
    entries: dict[str, int]  # method -> stored results
    fingerprints: int  # distinct models

    @property
    def total(self) -> int:
        return sum(self.entries.values())


class CachedBackend(Backend):
    """``inner`` with a SQLite call cache (``path=None``: in memory only) and an optional query budget.

    Safe to share between threads (calls into ``inner`` are serialized: backends are not promised to be
    thread-safe, and they batch internally) and between processes on the same file (WAL, busy timeout).
    ``read_only`` reads an existing cache and never writes to it. ``ledger``: book the budget there instead
    of in this wrapper, so processes sharing it share one budget.
    """

    def __init__(self, inner: Backend, path: str | Path | None = None, budget: Budget | None = None,
                 chunk_size: int = 64, read_only: bool = False, max_output_chars: int | None = None,
                 ledger: Ledger | None = None) -> None:
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ConfigError(f"cache chunk_size must be a whole number >= 1, got {chunk_size!r}")
        self.inner = inner
        self.path = Path(path).expanduser() if path is not None else None
        self.budget = budget or Budget()
        self.chunk_size = chunk_size
        self.read_only = read_only
        self.ledger = ledger
        self.max_output_chars = _sqlite.output_limit(max_output_chars)
        self._timed_out: dict[str, BackendTimeout] = {}  # requests that hit a deadline (this process only)
        self._fingerprint = inner.fingerprint()
        self._lock = threading.RLock()  # the connection and the stats
        self._inner_lock = threading.Lock()  # one call into the model at a time
        self._stats = CacheStats()
        self._conn = self._open()

    @property
    def damage_hint(self) -> str:
        return "rerun with --rebuild-cache (moves the damaged cache aside and starts an empty one; runs are kept)"

    @_sqlite.guarded("damage_hint")
    def _open(self) -> Any:
        if not self.read_only:
            conn = _sqlite.connect(self.path, fix=self.damage_hint)
            _sqlite.migrate(conn, SCHEMA, f"cache {self.path or ':memory:'}")
            return conn
        if self.path is None or not self.path.exists():
            return None
        conn = _sqlite.connect(self.path, read_only=True, fix=self.damage_hint)
        if _sqlite.table_exists(conn, "calls"):
            return conn
        conn.close()
        return None

    # -- Backend interface ----------------------------------------------------------------------
    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.inner.kind

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.inner.capabilities

    def fingerprint(self) -> str:
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        cache = {"persistent": self.path is not None, "read_only": self.read_only, "chunk_size": self.chunk_size,
                 **to_jsonable(self.budget), **to_jsonable(self.stats)}
        return {**self.inner.describe(), "cache": cache}

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return self._stats

    def white_box(self) -> WhiteBox:
        """The inner backend's gradient access, passed through: gradients are computed, never cached or budgeted."""
        return self.inner.white_box()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self.inner.close()

    def __repr__(self) -> str:
        return f"CachedBackend({self.inner!r}, path={str(self.path) if self.path else None!r})"

    # -- the cached call ------------------------------------------------------------------------
    def _call(self, method: str, requests: Sequence[Any]) -> list[Any]:
        """Hits from SQLite, distinct misses from the model chunk by chunk, results in the asked order."""
        self.require(METHODS[method].capability)
        requests = list(requests)
        keys = [self._key(method, r, i) for i, r in enumerate(requests)]
        counts = Counter(keys)
        distinct = dict(zip(keys, requests))
        results = self._lookup(method, list(distinct))
        self._count(hits=sum(counts[k] for k in results))
        missing = [(k, r) for k, r in distinct.items() if k not in results]
        for start in range(0, len(missing), self.chunk_size):
            chunk = missing[start : start + self.chunk_size]
            results.update(self._fill(method, chunk, counts, later=len(missing) - start - len(chunk)))
        return [results[k] for k in keys]

    def _key(self, method: str, request: object, index: int) -> str:
        expected = METHODS[method].request
        if not isinstance(request, expected):
            raise InputError(f"{method} request {index} must be a {expected.__name__}, got {type(request).__name__}")
        try:
            return stable_hash(self._fingerprint, method, request)
        except UnicodeEncodeError as err:
            raise InputError(f"{method} request {index} is not valid UTF-8 (lone surrogate at {err.start})",
                             "decode the source with errors='replace'") from None

    def _fill(self, method: str, chunk: list[tuple[str, Any]], counts: Counter[str], later: int) -> dict[str, Any]:
        """Compute one chunk of misses (less what another thread or process stored meanwhile) and store it;
        if the budget covers only part, compute and keep that part, then raise (``later``: misses after it)."""
        with self._inner_lock:
            found = self._lookup(method, [k for k, _ in chunk])
            self._count(hits=sum(counts[k] for k in found))
            todo = [(k, r) for k, r in chunk if k not in found]
            self._refuse_timed_out(todo)
            tokens = self._tokens(method, [r for _, r in todo])
            n = self._reserve(tokens)
            if n:
                found.update(self._compute(method, todo[:n], counts))
            if n < len(todo):
                raise self._exceeded(len(todo) - n + later)
        return found

    def _compute(self, method: str, todo: list[tuple[str, Any]], counts: Counter[str]) -> dict[str, Any]:
        requests = [r for _, r in todo]
        started = time.perf_counter()
        try:
            out = self.inner.call(method, requests)
        except BackendTimeout as err:
            if err.index is not None and 0 <= err.index < len(todo):
                self._timed_out[todo[err.index][0]] = err
            raise
        elapsed = time.perf_counter() - started
        if len(out) != len(requests):
            raise BackendError(f"{self.inner.kind} backend returned {len(out)} results for {len(requests)} "
                               f"{method} requests", "a backend must return one result per request, in order")
        out = [_sqlite.cap_strings(r, self.max_output_chars) for r in out]  # a 10 MB answer is cut, with a marker
        texts = [_sqlite.dumps(r) for r in out]
        self._store(method, todo, texts, elapsed)
        self._count(misses=sum(counts[k] for k, _ in todo), elapsed_s=elapsed)
        return {k: self._load(method, text) for (k, _), text in zip(todo, texts)}  # same types as a hit

    def _refuse_timed_out(self, todo: list[tuple[str, Any]]) -> None:
        """A request that already ran past its deadline in this process fails again at once (the caller
        isolates failing cases by retrying smaller groups; waiting out the deadline each time would not end)."""
        for key, _ in todo:
            if key in self._timed_out:
                err = self._timed_out[key]
                raise BackendTimeout(f"{err.message} (earlier in this run; not retried)", err.hint)

    # -- budget ---------------------------------------------------------------------------------
    def _tokens(self, method: str, requests: list[Any]) -> list[int]:
        if not requests:
            return []
        texts = ["".join(_strings(to_jsonable(r))) for r in requests]
        counter: Callable[[list[str]], Sequence[int]] | None = getattr(self.inner, "count_tokens", None)
        counted = list(counter(texts)) if callable(counter) else []
        if len(counted) != len(texts):
            counted = [estimate_tokens(t) for t in texts]
        extra = [getattr(getattr(r, "params", None), "max_new_tokens", 0) for r in requests]
        return [int(c) + int(e) for c, e in zip(counted, extra)]

    def _reserve(self, tokens: list[int]) -> int:
        """How many of these requests (in order) the budget still covers; their cost is booked at once."""
        with self._lock:
            queries, spent = self._stats.queries, self._stats.tokens
            if self.ledger is not None:
                n = self.ledger.reserve(self.budget, tokens)
            else:
                n = self.budget.take(queries, spent, tokens)
            self._stats = replace(self._stats, queries=queries + n, tokens=spent + sum(tokens[:n]))
        return n

    def _exceeded(self, unsent: int) -> BudgetExceeded:
        s, b = self.stats, self.budget
        queries, tokens = self.ledger.spent() if self.ledger is not None else (s.queries, s.tokens)
        spent = [f"{queries} queries" + (f" of max {b.max_queries}" if b.max_queries is not None else ""),
                 f"{tokens} tokens" + (f" of max {b.max_tokens}" if b.max_tokens is not None else "")]
        return BudgetExceeded(f"budget spent: {', '.join(spent)}; {unsent} request(s) of this call not sent",
                              "raise max_queries/max_tokens, or rerun: cached work is reused")

    def _count(self, **delta: float) -> None:
        with self._lock:
            self._stats = replace(self._stats, **{k: getattr(self._stats, k) + v for k, v in delta.items()})

    # -- storage --------------------------------------------------------------------------------
    @_sqlite.guarded("damage_hint")
    def _lookup(self, method: str, keys: list[str]) -> dict[str, Any]:
        """Stored results for ``keys``; a row that no longer loads (result type changed) counts as a miss."""
        found: dict[str, Any] = {}
        with self._lock:
            if self._conn is None:
                return found
            for start in range(0, len(keys), LOOKUP_CHUNK):
                part = keys[start : start + LOOKUP_CHUNK]
                sql = f"SELECT key, result_json FROM calls WHERE key IN ({','.join('?' * len(part))})"
                for key, text in self._conn.execute(sql, part).fetchall():
                    result = self._try_load(method, text)
                    if result is not None:
                        found[key] = result
        return found

    @_sqlite.guarded("damage_hint")
    def _store(self, method: str, todo: list[tuple[str, Any]], texts: list[str], elapsed: float) -> None:
        if self.read_only:
            return
        now, each = time.time(), elapsed / max(1, len(todo))
        rows = [(k, method, self._fingerprint, _sqlite.dumps(r), t, now, each) for (k, r), t in zip(todo, texts)]
        with self._lock, _sqlite.transaction(self._conn):
            self._conn.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def _load(self, method: str, text: str) -> Any:
        return from_jsonable(METHODS[method].result, json.loads(text))

    def _try_load(self, method: str, text: str) -> Any:
        try:
            return self._load(method, text)
        except (ValueError, TypeError, KeyError):
            return None

    @_sqlite.guarded("damage_hint")
    def clear(self, method: str | None = None) -> int:
        """Forget this model's stored results (of one ``method``, or all); returns how many were deleted."""
        if self.read_only:
            raise ConfigError("this cache is read-only", "open it with read_only=False to clear it")
        if method is not None and method not in METHODS:
            raise ConfigError(f"unknown backend method {method!r}", f"known: {', '.join(METHODS)}")
        sql, args = "DELETE FROM calls WHERE fingerprint = ?", [self._fingerprint]
        if method is not None:
            sql, args = sql + " AND method = ?", args + [method]
        with self._lock, _sqlite.transaction(self._conn):
            return int(self._conn.execute(sql, args).rowcount)


def _cached_method(name: str) -> Callable[[CachedBackend, Sequence[Any]], list[Any]]:
    def method(self: CachedBackend, requests: Sequence[Any]) -> list[Any]:
        return self._call(name, requests)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Cached ``{name}``: stored results from SQLite, the rest from the inner backend."
    return method


for _name in METHODS:  # one cached method per backend method, so a new method is cached without code here
    setattr(CachedBackend, _name, _cached_method(_name))


def estimate_tokens(text: str) -> int:
    """~4 characters per token (at least one): good enough to cap spend without loading a tokenizer."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _strings(data: object) -> list[str]:
    """The texts of a JSON-ed request: every string except chat roles and decoding settings."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for k, v in data.items() if k not in ("params", "role") for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return []


def cache_info(path: str | Path) -> CacheInfo:
    """Entries per method, distinct models and bytes on disk of a cache file (reads it, never writes)."""
    path = Path(path).expanduser()
    if not path.exists():
        return CacheInfo(str(path), 0, {}, 0)
    conn = _sqlite.connect(path, read_only=True)
    try:
        if not _sqlite.table_exists(conn, "calls"):
            return CacheInfo(str(path), _sqlite.file_size(path), {}, 0)
        rows = conn.execute("SELECT method, count(*) FROM calls GROUP BY method ORDER BY method").fetchall()
        models = conn.execute("SELECT count(DISTINCT fingerprint) FROM calls").fetchone()[0]
    finally:
        conn.close()
    return CacheInfo(str(path), _sqlite.file_size(path), dict(rows), int(models))


def set_aside(path: str | Path) -> Path | None:
    """``--rebuild-cache``: move a (damaged) cache file and its WAL/shared-memory files aside; returns where
    it went, or None when there was nothing to move. Cached calls are only a speed-up: nothing is lost."""
    path = Path(path).expanduser()
    if not path.exists():
        return None
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.replace(f"{target}{suffix}")
    return target
