"""Streaming readers for production logs: JSONL (optionally gzipped), CSV/TSV and Parquet.

Each reader starts at a resume point (a byte offset for text files, a row index for Parquet) and yields one
:class:`RawRow` per line/record with the resume point *after* it, so ingestion can store its progress with each
batch and an appended file is read from where the last run stopped. Memory is bounded by one batch: a line
longer than ``max_line_bytes`` is skipped in pieces (and reported), never held whole. A last line without its
newline may still be being written: it is yielded with ``complete=False`` so the caller can hold it back.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator, cast

from lmcritic.errors import ConfigError, DataError
from lmcritic.monitor.schema import RowError

DEFAULT_MAX_LINE_BYTES = 1 << 20
HEAD_BYTES = 4096
FORMATS = ("jsonl", "csv", "tsv", "parquet")


@dataclass(frozen=True)
class RawRow:
    """One row as read: its line (or row) number, the resume point after it, and the parsed object or why
    it could not be parsed. ``complete`` is False for a final line with no newline yet."""

    line: int
    end: int
    row: dict[str, Any] | None = None
    error: RowError | None = None
    excerpt: str = ""
    complete: bool = True


@dataclass(frozen=True)
class Resume:
    """Where to start: byte offset (row index for Parquet), the number of lines before it, a CSV header."""

    offset: int = 0
    line: int = 0
    header: tuple[str, ...] | None = None


def detect_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl"), (".csv", "csv"),
                        (".tsv", "tsv"), (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(suffix):
            return fmt
    raise ConfigError(f"{path}: unknown log format", "use .jsonl/.ndjson, .csv, .tsv or .parquet (optionally .gz)")


def head_hash(path: Path, n: int | None = None) -> str:
    """``"<n>:<hash>"`` of the file's first ``n`` bytes (default: up to 4 KiB): a rotated or rewritten file gets
    another, so it is read from the start; an appended one keeps it (the same ``n`` bytes are hashed again)."""
    with _open(path) as f:
        head = f.read(HEAD_BYTES if n is None else n)
    return f"{len(head)}:{hashlib.sha256(head).hexdigest()[:32]}"


def same_head(path: Path, stored: str) -> bool:
    n, _, _ = stored.partition(":")
    return n.isdigit() and head_hash(path, int(n)) == stored


def read(path: Path, fmt: str, start: Resume, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[RawRow]:
    if fmt == "parquet":
        yield from _parquet(path, start)
    elif fmt == "jsonl":
        yield from _jsonl(path, start, max_line_bytes)
    else:
        yield from _delimited(path, start, "\t" if fmt == "tsv" else ",", max_line_bytes)


def csv_header(path: Path, fmt: str) -> tuple[str, ...]:
    """The header of a CSV/TSV log (first record), read once and remembered with the file's progress."""
    with _open(path) as f:
        first = f.readline(DEFAULT_MAX_LINE_BYTES)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}:1: the header is not valid UTF-8", "re-encode the file as UTF-8") from None
    names = next(csv.reader([text.rstrip("\r\n")], delimiter="\t" if fmt == "tsv" else ","), [])
    if not names or not all(n.strip() for n in names):
        raise DataError(f"{path}:1: empty or blank column name in the header", "the first line must name the columns")
    return tuple(n.strip() for n in names)


# -- JSONL ---------------------------------------------------------------------------------------------
def _jsonl(path: Path, start: Resume, limit: int) -> Iterator[RawRow]:
    with _open(path) as f:
        f.seek(start.offset)
        line = start.line
        for data, end, complete, too_long in _lines(f, limit):
            line += 1
            if too_long:
                yield RawRow(line, end, error=RowError("line_too_long", f"line of over {limit:,} bytes skipped "
                                                       "(raise --max-line-bytes to read it)"), excerpt=_excerpt(data))
            elif data.strip():
                yield _parse_json(line, end, data, complete)


def _lines(f: IO[bytes], limit: int) -> Iterator[tuple[bytes, int, bool, bool]]:
    """(bytes, offset after, ends with a newline, over the limit); an over-long line is skipped in pieces."""
    while True:
        data = f.readline(limit + 1)
        if not data:
            return
        if len(data) > limit and not data.endswith(b"\n"):
            head = data[:200]
            while data and not data.endswith(b"\n"):
                data = f.readline(limit + 1)
            yield head, f.tell(), True, True
            continue
        yield data, f.tell(), data.endswith(b"\n"), False


def _parse_json(line: int, end: int, data: bytes, complete: bool) -> RawRow:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return RawRow(line, end, error=RowError("invalid_utf8", f"not valid UTF-8 at byte {err.start} of the line"),
                      excerpt=_excerpt(data), complete=complete)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        truncated = err.pos >= len(text.rstrip()) or "Unterminated" in err.msg
        kind = "truncated_json" if truncated else "invalid_json"
        why = err.msg.removesuffix(" at")  # json's "Invalid control character at" + our "at column N"
        return RawRow(line, end, error=RowError(kind, f"{'truncated' if truncated else 'invalid'} JSON: {why} "
                                                      f"at column {err.colno}"), excerpt=_excerpt(data),
                      complete=complete)
    if not isinstance(obj, dict):
        return RawRow(line, end, error=RowError("not_an_object", f"a JSON {type(obj).__name__}, not an object"),
                      excerpt=_excerpt(data), complete=complete)
    return RawRow(line, end, row=obj, complete=complete)


# -- CSV / TSV -----------------------------------------------------------------------------------------
def _delimited(path: Path, start: Resume, delimiter: str, limit: int) -> Iterator[RawRow]:
    header = start.header or csv_header(path, "tsv" if delimiter == "\t" else "csv")
    with _open(path) as f:
        offset, line = start.offset, start.line
        if offset == 0:
            f.readline(DEFAULT_MAX_LINE_BYTES)
            offset, line = f.tell(), 1
        f.seek(offset)
        yield from _records(f, header, delimiter, line, limit)


def _records(f: IO[bytes], header: tuple[str, ...], delimiter: str, line: int, limit: int) -> Iterator[RawRow]:
    """CSV records, which may span lines inside quotes: a record is complete when its quotes balance."""
    parts: list[bytes] = []
    first = line + 1
    for data, end, complete, too_long in _lines(f, limit):
        line += 1
        if too_long or sum(len(p) for p in parts) + len(data) > limit:
            parts = []
            yield RawRow(first, end, error=RowError("line_too_long", f"record of over {limit:,} bytes skipped"),
                         excerpt=_excerpt(data))
            first = line + 1
            continue
        parts.append(data)
        blob = b"".join(parts)
        if blob.count(b'"') % 2 and complete:
            continue  # a quoted field goes on on the next line
        parts = []
        if blob.strip():
            yield _csv_row(first, end, blob, header, delimiter, complete)
        first = line + 1
    if parts:
        blob = b"".join(parts)
        yield _csv_row(first, f.tell(), blob, header, delimiter, False)


def _csv_row(line: int, end: int, blob: bytes, header: tuple[str, ...], delimiter: str, complete: bool) -> RawRow:
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as err:
        return RawRow(line, end, error=RowError("invalid_utf8", f"not valid UTF-8 at byte {err.start} of the record"),
                      excerpt=_excerpt(blob), complete=complete)
    try:
        fields = next(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True))
    except (csv.Error, StopIteration) as err:
        return RawRow(line, end, error=RowError("bad_csv_row", f"unparseable CSV record: {err}"),
                      excerpt=_excerpt(blob), complete=complete)
    if len(fields) != len(header):
        return RawRow(line, end, error=RowError("bad_csv_row", f"{len(fields)} fields, the header has {len(header)}"),
                      excerpt=_excerpt(blob), complete=complete)
    return RawRow(line, end, row=_unflatten(dict(zip(header, fields))), complete=complete)


def _unflatten(row: dict[str, str]) -> dict[str, Any]:
    """CSV cells are text: empty cells are absent values, and a JSON object/array cell (metadata, messages,
    feedback) is parsed so it means what it would in a JSONL log."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value == "":
            out[key] = None
        elif value[:1] in "[{":
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                out[key] = value
        else:
            out[key] = value
    return out


# -- Parquet -------------------------------------------------------------------------------------------
def _parquet(path: Path, start: Resume, batch_size: int = 2048) -> Iterator[RawRow]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("reading Parquet logs needs pyarrow", "pip install 'lmcritic[monitor]'") from None
    try:
        pf = pq.ParquetFile(str(path))
    except Exception as err:  # pyarrow's ArrowInvalid & co.
        raise DataError(f"{path}: not a readable Parquet file ({err})", "check the file") from None
    index = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        if index + batch.num_rows <= start.offset:
            index += batch.num_rows
            continue
        for row in batch.to_pylist():
            index += 1
            if index > start.offset:
                yield RawRow(index, index, row=row)


# -- helpers -------------------------------------------------------------------------------------------
def _open(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        # seek() works on the uncompressed stream (by reading up to it)
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _excerpt(data: bytes, n: int = 160) -> str:
    return data[:n].decode("utf-8", "replace").rstrip("\r\n")
