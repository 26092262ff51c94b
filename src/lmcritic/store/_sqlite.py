"""SQLite plumbing shared by the call cache and the run store.

Both files are written while a model runs and read by other processes (``lmcritic show`` during a run,
a second worker on the same cache), and a run may be killed at any moment. So: WAL mode (readers never
block the writer), a busy timeout (two writers wait instead of failing), ``BEGIN IMMEDIATE`` for every
write (no lock upgrades that deadlock), and one short transaction per write so a kill loses at most the
write in flight. Schemas are versioned with ``PRAGMA user_version`` and upgraded by a list of migrations.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar
from urllib.parse import quote

from lmcritic._serde import to_jsonable
from lmcritic.errors import LmcriticError, StoreError

BUSY_TIMEOUT_MS = 30_000
MAX_OUTPUT_CHARS = 100_000  # model texts longer than this are cut before storage ($LMCRITIC_MAX_OUTPUT_CHARS)
_SURROGATE = re.compile("[\ud800-\udfff]")
Migration = Callable[[sqlite3.Connection], None] | str  # a function, or SQL statements split on ";"


F = TypeVar("F", bound=Callable[..., Any])


def connect(path: str | Path | None, *, read_only: bool = False, fix: str | None = None) -> sqlite3.Connection:
    """Open ``path`` (None: a private in-memory database) for use from several threads under one lock.

    Autocommit mode (``isolation_level=None``): transactions are explicit, see :func:`transaction`.
    ``read_only`` opens with ``mode=ro``; a WAL file in a folder nobody may write to cannot even be read
    that way (SQLite must create its shared-memory file), so it is then opened ``immutable``. ``fix`` is
    the hint given when the file turns out to be damaged.
    """
    if path is None:
        return _configure(sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False), False)
    path = Path(path).expanduser()
    try:
        if read_only:
            return _connect_read_only(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        return _configure(conn, True)
    except (sqlite3.Error, OSError) as err:
        raise store_error(err, path, fix or "check the path and permissions, or move a damaged file away") from None


def _connect_read_only(path: Path) -> sqlite3.Connection:
    base = f"file:{quote(path.resolve().as_posix())}"
    try:
        conn = sqlite3.connect(f"{base}?mode=ro", uri=True, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        return _configure(conn, False)
    except sqlite3.OperationalError as err:
        if "readonly" not in str(err) and "unable to open" not in str(err):
            raise
    conn = sqlite3.connect(f"{base}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    return _configure(conn, False)


def writable(path: Path) -> bool:
    """Whether this process may write the database and create its journal files beside it."""
    target = path if path.exists() else path.parent
    while not target.exists() and target != target.parent:
        target = target.parent
    return os.access(target, os.W_OK) and (not path.exists() or os.access(path.parent, os.W_OK))


def missing_file(path: Path, what: str) -> StoreError:
    """A database path that does not exist, with the closest existing one beside it as a guess."""
    from difflib import get_close_matches

    near = [p.name for p in path.parent.glob("*.sqlite")] if path.parent.is_dir() else []
    close = get_close_matches(path.name, near, n=1)
    hint = f"did you mean {str(path.parent / close[0])!r}?" if close else "check the path"
    return StoreError(f"no {what} at {path}", f"{hint} (pass --create to start a new one there)")


def store_error(err: BaseException, path: str | Path, fix: str) -> StoreError:
    """One line for a database failure: damaged (with ``fix``), read-only, or anything else."""
    text = str(err).strip() or type(err).__name__
    name = getattr(err, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return StoreError(f"{path} is damaged ({text})", fix)
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return StoreError(f"{path} cannot be written ({text})", "check its permissions, or use another file")
    return StoreError(f"database {path}: {text}", "check the path, permissions and free disk space")


def guarded(fix_attr: str) -> Callable[[F], F]:
    """Method decorator: a ``sqlite3.Error`` becomes a one-line :class:`StoreError` naming ``self.path``
    and the fix in ``self.<fix_attr>`` (a damaged page can surface on any read, not only at open)."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: object, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except sqlite3.Error as err:
                raise store_error(err, getattr(self, "path", "?"), getattr(self, fix_attr)) from None

        return wrapper  # type: ignore[return-value]

    return deco


def guard_methods(cls: type, fix_attr: str) -> type:
    """Apply :func:`guarded` to every public method of ``cls`` and its bases (and ``__init__``)."""
    names = {n for klass in cls.__mro__[:-1] for n in vars(klass)}
    for name in sorted(names):
        value = getattr(cls, name)
        if callable(value) and not isinstance(value, type) and (not name.startswith("_") or name == "__init__"):
            setattr(cls, name, guarded(fix_attr)(value))
    return cls


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


def check_version(conn: sqlite3.Connection, target: int, what: str) -> int:
    """For a read-only file: refuse a schema newer than this lmcritic (an older one reads fine)."""
    current = user_version(conn)
    if current > target:
        raise LmcriticError(f"{what} has schema version {current}, newer than this lmcritic knows ({target})",
                            "upgrade lmcritic, or point it at another file")
    return current


def output_limit(value: int | None = None) -> int:
    """The cap on stored model text: ``value``, else ``$LMCRITIC_MAX_OUTPUT_CHARS``, else the default."""
    raw = value if value is not None else os.environ.get("LMCRITIC_MAX_OUTPUT_CHARS") or MAX_OUTPUT_CHARS
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise LmcriticError(f"LMCRITIC_MAX_OUTPUT_CHARS must be a whole number, got {raw!r}") from None
    if limit < 100:
        raise LmcriticError(f"the output size cap must be at least 100 characters, got {limit}")
    return limit


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a marker saying how long it was."""
    if len(text) <= limit:
        return text
    marker = f" …[lmcritic: truncated, {len(text):,} characters in all]"
    return text[: max(0, limit - len(marker))] + marker


def cap_strings(obj: object, limit: int) -> Any:
    """Every string inside ``obj`` (dicts, lists, dataclasses) cut to ``limit``; ``obj`` itself when none is
    longer, so callers can tell nothing changed."""
    if isinstance(obj, str):
        return truncate(obj, limit)
    if isinstance(obj, dict):
        out = {k: cap_strings(v, limit) for k, v in obj.items()}
        return obj if all(out[k] is v for k, v in obj.items()) else out
    if isinstance(obj, (list, tuple)):
        items = [cap_strings(v, limit) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj)) else type(obj)(items)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: cap_strings(getattr(obj, f.name), limit) for f in dataclasses.fields(obj)}
        changed = {k: v for k, v in changes.items() if v is not getattr(obj, k)}
        return dataclasses.replace(obj, **changed) if changed else obj
    return obj


def _apply(conn: sqlite3.Connection, step: Migration) -> None:
    if isinstance(step, str):
        for statement in step.split(";"):  # executescript would COMMIT our transaction
            if statement.strip():
                conn.execute(statement)
    else:
        step(conn)


def dumps(obj: object) -> str:
    """JSON for storage: ASCII-only, so lone surrogates in model text are escaped, never a crash; NaN and
    infinities are kept (Python's JSON reads them back) so a stored score is the score that was made."""
    return json.dumps(_plain(obj), ensure_ascii=True, separators=(",", ":"), default=_fallback)


def _plain(obj: object) -> Any:
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


def _fallback(obj: object) -> Any:
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
