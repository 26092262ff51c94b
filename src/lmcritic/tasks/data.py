"""Rows for a task: local .jsonl/.csv/.tsv through :func:`lmcritic.datasets.read_rows` (malformed rows are
errors naming file and line) or a Hugging Face dataset through ``datasets.load_dataset`` (imported lazily;
``pip install 'lmcritic[tasks]'``). Each row keeps where it came from, so records can be traced back."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

from lmcritic.errors import ConfigError, DataError
from lmcritic.tasks.spec import DataSource, FewShot, TaskSpec


@dataclass(frozen=True)
class Row:
    """One data row: ``line`` is the file line (local) or the 0-based row index (hf)."""

    source: str
    line: int
    fields: dict[str, Any]
    origin: str = ""  # "file:line" where the row physically is (for error messages)

    @property
    def where(self) -> str:
        return self.origin or f"{self.source}:{self.line}"


def load_rows(task: TaskSpec, data: DataSource | None = None) -> list[Row]:
    """All rows of ``data`` (default: the task's own)."""
    data = data or task.data
    rows = _local(task, data) if data.path is not None else _hf(data)
    if not rows:
        raise DataError(f"{data.describe()}: no rows", "the task data must hold at least one row")
    return [_relined(r, data.line_column) for r in rows] if data.line_column else rows


def _local(task: TaskSpec, data: DataSource) -> list[Row]:
    from lmcritic.datasets import read_rows

    p = task.resolve_path(str(data.path))
    return [Row(data.describe(), line, row, f"{p}:{line}") for line, row in read_rows(p, required=())]


def _relined(row: Row, column: str) -> Row:
    raw = row.fields.get(column)
    try:
        return Row(row.source, int(str(raw).strip()), row.fields, row.where)
    except ValueError:
        raise DataError(f"{row.where}: line_column {column!r} holds {raw!r}, not a line number") from None


def _hf(data: DataSource) -> list[Row]:
    try:
        import datasets
    except ImportError:
        raise ConfigError(f"data: hf {data.hf!r} needs the 'datasets' package",
                          "pip install 'lmcritic[tasks]', or export the split to .jsonl and use data: {path: ...}"
                          ) from None
    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # progress is the runner's job
    try:
        ds = datasets.load_dataset(data.hf, data.name, split=data.split, revision=data.revision, **data.hf_kwargs)
    except Exception as err:  # offline hub, unknown name/split: one line naming the fix
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise DataError(f"cannot load hf dataset {data.describe()}: {first}",
                        "check the name and split; offline, export it to .jsonl and use data: {path: ...}") from None
    finally:
        if shown:
            datasets.enable_progress_bars()
    return [Row(data.describe(), i, dict(r)) for i, r in enumerate(ds)]


def fewshot_rows(task: TaskSpec, eval_rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """(shots, rows left to evaluate). Shots from the task's own data are removed from the evaluated rows."""
    fs = task.fewshot
    if fs.n == 0:
        return [], eval_rows
    own = fs.path is None and fs.split is None
    pool = eval_rows if own else load_rows(task, _fewshot_source(task, fs))
    if len(pool) < fs.n + (1 if own else 0):
        raise ConfigError(f"fewshot.n = {fs.n} but {'the task data' if own else 'the few-shot source'} has "
                          f"{len(pool)} rows", "lower fewshot.n or give a larger fewshot path/split")
    picked = list(range(fs.n)) if fs.sampler == "first_n" else random.Random(fs.seed).sample(range(len(pool)), fs.n)
    shots = [pool[i] for i in picked]
    if not own:
        return shots, eval_rows
    taken = set(picked)
    return shots, [r for i, r in enumerate(eval_rows) if i not in taken]


def _fewshot_source(task: TaskSpec, fs: FewShot) -> DataSource:
    if fs.path is not None:
        return DataSource(path=fs.path)
    if task.data.hf is None:
        raise ConfigError("fewshot.split needs an hf dataset", "for local data give fewshot.path instead")
    return DataSource(hf=task.data.hf, name=task.data.name, split=fs.split, revision=task.data.revision,
                      hf_kwargs=task.data.hf_kwargs)


def subsample(rows: Sequence[Row], n: int | None, seed: int) -> list[Row]:
    """``n`` rows drawn with ``seed``, kept in file order (all rows when n is None or larger)."""
    if n is None or n >= len(rows):
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]
