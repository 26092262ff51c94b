"""``lmcritic monitor ingest``: production logs into the store, incrementally, idempotently, losing nothing.

Every line read ends up as exactly one of: a stored request, a duplicate of a stored one (same content hash,
counted and recorded with ``file:line``), a row error of a named kind (recorded with ``file:line`` and an
excerpt), or — only for a last line whose newline has not been written yet — held back for the next run.
Each file's read offset is committed with the batch it covers, so a re-run (or a resumed, killed run) starts
where the last one stopped; a file whose head changed (rotated, rewritten) is read again from the start and
its already-stored rows count as duplicates.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from lmcritic.errors import ConfigError
from lmcritic.monitor import readers
from lmcritic.monitor.readers import RawRow, Resume
from lmcritic.monitor.schema import LogRecord, RowError, normalize
from lmcritic.store.monitor import MonitorStore, RowFailure, SourceState

BATCH = 1000


@dataclass(frozen=True)
class FileReport:
    """What one file gave this run: ``read`` = ``stored`` + ``duplicates`` + ``sum(errors)`` (+ ``held``)."""

    path: str
    format: str
    read: int
    stored: int
    duplicates: int
    errors: dict[str, int]
    held: int = 0  # a final line without its newline, left for the next run
    restarted: bool = False  # the file's head changed since the last run: read again from the start
    examples: tuple[str, ...] = ()  # "file:line: kind: message" for the first few errors

    @property
    def accounted(self) -> bool:
        return self.read == self.stored + self.duplicates + sum(self.errors.values()) + self.held


@dataclass(frozen=True)
class IngestReport:
    files: tuple[FileReport, ...]

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def errors(self) -> dict[str, int]:
        out: Counter = Counter()
        for f in self.files:
            out.update(f.errors)
        return dict(sorted(out.items()))

    def lines(self) -> list[str]:
        """A human summary: one line per file, then the first errors with ``file:line``."""
        out = []
        for f in self.files:
            errs = ", ".join(f"{k} {v}" for k, v in sorted(f.errors.items())) or "none"
            extra = (f", {f.held} incomplete last line held back" if f.held else "") + \
                (" (file changed since last read: re-read from the start)" if f.restarted else "")
            out.append(f"{f.path}: read {f.read}, stored {f.stored}, duplicates {f.duplicates}, errors {errs}{extra}")
            out += [f"  {e}" for e in f.examples]
        return out


@dataclass
class _Batch:
    records: list[tuple[LogRecord, int]] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)


def ingest(store: MonitorStore, paths: Iterable[str | Path], mapping: Mapping[str, str] | None = None,
           max_line_bytes: int = readers.DEFAULT_MAX_LINE_BYTES, final: bool = False,
           progress: Callable[[int], None] | None = None) -> IngestReport:
    """Read every file from where the last run stopped. ``final``: a last line without a newline is read as
    it is (a truncated one is then an error) instead of being held back for the writer to finish."""
    files = [Path(p).expanduser() for p in paths]
    for p in files:
        if not p.is_file():
            raise ConfigError(f"log file {str(p)!r} not found", "check the path")
    return IngestReport(tuple(_ingest_file(store, p, mapping or {}, max_line_bytes, final, progress) for p in files))


def _ingest_file(store: MonitorStore, path: Path, mapping: Mapping[str, str], limit: int, final: bool,
                 progress: Callable[[int], None] | None) -> FileReport:
    fmt = readers.detect_format(path)
    key = str(path.resolve())
    state, restarted = _start_state(store, key, path, fmt)
    counts: Counter = Counter()
    examples: list[str] = []
    batch = _Batch()
    for raw in readers.read(path, fmt, Resume(state.offset, state.line, state.header), limit):
        if not raw.complete and not final and raw.error is not None:
            counts["held"] += 1
            break  # the writer may still be finishing this line: read it next time
        counts["read"] += 1
        _take(raw, path, mapping, batch, counts)
        state = replace(state, offset=raw.end, line=raw.line)
        if len(batch.records) + len(batch.failures) >= BATCH:
            _flush(store, state, batch, counts, examples, key)
            if progress:
                progress(BATCH)
            batch = _Batch()
    _flush(store, state, batch, counts, examples, key)
    errors = {k: v for k, v in counts.items() if k not in ("read", "stored", "held", "duplicate")}
    return FileReport(key, fmt, counts["read"], counts["stored"], counts["duplicate"], errors, counts["held"],
                      restarted, tuple(examples))


def _start_state(store: MonitorStore, key: str, path: Path, fmt: str) -> tuple[SourceState, bool]:
    old = store.source(key)
    header = readers.csv_header(path, fmt) if fmt in ("csv", "tsv") else None
    if old is not None and old.format == fmt and old.offset <= _size(path, fmt) and \
            readers.same_head(path, old.head_hash):
        return replace(old, header=header, head_hash=readers.head_hash(path)), False
    return SourceState(key, fmt, 0, 0, readers.head_hash(path), header), old is not None


def _size(path: Path, fmt: str) -> int:
    if fmt == "parquet" or path.name.lower().endswith(".gz"):
        return 1 << 62  # row index / uncompressed offset: a shrunk file changes its head hash anyway
    return path.stat().st_size


def _take(raw: RawRow, path: Path, mapping: Mapping[str, str], batch: _Batch, counts: Counter) -> None:
    if raw.error is None:
        try:
            batch.records.append((normalize(raw.row or {}, mapping), raw.line))
            return
        except RowError as err:
            raw = replace(raw, error=err, excerpt=_excerpt(raw.row))
    failure = raw.error
    assert failure is not None
    counts[failure.kind] += 1
    batch.failures.append(RowFailure(str(path.resolve()), raw.line, failure.kind, failure.message,
                                     raw.excerpt[:200]))


def _flush(store: MonitorStore, state: SourceState, batch: _Batch, counts: Counter, examples: list[str],
           key: str) -> None:
    dupes = store.commit_batch(state, batch.records, batch.failures)
    if dupes:
        dup_failures = [RowFailure(key, line, "duplicate", f"same content as stored request #{rid}", None)
                        for line, rid in dupes]
        store.add_failures(dup_failures)
        batch.failures.extend(dup_failures)
    counts["duplicate"] += len(dupes)
    counts["stored"] += len(batch.records) - len(dupes)
    for f in batch.failures:
        if len(examples) < 5 and f.kind != "duplicate":
            examples.append(f"{f.source}:{f.line}: {f.kind}: {f.message}")


def _excerpt(row: object) -> str:
    import json

    return json.dumps(row, ensure_ascii=False, default=str)[:200] if row is not None else ""


__all__: Sequence[str] = ("FileReport", "IngestReport", "ingest")
