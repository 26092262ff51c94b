"""One production request as the monitor stores it, and how a raw log row becomes one.

A log row is a JSON object (a JSONL line, a CSV record, a Parquet row). Its fields are found by canonical name
(``prompt``, ``response``, ``timestamp``, ...), after ``--map`` renames (``prompt=question``; dotted sources
reach into nested objects: ``prompt=request.input``). OpenAI chat-format rows work as they are: ``messages``
gives the prompt (the last user turn) and, when the transcript ends with the assistant, the response; a
``response`` holding an OpenAI reply object gives its first choice's text. Anything else in the row is kept
as metadata. Every way a row can be wrong raises :class:`RowError` with a named ``kind``, so ingestion can
count it and report ``file:line`` instead of dropping the row.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from lmcritic._serde import stable_hash
from lmcritic.errors import ConfigError, did_you_mean

FIELDS = ("prompt", "response", "timestamp", "messages", "model", "version", "conversation_id", "request_id",
          "feedback", "feedback_score", "feedback_comment", "expected", "metadata")
REQUIRED = ("prompt", "response", "timestamp")
ERROR_KINDS = ("truncated_json", "invalid_json", "not_an_object", "invalid_utf8", "line_too_long",
               "missing_field", "wrong_type", "bad_timestamp", "bad_csv_row", "duplicate")
THUMBS = {"up": 1, "down": -1, "+1": 1, "-1": -1, "positive": 1, "negative": -1, "good": 1, "bad": -1,
          "like": 1, "dislike": -1, "thumbs_up": 1, "thumbs_down": -1, "true": 1, "false": -1, "1": 1, "0": -1}
MAX_TEXT_CHARS = 200_000  # a prompt or response longer than this is a wrong_type row, not a memory hog


class RowError(Exception):
    """A log row that cannot be ingested: ``kind`` is one of :data:`ERROR_KINDS`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


@dataclass(frozen=True)
class LogRecord:
    """A normalized production request. ``timestamp`` is Unix seconds (UTC); feedback is optional:
    ``thumb`` +1/−1, ``score`` as logged, ``comment`` free text."""

    timestamp: float
    prompt: str
    response: str | None
    model: str | None = None
    version: str | None = None
    conversation_id: str | None = None
    request_id: str | None = None
    thumb: int | None = None
    feedback_score: float | None = None
    feedback_comment: str | None = None
    expected: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        """Content hash: the same request logged twice (or a file ingested twice) is stored once."""
        return stable_hash("monitor-row", self.timestamp, self.prompt, self.response, self.model, self.version,
                           self.conversation_id, self.request_id, self.thumb, self.feedback_score,
                           self.feedback_comment, self.expected, self.metadata)


def parse_map(items: list[str] | tuple[str, ...] | None) -> dict[str, str]:
    """``["prompt=question", "timestamp=meta.ts"]`` → ``{"prompt": "question", ...}`` (canonical → source)."""
    out: dict[str, str] = {}
    for item in items or ():
        name, sep, source = item.partition("=")
        name, source = name.strip(), source.strip()
        if not sep or not name or not source:
            raise ConfigError(f"bad --map {item!r}", "use CANONICAL=SOURCE, e.g. --map prompt=question")
        if name not in FIELDS:
            raise ConfigError(f"--map {item!r}: unknown field {name!r}", did_you_mean(name, FIELDS))
        out[name] = source
    return out


def normalize(raw: Mapping[str, Any], mapping: Mapping[str, str] | None = None) -> LogRecord:
    """A :class:`LogRecord` from one raw row, or :class:`RowError` naming what is wrong."""
    row, used = _pick(raw, mapping or {})
    prompt, response = _conversation(row)
    for name, value in (("prompt", prompt), ("response", response), ("timestamp", row.get("timestamp"))):
        if value is _MISSING:
            raise RowError("missing_field", f"no {name!r} field" + _hint(name, mapping))
    if not isinstance(prompt, str):
        raise RowError("wrong_type", f"prompt must be text, got {_type(prompt)}")
    if response is not None and not isinstance(response, str):
        raise RowError("wrong_type", f"response must be text or null, got {_type(response)}")
    for name, text in (("prompt", prompt), ("response", response or "")):
        if len(text) > MAX_TEXT_CHARS:
            raise RowError("wrong_type", f"{name} of {len(text):,} characters is over {MAX_TEXT_CHARS:,}")
    thumb, score, comment = _feedback(row)
    return LogRecord(timestamp=parse_timestamp(row.get("timestamp")), prompt=prompt, response=response,
                     model=_opt_str(row, "model"), version=_opt_str(row, "version"),
                     conversation_id=_opt_str(row, "conversation_id"), request_id=_opt_str(row, "request_id"),
                     thumb=thumb, feedback_score=score, feedback_comment=comment,
                     expected=_opt_text(row, "expected"), metadata=_metadata(raw, row, used))


_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "<missing>"})()


def _pick(raw: Mapping[str, Any], mapping: Mapping[str, str]) -> tuple[dict[str, Any], set[str]]:
    """Canonical field → value (``_MISSING`` when absent) and the top-level keys that were used."""
    row: dict[str, Any] = {}
    used: set[str] = set()
    for name in FIELDS:
        source = mapping.get(name, name)
        value = _dig(raw, source)
        if value is _MISSING and name == "conversation_id":
            value = _dig(raw, "conversation")
            source = "conversation"
        row[name] = value
        if value is not _MISSING:
            used.add(source.split(".", 1)[0])
    return row, used


def _dig(raw: Mapping[str, Any], path: str) -> Any:
    if path in raw:
        return raw[path]
    value: Any = raw
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _conversation(row: dict[str, Any]) -> tuple[Any, Any]:
    """(prompt, response): plain fields first, else from OpenAI chat messages / a reply object."""
    prompt, response = row["prompt"], row["response"]
    messages = row["messages"]
    if messages is not _MISSING:
        p, r = _from_messages(messages)
        prompt = p if prompt is _MISSING else prompt
        response = r if response is _MISSING and r is not _MISSING else response
    if isinstance(response, Mapping):
        response = _reply_text(response)
    return prompt, response


def _from_messages(messages: object) -> tuple[Any, Any]:
    if not isinstance(messages, list) or not messages:
        raise RowError("wrong_type", f"messages must be a non-empty list of {{role, content}}, got {_type(messages)}")
    turns = [(_role(m, i), _content(m, i)) for i, m in enumerate(messages)]
    response: Any = _MISSING
    if turns[-1][0] == "assistant":
        response = turns.pop()[1]
    users = [c for r, c in turns if r == "user"]
    if not users:
        raise RowError("missing_field", "messages have no user turn to monitor")
    return users[-1], response


def _role(m: object, i: int) -> str:
    if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
        raise RowError("wrong_type", f"messages[{i}] needs a string 'role'")
    return m["role"]


def _content(m: Mapping[str, Any], i: int) -> str:
    content = m.get("content")
    if isinstance(content, list):  # content parts: the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    if not isinstance(content, str):
        raise RowError("wrong_type", f"messages[{i}].content must be text, got {_type(content)}")
    return content


def _reply_text(reply: Mapping[str, Any]) -> Any:
    choices = reply.get("choices")
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else None
    if first is None:
        raise RowError("wrong_type", "response object has no choices[0]")
    msg = first.get("message")
    text = msg.get("content") if isinstance(msg, Mapping) else first.get("text")
    if text is not None and not isinstance(text, str):
        raise RowError("wrong_type", f"response choices[0] content must be text, got {_type(text)}")
    return text


def parse_timestamp(value: object) -> float:
    """Unix seconds from epoch seconds/milliseconds (numbers or digit strings) or ISO 8601 (naive = UTC)."""
    if value is None or isinstance(value, bool):
        raise RowError("wrong_type", f"timestamp must be a number or an ISO 8601 string, got {_type(value)}")
    if isinstance(value, (int, float)):
        return _epoch(float(value))
    if isinstance(value, dt.datetime):
        return _aware(value).timestamp()
    if not isinstance(value, str):
        raise RowError("wrong_type", f"timestamp must be a number or an ISO 8601 string, got {_type(value)}")
    text = value.strip()
    try:
        return _epoch(float(text))
    except ValueError:
        pass
    try:
        return _aware(dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" UTC", "+00:00"))).timestamp()
    except ValueError:
        raise RowError("bad_timestamp", f"timestamp {text[:40]!r} is neither epoch seconds nor ISO 8601") from None


def _epoch(x: float) -> float:
    if not math.isfinite(x) or x < 0:
        raise RowError("bad_timestamp", f"timestamp {x!r} is not a time")
    return x / 1000.0 if x > 1e11 else x  # > year 5138 in seconds: it was milliseconds


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _feedback(row: dict[str, Any]) -> tuple[int | None, float | None, str | None]:
    fb = row["feedback"]
    score, comment = row["feedback_score"], row["feedback_comment"]
    thumb = None
    if isinstance(fb, Mapping):
        score = fb.get("score", score) if score is _MISSING else score
        comment = fb.get("comment", comment) if comment is _MISSING else comment
        fb = fb.get("thumbs", fb.get("thumb", fb.get("rating", _MISSING)))
    if fb is not _MISSING and fb is not None and fb != "":
        thumb = _thumb(fb)
    return thumb, _opt_number(score, "feedback_score"), _opt_text_value(comment, "feedback_comment")


def _thumb(value: object) -> int:
    if isinstance(value, bool):
        return 1 if value else -1
    if isinstance(value, (int, float)) and value in (1, -1, 0):
        return 1 if value > 0 else -1
    if isinstance(value, str) and value.strip().lower() in THUMBS:
        return THUMBS[value.strip().lower()]
    raise RowError("wrong_type", f"feedback thumbs must be up/down, true/false or ±1, got {str(value)[:30]!r}")


def _opt_number(value: Any, name: str) -> float | None:
    if value is _MISSING or value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise RowError("wrong_type", f"{name} must be a number, got {value[:30]!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RowError("wrong_type", f"{name} must be a finite number, got {_type(value)}")
    return float(value)


def _opt_text(row: dict[str, Any], name: str) -> str | None:
    return _opt_text_value(row[name], name)


def _opt_text_value(value: object, name: str) -> str | None:
    if value is _MISSING or value is None:
        return None
    if not isinstance(value, str):
        raise RowError("wrong_type", f"{name} must be text, got {_type(value)}")
    return value


def _opt_str(row: dict[str, Any], name: str) -> str | None:
    value = row[name]
    if value is _MISSING or value is None or value == "":
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise RowError("wrong_type", f"{name} must be a string, got {_type(value)}")


def _metadata(raw: Mapping[str, Any], row: dict[str, Any], used: set[str]) -> dict[str, Any]:
    meta = row["metadata"]
    if meta is _MISSING or meta is None or meta == "":
        meta = {}
    if not isinstance(meta, Mapping):
        raise RowError("wrong_type", f"metadata must be an object, got {_type(meta)}")
    extra = {k: v for k, v in raw.items() if k not in used and k not in FIELDS and k != "conversation"}
    return {**{str(k): v for k, v in extra.items()}, **{str(k): v for k, v in meta.items()}}


def _type(value: object) -> str:
    return "null" if value is None else "missing" if value is _MISSING else type(value).__name__


def _hint(name: str, mapping: Mapping[str, str] | None) -> str:
    if mapping and name in mapping:
        return f" (mapped from {mapping[name]!r})"
    return f"; rename a column with --map {name}=COLUMN" if name != "timestamp" else "; use --map timestamp=COLUMN"
