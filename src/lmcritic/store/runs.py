"""The run store: every run, probe, scored case and finding as rows of one embedded SQLite database.

Each write is its own short transaction, so a run killed at any point keeps everything written before,
and ``resume`` asks :meth:`RunStore.done_case_ids` what is left. Other processes may read while a run
writes (WAL). Model text is stored as-is (JSON with ``ensure_ascii``, so lone surrogates cannot crash
the store); escaping it is the report's job. Tags are stored twice: as JSON with the case, and one row
per tag in ``case_tags`` so diagnosis can join and filter on tag values in SQL.
"""
from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from lmcritic.errors import ConfigError, LmcriticError, UnknownNameError
from lmcritic.probes.base import Finding, Record
from lmcritic.store import _owner, _sqlite
from lmcritic.store._rows import (
    RUN_COLUMNS,
    UPSERT_CASE,
    LegacyContext,
    ProbeRunInfo,
    RunInfo,
    StageRunInfo,
    case_row,
    finding_of,
    record_of,
    run_info,
    safe_record,
    tag_value,
)
from lmcritic.store._schema import MIGRATIONS, SCHEMA_VERSION
from lmcritic.store._sqlite import dumps, safe_text
from lmcritic.store._versions import versions as library_versions

RUN_STATUSES = ("running", "done", "partial", "failed", "interrupted")
PROBE_STATUSES = ("pending", "running", "done", "partial", "skipped", "failed")
STAGE_STATUSES = ("running", "done", "failed")
PROBE_KINDS = ("probe", "stage")  # a spec probe, or records/findings written by a stage



class RunStore(_owner.Ownership):
    """Runs in one SQLite file (parent folders are created). Safe to share between threads.

    ``create=False`` refuses a path with no store yet (a typo'd ``--store`` must not start an empty one).
    ``read_only`` (default: when the file or its folder cannot be written) opens it for browsing only.
    Every SQLite failure surfaces as a one-line :class:`StoreError` (a damaged file names the recovery).
    Opening a writable store marks runs whose process is gone ``interrupted`` (see ``_owner``).
    """

    def __init__(self, path: str | Path, *, create: bool = True, read_only: bool | None = None,
                 max_output_chars: int | None = None) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists() and (not create or read_only):
            raise _sqlite.missing_file(self.path, "run store")
        self.read_only = not _sqlite.writable(self.path) if read_only is None else read_only
        self.max_output_chars = _sqlite.output_limit(max_output_chars)
        self._lock = threading.RLock()
        self._conn = _sqlite.connect(self.path, read_only=self.read_only, fix=self.damage_hint)
        if self.read_only:
            _sqlite.check_version(self._conn, SCHEMA_VERSION, f"run store {self.path}")
        else:
            _sqlite.migrate(self._conn, MIGRATIONS, f"run store {self.path}")
            self.reap_stale()

    @property
    def damage_hint(self) -> str:
        return (f"recover what is readable: sqlite3 {self.path} .recover | sqlite3 {self.path}.recovered, then "
                f"move {self.path}.recovered to {self.path}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs -----------------------------------------------------------------------------------
    def create_run(self, spec: dict[str, Any], model: dict[str, Any], fingerprint: str, name: str | None = None) -> str:
        """Record a new run (status ``running``); returns its id, a sortable UTC timestamp + 4 hex digits."""
        now, versions = time.time(), dumps(library_versions())
        for _ in range(100):
            run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{secrets.token_hex(2)}"
            me = _owner.current()
            row = (run_id, safe_text(name), now, "running", dumps(spec), dumps(model), fingerprint, versions,
                   me.pid, me.host, me.started)
            try:
                with self._write():
                    self._conn.execute("INSERT INTO runs (id, name, created, status, spec_json, model_json, "
                                       "model_fingerprint, versions_json, pid, host, pid_start) "
                                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            except sqlite3.IntegrityError:
                continue  # the same id in the same second: draw again
            return run_id
        raise LmcriticError("could not draw a fresh run id", "retry in a second")

    def resolve(self, ref: str) -> str:
        """A run's full id from the id, a unique prefix, ``latest`` or ``latest~N`` (N runs before latest)."""
        ref = str(ref).strip()
        if ref == "latest" or ref.startswith("latest~"):
            return self._nth_latest(ref)
        with self._lock:
            if self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (ref,)).fetchone():
                return ref
            rows = self._conn.execute("SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY created DESC, "
                                      "rowid DESC LIMIT 6", (len(ref), ref)).fetchall() if ref else []
        if len(rows) == 1:
            return str(rows[0][0])
        if rows:
            shown = ", ".join(r[0] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise UnknownNameError(f"run {ref!r} is ambiguous: it starts {shown}", "give more of the id")
        raise UnknownNameError(f"no run {ref!r} in {self.path}", self._recent_hint())

    def _nth_latest(self, ref: str) -> str:
        text = "0" if ref == "latest" else ref.removeprefix("latest~")
        if not text.isdigit():
            raise ConfigError(f"bad run reference {ref!r}", "use latest, latest~1, latest~2, ...")
        with self._lock:
            row = self._conn.execute("SELECT id FROM runs ORDER BY created DESC, rowid DESC LIMIT 1 OFFSET ?",
                                     (int(text),)).fetchone()
            count = self._conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        if row is None:
            raise UnknownNameError(f"no run {ref!r}: {count} run(s) stored in {self.path}", self._recent_hint())
        return str(row[0])

    def _recent_hint(self) -> str:
        recent = [r.id for r in self.list_runs(limit=5)]
        if not recent:
            return "no runs stored yet; start one with `lmcritic scan`"
        return f"most recent: {', '.join(recent)} (or latest, latest~1, ...)"

    def get_run(self, ref: str) -> RunInfo:
        run_id = self.resolve(ref)
        with self._lock:
            row = self._conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return run_info(row)

    def list_runs(self, limit: int = 20) -> list[RunInfo]:
        """The newest runs first."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY created DESC, rowid DESC "
                                      "LIMIT ?", (int(limit),)).fetchall()
        return [run_info(r) for r in rows]

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        """``running`` reopens a run (resume) and claims it for this process; any other status also stamps
        the finish time."""
        _check(status, RUN_STATUSES, "run status")
        if status == "running":
            me = _owner.current()
            self._update_run(run_id, "status = 'running', error = NULL, finished = NULL, pid = ?, host = ?, "
                             "pid_start = ?", (me.pid, me.host, me.started))
            return
        self._update_run(run_id, "status = ?, error = ?, finished = ?", (status, safe_text(error), time.time()))

    def finish_run(self, run_id: str, timings: dict[str, Any], summary: dict[str, Any], status: str = "done",
                   error: str | None = None) -> None:
        """The run ended by itself: ``done``, ``partial`` (some probes failed) or ``failed`` (none ran)."""
        _check(status, RUN_STATUSES, "run status")
        self._update_run(run_id, "status = ?, error = ?, finished = ?, timings_json = ?, summary_json = ?",
                         (status, safe_text(error), time.time(), dumps(timings), dumps(summary)))

    def delete_run(self, run_id: str) -> None:
        """Remove a run with its probes, cases, tags and findings."""
        with self._write():
            if self._conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 0:
                raise UnknownNameError(f"no run {run_id!r} in {self.path}", "nothing was deleted")

    def _update_run(self, run_id: str, sets: str, args: tuple[Any, ...]) -> None:
        with self._write():
            if self._conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*args, run_id)).rowcount == 0:
                raise UnknownNameError(f"no run {run_id!r} in {self.path}", self._recent_hint())

    # -- probes ---------------------------------------------------------------------------------
    def start_probe(self, run_id: str, probe_key: str, probe_name: str, n_cases: int | None = None,
                    kind: str = "probe") -> None:
        """Mark a probe running; ``kind="stage"`` for the records/findings a stage writes under its own key."""
        _check(kind, PROBE_KINDS, "probe kind")
        self._set_probe(run_id, probe_key, probe_name, status="running", reason=None, started=time.time(),
                        finished=None, elapsed_s=None, n_cases=n_cases, kind=kind)

    def finish_probe(self, run_id: str, probe_key: str, elapsed_s: float | None = None) -> None:
        """Mark done; ``elapsed_s`` defaults to the time since :meth:`start_probe`."""
        now = time.time()
        with self._write():
            cur = self._conn.execute("UPDATE probe_runs SET status = 'done', reason = NULL, finished = ?, "
                                     "elapsed_s = coalesce(?, ? - started) WHERE run_id = ? AND probe_key = ?",
                                     (now, elapsed_s, now, run_id, probe_key))
            if cur.rowcount == 0:
                raise LmcriticError(f"probe {probe_key!r} of run {run_id!r} was never started",
                                    "call start_probe first")

    def skip_probe(self, run_id: str, probe_key: str, probe_name: str, reason: str) -> None:
        self._set_probe(run_id, probe_key, probe_name, status="skipped", reason=reason, finished=time.time())

    def fail_probe(self, run_id: str, probe_key: str, reason: str, probe_name: str | None = None) -> None:
        self._set_probe(run_id, probe_key, probe_name, status="failed", reason=reason, finished=time.time())

    def partial_probe(self, run_id: str, probe_key: str, reason: str, elapsed_s: float | None = None) -> None:
        """Finished, but some cases failed (``reason`` says how many and why); a resume retries those."""
        self._set_probe(run_id, probe_key, None, status="partial", reason=reason, finished=time.time(),
                        elapsed_s=elapsed_s)

    def _set_probe(self, run_id: str, probe_key: str, probe_name: str | None, **values: Any) -> None:
        """Update the probe's row, or insert it (keeping the plan order of first appearance)."""
        _check(values["status"], PROBE_STATUSES, "probe status")
        values["reason"] = safe_text(values.get("reason"))
        if probe_name is not None:
            values["probe_name"] = probe_name
        self._upsert("probe_runs", {"run_id": run_id, "probe_key": probe_key}, values, {"probe_name": probe_key})

    def _upsert(self, table: str, key: dict[str, Any], values: dict[str, Any],
                defaults: dict[str, Any] | None = None) -> None:
        """Update the row with ``key``, or insert it with ``defaults`` (rowid keeps the order of first appearance)."""
        with self._write():
            self._require_run(key["run_id"])
            sets, where = ", ".join(f"{c} = ?" for c in values), " AND ".join(f"{c} = ?" for c in key)
            cur = self._conn.execute(f"UPDATE {table} SET {sets} WHERE {where}", (*values.values(), *key.values()))
            if cur.rowcount == 0:
                row = {**key, **(defaults or {}), **values}
                self._conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                   tuple(row.values()))

    def plan_probes(self, run_id: str, probes: Sequence[tuple[str, str]]) -> None:
        """Record ``(key, name)`` probes not yet recorded as ``pending``, in this order: records and findings read
        back in plan order however the probes are later run (a sharded scan finishes them in any order)."""
        with self._write():
            self._require_run(run_id)
            self._conn.executemany("INSERT OR IGNORE INTO probe_runs (run_id, probe_key, probe_name, status, kind) "
                                   "VALUES (?, ?, ?, 'pending', 'probe')", [(run_id, k, n) for k, n in probes])

    def case_counts(self, run_id: str) -> dict[str, int]:
        """Stored cases per probe key (progress of a run written by other processes)."""
        with self._lock:
            rows = self._conn.execute("SELECT probe_key, count(*) FROM cases WHERE run_id = ? GROUP BY probe_key",
                                      (run_id,)).fetchall()
        return {str(k): int(n) for k, n in rows}

    def probe_runs(self, run_id: str, kind: str | None = None) -> list[ProbeRunInfo]:
        """The run's probes in the order they were first recorded (the plan order); ``kind`` keeps one kind."""
        sql = ("SELECT run_id, probe_key, probe_name, status, reason, started, finished, elapsed_s, n_cases, kind "
               "FROM probe_runs WHERE run_id = ?")
        args: tuple[Any, ...] = (run_id,)
        if kind is not None:
            sql, args = sql + " AND kind = ?", (run_id, kind)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY rowid", args).fetchall()
        return [ProbeRunInfo(*r) for r in rows]

    # -- stages ---------------------------------------------------------------------------------
    def start_stage(self, run_id: str, stage: str) -> None:
        """Mark a stage running (a resumed run's stage restarts from scratch: stages store whole outputs)."""
        self._set_stage(run_id, stage, status="running", reason=None, started=time.time(), finished=None,
                        elapsed_s=None)

    def finish_stage(self, run_id: str, stage: str) -> None:
        """Mark done, with the time since :meth:`start_stage`."""
        now = time.time()
        with self._write():
            cur = self._conn.execute("UPDATE stage_runs SET status = 'done', reason = NULL, finished = ?, "
                                     "elapsed_s = ? - started WHERE run_id = ? AND stage = ?",
                                     (now, now, run_id, stage))
            if cur.rowcount == 0:
                raise LmcriticError(f"stage {stage!r} of run {run_id!r} was never started", "call start_stage first")

    def fail_stage(self, run_id: str, stage: str, reason: str) -> None:
        """Mark a stage failed with the one-line reason (a resumed run tries it again)."""
        self._set_stage(run_id, stage, status="failed", reason=safe_text(reason), finished=time.time())

    def stage_runs(self, run_id: str) -> list[StageRunInfo]:
        """The run's stages in the order they first ran."""
        with self._lock:
            rows = self._conn.execute("SELECT run_id, stage, status, reason, started, finished, elapsed_s "
                                      "FROM stage_runs WHERE run_id = ? ORDER BY rowid", (run_id,)).fetchall()
        return [StageRunInfo(*r) for r in rows]

    def _set_stage(self, run_id: str, stage: str, **values: Any) -> None:
        _check(values["status"], STAGE_STATUSES, "stage status")
        self._upsert("stage_runs", {"run_id": run_id, "stage": stage}, values)

    # -- cases ----------------------------------------------------------------------------------
    def done_case_ids(self, run_id: str, probe_key: str) -> set[str]:
        """Ids of the cases already stored: what a resumed run skips."""
        with self._lock:
            rows = self._conn.execute("SELECT case_id FROM cases WHERE run_id = ? AND probe_key = ?",
                                      (run_id, probe_key)).fetchall()
        return {r[0] for r in rows}

    def add_records(self, run_id: str, probe_key: str, records: Sequence[Record],
                    order: Mapping[str, int] | None = None) -> None:
        """Store scored cases in one transaction; re-adding a case replaces it (idempotent).

        ``seq`` orders the cases: ``order[case_id]`` when given (the runner passes each case's position in
        the probe, so chunks stored out of order or across a resume still read back in case order), else
        the case's earlier position, else after the last stored case.
        """
        if not records:
            return
        now = time.time()
        with self._write():
            self._require_run(run_id)
            records = [safe_record(r, self.max_output_chars) for r in records]
            seqs = self._seqs(run_id, probe_key, records, order)
            self._conn.executemany(UPSERT_CASE, [case_row(run_id, probe_key, r, seqs[r.case_id], now)
                                                  for r in records])
            keys = [(run_id, probe_key, r.case_id) for r in records]
            self._conn.executemany("DELETE FROM case_tags WHERE run_id = ? AND probe_key = ? AND case_id = ?", keys)
            self._conn.executemany("INSERT OR REPLACE INTO case_tags VALUES (?, ?, ?, ?, ?)",
                                   [(*k, safe_text(str(t)), tag_value(v))
                                    for k, r in zip(keys, records) for t, v in r.tags.items()])

    def _seqs(self, run_id: str, probe_key: str, records: Sequence[Record],
              order: Mapping[str, int] | None) -> dict[str, int]:
        seqs = {k: int(v) for k, v in (order or {}).items()}
        if all(r.case_id in seqs for r in records):
            return seqs
        known = dict(self._conn.execute("SELECT case_id, seq FROM cases WHERE run_id = ? AND probe_key = ?",
                                        (run_id, probe_key)).fetchall())
        top = max([*known.values(), *seqs.values()], default=-1)
        for r in records:
            if r.case_id not in seqs:
                if r.case_id not in known:
                    top += 1
                    known[r.case_id] = top
                seqs[r.case_id] = known[r.case_id]
        return seqs

    def record_keys(self, run_id: str) -> list[str]:
        """Keys with stored cases: probes and stage outputs (explanations, diagnosis tests), sorted."""
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT probe_key FROM cases WHERE run_id = ? ORDER BY probe_key",
                                      (run_id,)).fetchall()
        return [r[0] for r in rows]

    def records(self, run_id: str, probe_key: str | None = None) -> list[Record]:
        """Stored records in case order (all probes: in plan order, then case order)."""
        sql = ("SELECT c.case_id, c.input_json, c.output_json, c.scores_json, c.tags_json, c.passed, c.fields_json, "
               "c.probe_key FROM cases c LEFT JOIN probe_runs p ON p.run_id = c.run_id AND p.probe_key = c.probe_key "
               "WHERE c.run_id = ?")
        args: tuple[Any, ...] = (run_id,)
        if probe_key is not None:
            sql, args = sql + " AND c.probe_key = ?", (run_id, probe_key)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY p.rowid, c.probe_key, c.seq", args).fetchall()
        legacy = LegacyContext(self, run_id) if any(r[6] is None for r in rows) else None
        return [record_of(r, legacy) for r in rows]

    # -- findings -------------------------------------------------------------------------------
    def add_findings(self, run_id: str, probe_key: str, findings: Iterable[Finding]) -> None:
        """Replace the probe's findings (summaries are recomputed from all records, so the last word wins)."""
        rows = [(run_id, probe_key, i, f.probe, f.name, f.verdict.value, f.severity.value, safe_text(f.summary),
                 dumps(f.estimate) if f.estimate is not None else None, dumps(f.evidence), dumps(f.details))
                for i, f in enumerate(findings)]
        with self._write():
            self._require_run(run_id)
            self._conn.execute("DELETE FROM findings WHERE run_id = ? AND probe_key = ?", (run_id, probe_key))
            self._conn.executemany("INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def findings(self, run_id: str) -> list[Finding]:
        """All findings of the run: probes in plan order, each probe's findings in the order it gave them.
        Names stored by older versions read back in the current scheme (:func:`lmcritic.findings.canonical_name`)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT f.probe, f.name, f.verdict, f.severity, f.summary, f.estimate_json, f.evidence_json, "
                "f.details_json FROM findings f LEFT JOIN probe_runs p ON p.run_id = f.run_id AND "
                "p.probe_key = f.probe_key WHERE f.run_id = ? ORDER BY p.rowid, f.probe_key, f.seq",
                (run_id,)).fetchall()
        return [finding_of(r) for r in rows]

    # -- plumbing -------------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[None]:
        """The store's lock plus one ``BEGIN IMMEDIATE`` transaction: committed whole, or not at all."""
        with self._lock, _sqlite.transaction(self._conn):
            yield

    def _require_run(self, run_id: str) -> None:
        if not self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
            raise UnknownNameError(f"no run {run_id!r} in {self.path}", "create it with create_run first")


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {what} {value!r}", f"one of: {', '.join(allowed)}")


_sqlite.guard_methods(RunStore, "damage_hint")

__all__ = ["MIGRATIONS", "PROBE_KINDS", "PROBE_STATUSES", "RUN_STATUSES", "SCHEMA_VERSION", "STAGE_STATUSES",
           "ProbeRunInfo", "RunInfo", "RunStore", "StageRunInfo"]
