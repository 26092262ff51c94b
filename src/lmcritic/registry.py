"""One generic registry for backends, probes, metrics and models.

Entries are added with a decorator, as lazy ``"module:attr"`` strings (so listing names imports
nothing heavy), or by plugins through the entry-point group ``lmcritic.<kind>``.
"""
from __future__ import annotations

import difflib
import importlib
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

from lmcritic.errors import UnknownNameError

T = TypeVar("T")


def import_string(path: str) -> object:
    """Resolve ``"package.module:attr"`` (attr may be dotted)."""
    module_name, _, attr = path.partition(":")
    if not attr:
        raise UnknownNameError(f"{path!r} is not of the form 'module:attr'")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Name → object, resolved lazily; unknown names get "did you mean" suggestions."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._plugins_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@registry.register("name")``."""

        def deco(obj: T) -> T:
            self._entries[name] = obj
            return obj

        return deco

    def add(self, name: str, target: T | str) -> None:
        """Add an object or a lazy ``"module:attr"`` string."""
        self._entries[name] = target

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in metadata.entry_points(group=f"lmcritic.{self.kind}"):
            self._entries.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """Resolve ``name``, importing its module on first use."""
        self._load_plugins()
        if name not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        target = self._entries[name]
        if isinstance(target, str):
            target = import_string(target)  # type: ignore[assignment]
            self._entries[name] = target
        return target  # type: ignore[return-value]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(self.names())
        return f"unknown {self.kind} {name!r}. {hint} Known: {known}".replace(".  ", ". ")
