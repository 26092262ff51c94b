"""Config values checked (and command-line text converted) against the annotations of the dataclass or
function that will receive them, before any model is loaded.

A config reaches a probe, stage or backend from YAML, JSON or ``--set KEY=VALUE`` text. Checking each value
against its declared type turns ``n: 1.5``, ``n: true`` or ``max_new_tokens: abc`` into one line naming the
option at spec-load time, instead of a crash after every model call has been paid for. Text is converted
where the annotation asks for something else (``"8"`` → 8, ``"yes"`` → True, ``"[a, b]"`` → a list), so
``--set`` and ``--option`` need no quoting rules of their own.
"""
from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import inspect
import re
import types
import typing
from typing import Any, Callable, Iterable, Mapping

from lmcritic.errors import ConfigError, did_you_mean

_INT = re.compile(r"[+-]?\d+")
_NULLS = {"null", "~"}  # YAML's spellings of null (case-insensitive)
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_SEQUENCES = (list, tuple, set, frozenset, cabc.Sequence, cabc.Iterable, cabc.Collection, cabc.Set)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)
# A type annotation as ``typing.get_type_hints`` resolves it: a class, a generic alias (``list[int]``), a union,
# a ``Literal``, ``Any`` itself, a TypeVar or an unresolved string. Only inspected via typing/isinstance.
Annotation = object


class _Mismatch(Exception):
    """A value does not fit a type; the message says what was expected."""


def build_dataclass(cls: type, values: Mapping[str, Any], owner: str) -> Any:
    """``cls(**values)`` after rejecting unknown keys (with a did-you-mean) and checking every value's type."""
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    check_options(values, names, owner)
    hints = _hints(cls)
    typed = {k: check_value(v, hints.get(k, Any), f"{owner}: {k}") for k, v in values.items()}
    try:
        return cls(**typed)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{owner}: bad option: {err}") from None


def check_kwargs(fn: Callable[..., Any], values: Mapping[str, Any], owner: str,
                 skip: Iterable[str] = ("self", "ctx")) -> dict[str, Any]:
    """``values`` checked against ``fn``'s keyword parameters (unknown keys refused unless it takes ``**``)."""
    params = {n: p for n, p in inspect.signature(fn).parameters.items() if n not in set(skip)}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not open_ended:
        check_options(values, named, owner)
    hints = _hints(fn)
    return {k: check_value(v, hints.get(k, Any), f"{owner}: {k}") if k in named else v for k, v in values.items()}


def check_options(keys: Iterable[str], known: Iterable[str], owner: str) -> None:
    """Reject the first key not in ``known``, with a "did you mean" (or the known options)."""
    known = set(known)
    for key in keys:
        if key not in known:
            raise ConfigError(f"{owner}: unknown option {key!r}", did_you_mean(key, sorted(known)))


def check_value(value: object, tp: Annotation, where: str) -> Any:
    """``value`` as type ``tp`` (converted from text where needed), else a one-line :class:`ConfigError`."""
    try:
        return _coerce(value, tp)
    except _Mismatch as err:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        hint = str(err.args[1]) if len(err.args) > 1 else None
        raise ConfigError(f"{where} must be {err.args[0]}, got {shown}", hint) from None


def describe(tp: Annotation) -> str:
    """The type in words, for error messages: ``int | None`` → "an integer or null"."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        return " or ".join(describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if origin in _SEQUENCES or tp in _SEQUENCES:
        inner = describe(args[0]) if args and args[0] is not Any else "values"
        return f"a list of {inner.removeprefix('an ').removeprefix('a ')}"
    if origin in _MAPPINGS or tp in _MAPPINGS:
        return "a mapping"
    return _WORDS.get(tp, getattr(tp, "__name__", str(tp)))


_WORDS: dict[object, str] = {int: "an integer", float: "a number", bool: "true or false", str: "text",
                             type(None): "null", Any: "any value"}


# -- conversion ---------------------------------------------------------------------------------------
def _coerce(value: object, tp: Annotation) -> Any:
    if tp is Any or tp is object or isinstance(tp, (str, typing.TypeVar)):
        return value
    if _is_union(tp):
        return _union(value, typing.get_args(tp), tp)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return _literal(value, typing.get_args(tp), tp)
    if origin is typing.ClassVar:
        return value
    if origin in _SEQUENCES or tp in _SEQUENCES:
        return _sequence(value, origin or tp, typing.get_args(tp), tp)
    if origin in _MAPPINGS or tp in _MAPPINGS:
        return _mapping(value, typing.get_args(tp), tp)
    if origin is cabc.Callable or tp is cabc.Callable:
        if callable(value):
            return value
        raise _Mismatch("a callable")
    return _scalar(value, tp)


def _scalar(value: object, tp: Annotation) -> Any:
    if tp is type(None):
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULLS):
            return None
        raise _Mismatch("null")
    handler = _SCALARS.get(tp)
    if handler is not None:
        return handler(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(value, tp)
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch(describe(tp))
    return value  # an annotation this checker does not model: the receiver validates it


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Mismatch("true or false")


def _int(value: object) -> int:
    if isinstance(value, bool):
        raise _Mismatch("an integer", "true/false is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value.strip())
    raise _Mismatch("an integer")


def _float(value: object) -> float:
    if isinstance(value, bool):
        raise _Mismatch("a number", "true/false is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _Mismatch("a number")


def _str(value: object) -> str:
    if isinstance(value, str):
        return value
    raise _Mismatch("text", "quote it in YAML if it looks like a number or true/false")


_SCALARS: dict[Any, Callable[[Any], Any]] = {bool: _bool, int: _int, float: _float, str: _str}


def _enum(value: object, tp: type[enum.Enum]) -> enum.Enum:
    if isinstance(value, tp):
        return value
    for member in tp:
        if value == member.value or value == member.name or str(value) == str(member.value):
            return member
    raise _Mismatch(describe(tp), _did_you_mean(value, [str(m.value) for m in tp]))


def _literal(value: object, options: tuple, tp: Annotation) -> Any:
    for option in options:
        if value == option and type(value) is type(option):
            return option
    for option in options:  # text from the command line: "3" for Literal[3]
        if isinstance(value, str) and str(option) == value.strip():
            return option
    raise _Mismatch(describe(tp), _did_you_mean(value, [str(o) for o in options]))


def _union(value: object, members: tuple, tp: Annotation) -> Any:
    if type(None) in members and (value is None or isinstance(value, str) and value.strip().lower() in _NULLS):
        return None  # `--set P.data=null` means no value, even where text would also fit
    exact = [m for m in members if isinstance(m, type) and type(value) is m]
    for member in exact + [m for m in members if m not in exact]:
        try:
            return _coerce(value, member)
        except _Mismatch:
            continue
    raise _Mismatch(describe(tp))


def _sequence(value: object, kind: Annotation, args: tuple, tp: Annotation) -> Any:
    value = _parsed(value)
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise _Mismatch(describe(tp), "write a list, e.g. [a, b]")
    items = list(value)
    if kind is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            raise _Mismatch(f"a list of {len(args)} values")
        out: list[Any] = [_coerce(v, t) for v, t in zip(items, args)]
    else:
        inner = args[0] if args else Any
        out = [_coerce(v, inner) for v in items]
    if kind is tuple:
        return tuple(out)
    if kind in (set, frozenset, cabc.Set):
        return (frozenset if kind is frozenset else set)(out)
    return out


def _mapping(value: object, args: tuple, tp: Annotation) -> dict:
    value = _parsed(value)
    if not isinstance(value, Mapping):
        raise _Mismatch(describe(tp), "write a mapping, e.g. {key: value}")
    kt, vt = args if len(args) == 2 else (Any, Any)
    return {_coerce(k, kt): _coerce(v, vt) for k, v in value.items()}


def _parsed(value: object) -> Any:
    """Text from ``--set``/``--option`` holding a YAML list or mapping, parsed; anything else unchanged."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        import yaml

        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def _did_you_mean(value: object, options: list[str]) -> str | None:
    return did_you_mean(value, options, "") or None


def _is_union(tp: Annotation) -> bool:
    return typing.get_origin(tp) is typing.Union or isinstance(tp, types.UnionType)


def _hints(obj: object) -> dict[str, Any]:
    """Resolved annotations; an unresolvable one (a forward reference to a heavy type) is left unchecked."""
    try:
        return typing.get_type_hints(obj)
    except Exception:  # noqa: BLE001 - NameError/TypeError from an annotation that cannot be evaluated
        raw = getattr(obj, "__annotations__", {}) or {}
        return {k: Any for k in raw}
