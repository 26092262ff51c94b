"""Turning a row into the prompt, the choices and the gold answer, with errors that name file and line.

Templates run in Jinja's immutable sandbox with ``StrictUndefined``: a task file cannot call into Python
or mutate data, and a misspelt column is an error instead of an empty string.
"""
from __future__ import annotations

import functools
import json
from typing import Any

from lmcritic.errors import ConfigError, DataError
from lmcritic.tasks.data import Row
from lmcritic.tasks.spec import TaskSpec


@functools.lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                         keep_trailing_newline=True)


@functools.lru_cache(maxsize=256)
def _compile(template: str) -> Any:
    import jinja2

    try:
        return _env().from_string(template)
    except jinja2.TemplateSyntaxError as err:
        raise ConfigError(f"template {template[:60]!r}: {err.message} (line {err.lineno})") from None


def value(expr: str | None, row: Row, what: str) -> Any:
    """The field-or-template rule: a column name gives the raw value, anything else is rendered."""
    if expr is None:
        raise DataError(f"{row.where}: the task names no {what}", f"add '{what}:' to the task spec")
    if expr in row.fields:
        return row.fields[expr]
    return render(expr, row, what)


def render(template: str, row: Row, what: str) -> str:
    import jinja2

    try:
        return _compile(template).render(**row.fields)
    except jinja2.UndefinedError as err:
        raise DataError(f"{row.where}: {what} template: {err.message}",
                        f"columns of this row: {', '.join(sorted(row.fields))}") from None
    except jinja2.exceptions.SecurityError as err:
        raise ConfigError(f"{what} template: not allowed in the sandbox: {err}") from None
    except Exception as err:  # a filter on the wrong type etc.: name the row
        raise DataError(f"{row.where}: {what} template failed: {type(err).__name__}: {err}") from None


def text(expr: str, row: Row, what: str) -> str:
    v = value(expr, row, what)
    if not isinstance(v, (str, int, float)):
        raise DataError(f"{row.where}: {what} is {type(v).__name__}, expected text")
    return str(v)


def choices(task: TaskSpec, row: Row) -> list[str]:
    """Answer options: per-choice templates (a list), a list column, or a template rendering a JSON list."""
    spec = task.choices
    if isinstance(spec, tuple):
        out = [text(c, row, f"choice {i}") for i, c in enumerate(spec)]
    else:
        v = value(spec, row, "choices")
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                raise DataError(f"{row.where}: choices rendered to {v[:60]!r}, not a JSON list",
                                "name a list column, or give choices as a YAML list of templates") from None
        if not isinstance(v, list):
            raise DataError(f"{row.where}: choices is {type(v).__name__}, expected a list")
        out = [str(c) for c in v]
    if len(out) < 2:
        raise DataError(f"{row.where}: {len(out)} choice(s)", "a multiple-choice row needs at least two")
    return out


def gold_index(task: TaskSpec, row: Row, options: list[str]) -> int:
    """The gold answer as an index into ``options``: an int index, or the text of one option."""
    v = value(task.target, row, "target")
    if isinstance(v, str) and v in options:
        return options.index(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(options):
        return v
    raise DataError(f"{row.where}: target {v!r} is neither one of the {len(options)} options nor an index into them",
                    f"options: {options}")


def references(task: TaskSpec, row: Row) -> list[str]:
    """Reference answers for ``generate``: one string, or a list (the best match counts, as SQuAD)."""
    v = value(task.target, row, "target")
    refs = [str(x) for x in v] if isinstance(v, list) else [str(v)]
    if not refs or not all(r.strip() for r in refs):
        raise DataError(f"{row.where}: empty reference answer", "every row needs a non-empty target")
    return refs


def context(task: TaskSpec, row: Row, shots: list[Row], shot_target: Any) -> str:
    """description + each shot (prompt, delimiter, its gold) + separator + this row's prompt, as lm-eval."""
    sep = task.fewshot.separator
    head = render(task.description, row, "description") if task.description else ""
    demos = "".join(text(task.prompt, s, "prompt") + task.target_delimiter + shot_target(s) + sep for s in shots)
    return head + demos + text(task.prompt, row, "prompt")


def input_text(task: TaskSpec, row: Row) -> str | None:
    """What a classifier head reads: ``text`` (a column or template) when set, else the one column the prompt
    template uses (the raw sentence, never the LM prompt around it); None when the prompt uses several."""
    if task.text:
        return text(task.text, row, "text")
    used = prompt_columns(task.prompt) & set(row.fields)
    return text(next(iter(used)), row, "text") if len(used) == 1 else None


@functools.lru_cache(maxsize=64)
def prompt_columns(template: str) -> frozenset[str]:
    """Columns a prompt template refers to (the template itself when it is a bare column name)."""
    from jinja2 import meta

    return frozenset(meta.find_undeclared_variables(_env().parse(template))) | {template}
