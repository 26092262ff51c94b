"""SQLite plumbing shared by the call cache and the run store.

Both files are written while a model runs and read by other processes (``lmcritic show`` during a run,
a second worker on the same cache), and a run may be killed at any moment. So: WAL mode (readers never
block the writer), a busy timeout (two writers wait instead of failing), ``BEGIN IMMEDIATE`` for every
write (no lock upgrades that deadlock), and one short transaction per write so a kill loses at most the
write in flight. Schemas are versioned with ``PRAGMA user_version`` and upgraded by a list of migrations.
"""
from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import quote

from lmcritic._serde import to_jsonable
from lmcritic.errors import LmcriticError

BUSY_TIMEOUT_MS = 30_000
_SURROGATE = re.compile("[\ud800-\udfff]")
Migration = Callable[[sqlite3.Connection], None] | str  # a function, or SQL statements split on ";"


def connect(path: str | Path | None, *, read_only: bool = False) -> sqlite3.Connection:
    """Open ``path`` (None: a private in-memory database) for use from several threads under one lock.

    Autocommit mode (``isolation_level=None``): transactions are explicit, see :func:`transaction`.
    """
    if path is None:
        return _configure(sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False), False)
    path = Path(path).expanduser()
    try:
        if read_only:
            target, uri = f"file:{quote(path.resolve().as_posix())}?mode=ro", True
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = str(path), False
        conn = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        return _configure(conn, not read_only)
    except (sqlite3.Error, OSError) as err:
        raise LmcriticError(f"cannot open database {path}: {err}",
                            "check the path and permissions, or move a damaged file away") from None


def _configure(conn: sqlite3.Connection, wal: bool) -> sqlite3.Connection:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if wal:
        _retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
        conn.execute("PRAGMA synchronous = NORMAL")  # in WAL: durable across process kills, not power loss
    _retry_busy(lambda: conn.execute("SELECT count(*) FROM sqlite_master").fetchone())  # fail early on junk
    return conn


def _retry_busy(step: Callable[[], Any]) -> Any:
    """Run ``step``, retrying while another process holds the file: SQLite skips the busy handler when two
    processes switch a fresh file to WAL (or recover its WAL) at the same moment."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return step()
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) and "busy" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: taken with ``BEGIN IMMEDIATE``, committed on success, rolled back on error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], what: str) -> int:
    """Bring the schema to ``len(migrations)``: migration ``i`` upgrades version ``i`` to ``i + 1``.

    Each step runs in its own transaction and re-reads the version inside it, so two processes opening a
    fresh file at once apply every step exactly once. Returns the final version.
    """
    target = len(migrations)
    while (current := user_version(conn)) < target:
        with transaction(conn):
            current = user_version(conn)
            if current >= target:
                break
            _apply(conn, migrations[current])
            conn.execute(f"PRAGMA user_version = {current + 1}")
    if current > target:
        raise LmcriticError(f"{what} has schema version {current}, newer than this lmcritic knows ({target})",
                            "upgrade lmcritic, or point it at another file")
    return user_version(conn)


def _apply(conn: sqlite3.Connection, step: Migration) -> None:
    if isinstance(step, str):
        for statement in step.split(";"):  # executescript would COMMIT our transaction
            if statement.strip():
                conn.execute(statement)
    else:
        step(conn)


def dumps(obj: Any) -> str:
    """JSON for storage: ASCII-only, so lone surrogates in model text are escaped, never a crash; NaN and
    infinities are kept (Python's JSON reads them back) so a stored score is the score that was made."""
    return json.dumps(_plain(obj), ensure_ascii=True, separators=(",", ":"), default=_fallback)


def _plain(obj: Any) -> Any:
    """Like :func:`lmcritic._serde.to_jsonable`, but a NaN stays a NaN instead of becoming null."""
    if isinstance(obj, float):
        return obj
    if isinstance(obj, (list, tuple)):
        return [_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    return to_jsonable(obj)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def safe_text(text: str | None) -> str | None:
    """A text column value SQLite can take: invalid surrogates become U+FFFD."""
    return None if text is None else _SURROGATE.sub("\ufffd", text)


def _fallback(obj: Any) -> Any:
    """numpy scalars/arrays and sets are common in scores and outputs; anything else becomes its str."""
    if hasattr(obj, "tolist"):
        return _plain(obj.tolist())
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    return str(obj)


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


def file_size(path: str | Path) -> int:
    """Bytes on disk of a database with its WAL and shared-memory files."""
    path = Path(path)
    sizes = [p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    return sum(sizes)
