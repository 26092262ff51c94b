"""JSON round-trips for frozen dataclasses: canonical dumps for cache keys, typed loads for replay.

No pickle anywhere: everything the project stores is JSON that these two functions can rebuild.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def to_jsonable(obj: object) -> Any:
    """Dataclasses → dicts, tuples → lists, enums → values, recursively."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def canonical_json(obj: object) -> str:
    """Stable text for hashing: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def stable_hash(*parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts``."""
    return hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).hexdigest()


def from_jsonable(tp: Any, data: Any) -> Any:
    """Rebuild a value of type ``tp`` (dataclass, tuple, list, dict, Optional, enum) from JSON."""
    if data is None:
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return from_jsonable(inner[0], data) if len(inner) == 1 else data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _load_dataclass(tp, data)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], x) for x in data)
        return tuple(from_jsonable(a, x) for a, x in zip(args, data)) if args else tuple(data)
    if origin is list:
        return [from_jsonable(args[0], x) for x in data] if args else list(data)
    if origin is dict:
        return {k: from_jsonable(args[1], v) for k, v in data.items()} if args else dict(data)
    if tp is float and isinstance(data, int):
        return float(data)
    return data


def _load_dataclass(tp: type[T], data: dict[str, Any]) -> T:
    hints = typing.get_type_hints(tp)
    known = {f.name for f in dataclasses.fields(tp)}  # type: ignore[arg-type]
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{tp.__name__} has no field(s) {sorted(unknown)}; known: {sorted(known)}")
    kwargs = {k: from_jsonable(hints[k], v) for k, v in data.items()}
    return tp(**kwargs)
