"""Production traffic in the run store: requests, ingestion progress, row errors, scores and caches.

The monitor's tables live in the same SQLite file as the runs (``runs.sqlite``), created by the run store's
migration list (``lmcritic.store._schema.MIGRATIONS``, step 2), so one ``--store`` holds the pre-deployment scans
and the traffic they are compared with.
Writes follow the run store's rules: one short ``BEGIN IMMEDIATE`` transaction per batch, so a killed ingest
keeps every finished batch, and the file's read offset is committed with the rows it covers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from lmcritic.monitor.schema import LogRecord
from lmcritic.store import _sqlite
from lmcritic.store._sqlite import dumps, loads, safe_text
from lmcritic.store.runs import RunStore

_REQUEST_COLUMNS = ("id, ts, prompt, response, model, version, conversation_id, request_id, thumb, feedback_score, "
                    "feedback_comment, expected, metadata_json, source, line")
_PREFIXED = ", ".join("r." + c.strip() for c in _REQUEST_COLUMNS.split(","))
LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class SourceState:
    """How far a log file has been read (byte offset, or row index for Parquet)."""

    path: str
    format: str
    offset: int
    line: int
    head_hash: str
    header: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StoredRequest:
    """A stored request: its row id, where it was read (``source:line``), and the normalized record."""

    id: int
    record: LogRecord
    source: str | None
    line: int | None


@dataclass(frozen=True)
class RowFailure:
    source: str
    line: int
    kind: str
    message: str
    excerpt: str | None


class MonitorStore(RunStore):
    """A run store with the monitor's tables in use: runs and production traffic in one file."""

    # -- ingestion progress ----------------------------------------------------------------------------
    def source(self, path: str) -> SourceState | None:
        with self._lock:
            row = self._conn.execute("SELECT path, format, offset, line, head_hash, header_json FROM monitor_sources "
                                     "WHERE path = ?", (path,)).fetchone()
        if row is None:
            return None
        header = loads(row[5])
        return SourceState(row[0], row[1], row[2], row[3], row[4], tuple(header) if header else None)

    def sources(self) -> list[SourceState]:
        with self._lock:
            paths = [r[0] for r in self._conn.execute("SELECT path FROM monitor_sources ORDER BY path")]
        return [s for s in map(self.source, paths) if s is not None]

    def commit_batch(self, state: SourceState, records: Sequence[tuple[LogRecord, int]],
                     failures: Sequence[RowFailure]) -> list[tuple[int, int]]:
        """Store a batch of (record, line) with its row failures and the file's new offset, in one transaction.

        Returns ``(line, id of the stored request it duplicates)`` for each record already stored.
        """
        now = time.time()
        dupes: list[tuple[int, int]] = []
        with self._lock, _sqlite.transaction(self._conn):
            for rec, line in records:
                cur = self._conn.execute("INSERT OR IGNORE INTO monitor_requests (key, ts, prompt, response, model, "
                                         "version, conversation_id, request_id, thumb, feedback_score, "
                                         "feedback_comment, expected, metadata_json, source, line, ingested) "
                                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                         _request_row(rec, state.path, line, now))
                if cur.rowcount == 0:
                    dupes.append((line, self._conn.execute("SELECT id FROM monitor_requests WHERE key = ?",
                                                           (rec.key(),)).fetchone()[0]))
            self._conn.executemany("INSERT OR REPLACE INTO monitor_errors VALUES (?, ?, ?, ?, ?, ?)",
                                   [(f.source, f.line, f.kind, safe_text(f.message), safe_text(f.excerpt), now)
                                    for f in failures])
            self._conn.execute("INSERT OR REPLACE INTO monitor_sources VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (state.path, state.format, state.offset, state.line, state.head_hash,
                                dumps(list(state.header)) if state.header else None, now))
        return dupes

    def add_failures(self, failures: Sequence[RowFailure]) -> None:
        now = time.time()
        with self._lock, _sqlite.transaction(self._conn):
            self._conn.executemany("INSERT OR REPLACE INTO monitor_errors VALUES (?, ?, ?, ?, ?, ?)",
                                   [(f.source, f.line, f.kind, safe_text(f.message), safe_text(f.excerpt), now)
                                    for f in failures])

    def failures(self, limit: int | None = 50) -> list[RowFailure]:
        sql = "SELECT source, line, kind, message, excerpt FROM monitor_errors ORDER BY source, line"
        with self._lock:
            rows = self._conn.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
        return [RowFailure(*r) for r in rows]

    def failure_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._conn.execute("SELECT kind, count(*) FROM monitor_errors GROUP BY kind ORDER BY kind"))

    # -- requests --------------------------------------------------------------------------------------
    def count(self, start: float | None = None, end: float | None = None) -> int:
        where, args = _range(start, end)
        with self._lock:
            return int(self._conn.execute(f"SELECT count(*) FROM monitor_requests {where}", args).fetchone()[0])

    def span(self) -> tuple[float, float] | None:
        with self._lock:
            lo, hi = self._conn.execute("SELECT min(ts), max(ts) FROM monitor_requests").fetchone()
        return None if lo is None else (float(lo), float(hi))

    def requests(self, ids: Sequence[int]) -> list[StoredRequest]:
        out: dict[int, StoredRequest] = {}
        with self._lock:
            for start in range(0, len(ids), LOOKUP_CHUNK):
                part = list(ids[start : start + LOOKUP_CHUNK])
                sql = f"SELECT {_REQUEST_COLUMNS} FROM monitor_requests WHERE id IN ({','.join('?' * len(part))})"
                out.update((r[0], _stored(r)) for r in self._conn.execute(sql, part))
        return [out[i] for i in ids if i in out]

    def iter_requests(self, start: float | None = None, end: float | None = None,
                      chunk: int = 1000) -> Iterator[list[StoredRequest]]:
        """Requests in time order, ``chunk`` at a time (keyset pagination: memory stays bounded)."""
        where, args = _range(start, end)
        last = (-1.0, -1)
        while True:
            cond = ("AND" if where else "WHERE") + " (ts > ? OR (ts = ? AND id > ?))"
            with self._lock:
                rows = self._conn.execute(f"SELECT {_REQUEST_COLUMNS} FROM monitor_requests {where} {cond} "
                                          "ORDER BY ts, id LIMIT ?",
                                          (*args, last[0], last[0], last[1], chunk)).fetchall()
            if not rows:
                return
            last = (rows[-1][1], rows[-1][0])
            yield [_stored(r) for r in rows]

    def unscored(self, config: str, chunk: int = 1000) -> Iterator[list[StoredRequest]]:
        """Requests without scores under ``config`` (scoring the batch removes it from this query)."""
        last = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT {_PREFIXED} FROM monitor_requests r "
                    "LEFT JOIN monitor_scores s ON s.request_id = r.id AND s.config = ? WHERE s.request_id IS NULL "
                    "AND r.id > ? ORDER BY r.id LIMIT ?", (config, last, chunk)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [_stored(r) for r in rows]

    # -- scores ----------------------------------------------------------------------------------------
    def save_scores(self, config: str, scores: dict[int, dict[str, Any]]) -> None:
        with self._lock, _sqlite.transaction(self._conn):
            self._conn.executemany("INSERT OR REPLACE INTO monitor_scores VALUES (?, ?, ?)",
                                   [(rid, config, dumps(s)) for rid, s in scores.items()])

    def iter_scored(self, config: str, start: float | None = None, end: float | None = None,
                    chunk: int = 2000) -> Iterator[list[tuple[int, float, dict[str, Any], dict[str, Any]]]]:
        """(request id, timestamp, scores, attributes) in time order for requests scored under ``config``;
        attributes are the metadata plus ``model``, ``version`` and ``source`` (what alerts can group by)."""
        where, args = _range(start, end, "r.")
        last = (-1.0, -1)
        while True:
            cond = ("AND" if where else "WHERE") + " (r.ts > ? OR (r.ts = ? AND r.id > ?)) AND s.config = ?"
            with self._lock:
                rows = self._conn.execute(f"SELECT r.id, r.ts, s.scores_json, r.metadata_json, r.model, r.version, "
                                          f"r.source FROM monitor_requests r JOIN monitor_scores "
                                          f"s ON s.request_id = r.id {where} {cond} ORDER BY r.ts, r.id LIMIT ?",
                                          (*args, last[0], last[0], last[1], config, chunk)).fetchall()
            if not rows:
                return
            last = (rows[-1][1], rows[-1][0])
            yield [(r[0], r[1], loads(r[2]), _attributes(r[3:])) for r in rows]

    def scored_count(self, config: str) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM monitor_scores WHERE config = ?",
                                          (config,)).fetchone()[0])

    # -- caches ----------------------------------------------------------------------------------------
    def cached_values(self, scorer: str, hashes: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(hashes), LOOKUP_CHUNK):
                part = list(hashes[start : start + LOOKUP_CHUNK])
                sql = (f"SELECT text_hash, value_json FROM monitor_text_cache WHERE scorer = ? AND text_hash IN "
                       f"({','.join('?' * len(part))})")
                found.update((h, loads(v)) for h, v in self._conn.execute(sql, (scorer, *part)))
        return found

    def cache_values(self, scorer: str, values: dict[str, Any]) -> None:
        with self._lock, _sqlite.transaction(self._conn):
            self._conn.executemany("INSERT OR REPLACE INTO monitor_text_cache VALUES (?, ?, ?)",
                                   [(scorer, h, dumps(v)) for h, v in values.items()])

    def embeddings(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(hashes), LOOKUP_CHUNK):
                part = list(hashes[start : start + LOOKUP_CHUNK])
                marks = ",".join("?" * len(part))
                sql = f"SELECT text_hash, vector FROM monitor_embeddings WHERE text_hash IN ({marks})"
                found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in self._conn.execute(sql, part))
        return found

    def save_embeddings(self, vectors: dict[str, np.ndarray]) -> None:
        with self._lock, _sqlite.transaction(self._conn):
            self._conn.executemany("INSERT OR REPLACE INTO monitor_embeddings VALUES (?, ?)",
                                   [(h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in vectors.items()])


def _range(start: float | None, end: float | None, prefix: str = "") -> tuple[str, tuple[Any, ...]]:
    conds, args = [], []
    if start is not None:
        conds.append(f"{prefix}ts >= ?")
        args.append(start)
    if end is not None:
        conds.append(f"{prefix}ts < ?")
        args.append(end)
    return ("WHERE " + " AND ".join(conds)) if conds else "", tuple(args)


def _attributes(row: tuple[Any, ...]) -> dict[str, Any]:
    meta, model, version, source = row
    attrs = dict(loads(meta) or {})
    attrs.update({k: v for k, v in (("model", model), ("version", version), ("source", source)) if v is not None})
    return attrs


def _request_row(rec: LogRecord, source: str, line: int, now: float) -> tuple[Any, ...]:
    return (rec.key(), rec.timestamp, safe_text(rec.prompt), safe_text(rec.response), safe_text(rec.model),
            safe_text(rec.version), safe_text(rec.conversation_id), safe_text(rec.request_id), rec.thumb,
            rec.feedback_score, safe_text(rec.feedback_comment), safe_text(rec.expected), dumps(rec.metadata),
            source, line, now)


def _stored(row: tuple[Any, ...]) -> StoredRequest:
    (rid, ts, prompt, response, model, version, conv, req, thumb, fscore, comment, expected, meta, source,
     line) = row
    rec = LogRecord(ts, prompt, response, model, version, conv, req, thumb, fscore, comment, expected,
                    loads(meta) or {})
    return StoredRequest(rid, rec, source, line)
