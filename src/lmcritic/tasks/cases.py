"""From a task spec to probe cases: rows loaded, few-shot examples chosen, prompts rendered."""
from __future__ import annotations

from typing import Any, Callable

from lmcritic.errors import DataError
from lmcritic.probes.base import Case
from lmcritic.tasks import render
from lmcritic.tasks.data import Row, fewshot_rows, load_rows, subsample
from lmcritic.tasks.spec import TaskSpec


def build_cases(task: TaskSpec, n: int | None = None, seed: int = 0) -> list[Case]:
    """Every evaluated row as a :class:`Case` with a stable id ``<task>-<line>``. A row that cannot be made
    into a case is skipped and reported with its file and line (a ``data_quality`` finding); a bad few-shot
    example stays an error, since every prompt would carry it."""
    rows = load_rows(task)
    shots, rows = fewshot_rows(task, rows)
    make = _MAKERS[task.output_type]
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for row in subsample(rows, n, seed):
        try:
            case = make(task, row, shots)
        except DataError as err:
            if not err.message.startswith(f"{row.where}:"):
                raise
            _skip(row, err.message.removeprefix(f"{row.where}:").strip())
            continue
        if case.id in seen:
            _skip(row, f"line {row.line} appears twice in {row.source} (first {seen[case.id]}); "
                       "line_column must be unique per row")
            continue
        seen[case.id] = row.where
        cases.append(case)
    return cases


def _skip(row: Row, reason: str) -> None:
    from lmcritic.datasets import skip_row

    path, _, line = row.where.rpartition(":")
    skip_row(path, int(line) if line.isdigit() else row.line, reason)


def _tags(task: TaskSpec, row: Row, **extra: Any) -> dict[str, Any]:
    own = {}
    for col in task.tags:
        v = row.fields.get(col)
        if v is not None and not isinstance(v, (str, int, float, bool)):
            raise DataError(f"{row.where}: tag column {col!r} holds {type(v).__name__}", "tags must be scalars")
        own[col] = v
    return {**own, "source": row.source, "line": row.line, "task": task.name, "output_type": task.output_type,
            **extra}


def _case_id(task: TaskSpec, row: Row) -> str:
    return f"{task.name}-{row.line}"


def _multiple_choice(task: TaskSpec, row: Row, shots: list[Row]) -> Case:
    options = render.choices(task, row)
    gold = render.gold_index(task, row, options)

    def shot_target(s: Row) -> str:
        opts = render.choices(task, s)
        return opts[render.gold_index(task, s, opts)]

    prompt = render.context(task, row, shots, shot_target)
    conts = [task.target_delimiter + o for o in options]
    inp = {"prompt": prompt, "choices": options, "continuations": conts, "gold": gold}
    return Case(_case_id(task, row), inp, options[gold], _tags(task, row, expected=options[gold]))


def class_index(task: TaskSpec, row: Row) -> int:
    """The gold class: a ``labels`` key, or one of the label words."""
    v = render.value(task.target, row, "target")
    key = str(v).strip() if not isinstance(v, bool) else str(int(v))
    keys = list(task.labels)
    if key in keys:
        return keys.index(key)
    words = [w.strip() for w in task.labels.values()]
    if key in words:
        return words.index(key)
    raise DataError(f"{row.where}: target {v!r} is not a class of this task ({', '.join(keys)})",
                    "fix the row, or add the value to 'labels'")


def _classification(task: TaskSpec, row: Row, shots: list[Row]) -> Case:
    classes, words = list(task.labels), list(task.labels.values())
    gold = class_index(task, row)
    prompt = render.context(task, row, shots, lambda s: words[class_index(task, s)])
    inp = {"prompt": prompt, "text": render.input_text(task, row), "choices": classes,
           "continuations": [task.target_delimiter + w for w in words], "gold": gold}
    return Case(_case_id(task, row), inp, classes[gold], _tags(task, row, expected=classes[gold]))


def _generate(task: TaskSpec, row: Row, shots: list[Row]) -> Case:
    refs = render.references(task, row)
    prompt = render.context(task, row, shots, lambda s: render.references(task, s)[0])
    return Case(_case_id(task, row), {"prompt": prompt, "references": refs}, refs[0],
                _tags(task, row, expected=refs[0]))


def _perplexity(task: TaskSpec, row: Row, shots: list[Row]) -> Case:
    text = render.text(task.prompt, row, "prompt")
    if not text.strip():
        raise DataError(f"{row.where}: empty text", "perplexity rows need non-empty text")
    return Case(_case_id(task, row), {"text": text}, None, _tags(task, row))


_MAKERS: dict[str, Callable[[TaskSpec, Row, list[Row]], Case]] = {
    "multiple_choice": _multiple_choice, "classification": _classification,
    "generate": _generate, "perplexity": _perplexity,
}
