"""Reading task data from local files, loudly: a malformed row is an error naming file and line."""
from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Sequence

from lmcritic.errors import DataError


def packaged(name: str) -> Path:
    """Path of a data file shipped in ``lmcritic/data``."""
    return Path(str(resources.files("lmcritic").joinpath("data", name)))


def read_rows(path: str | Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, row)`` from a .tsv/.csv (with header) or .jsonl file.

    Every row must have the ``required`` columns, non-empty; otherwise :class:`DataError` names the
    file and line and what is missing, instead of silently dropping the row.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file {str(p)!r} not found", "check the path in the task or probe config")
    reader = _read_jsonl if p.suffix.lower() in (".jsonl", ".ndjson") else _read_delimited
    for line, row in reader(p):
        missing = [c for c in required if row.get(c) in (None, "")]
        if missing:
            raise DataError(f"{p}:{line}: row lacks {', '.join(missing)}", f"each row needs {', '.join(required)}")
        yield line, row


def _read_delimited(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    with p.open(encoding="utf-8", errors="strict", newline="") as f:
        try:
            rows = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
            header = next(rows, None)
            if not header:
                raise DataError(f"{p}: empty file", "the first line must be a header naming the columns")
            for row in rows:
                line = rows.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{p}:{line}: {len(row)} fields, expected {len(header)} ({', '.join(header)})")
                yield line, dict(zip(header, row))
        except UnicodeDecodeError as err:
            raise DataError(f"{p}: not valid UTF-8 at byte {err.start}", "re-encode the file as UTF-8") from None


def _read_jsonl(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with p.open(encoding="utf-8") as f:
        for line, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DataError(f"{p}:{line}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{p}:{line}: expected a JSON object, got {type(row).__name__}")
            yield line, row
