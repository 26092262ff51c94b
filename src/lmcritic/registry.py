"""One generic registry for backends, probes, metrics and models.

Entries are added with a decorator, as lazy ``"module:attr"`` strings (so listing names imports
nothing heavy), or by plugins through the entry-point group ``lmcritic.<kind>``.
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

from lmcritic.errors import RegistryError, UnknownNameError, did_you_mean

T = TypeVar("T")
TypeSpec = type | str | tuple[type | str, ...] | None  # a class, a lazy "module:attr" string, or a tuple of them


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
    """Name → object, resolved lazily; unknown names get "did you mean" suggestions.

    A name is registered once: registering it again for another target is an error naming both (pass
    ``replace=True`` to override deliberately), as lm-eval's registry does. ``subclass_of`` / ``instance_of``
    check what a name resolves to, so a plugin entry that is not, e.g., a :class:`~lmcritic.probes.base.Probe`
    fails with a clear message when it is first used instead of somewhere inside a run. Either may be a lazy
    ``"module:attr"`` string, so declaring the check imports nothing, or a tuple of them (any one will do).
    """

    def __init__(self, kind: str, *, subclass_of: TypeSpec = None, instance_of: TypeSpec = None) -> None:
        self.kind = kind
        self.subclass_of = subclass_of
        self.instance_of = instance_of
        self._entries: dict[str, T | str] = {}
        self._paths: dict[str, str] = {}  # the lazy path each resolved entry came from
        self._plugins_loaded = False

    def register(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator: ``@registry.register("name")``."""

        def deco(obj: T) -> T:
            self.add(name, obj, replace=replace)
            return obj

        return deco

    def add(self, name: str, target: T | str, *, replace: bool = False) -> None:
        """Add an object or a lazy ``"module:attr"`` string; a taken name needs ``replace=True``."""
        old = self._entries.get(name)
        same = old is target or (isinstance(target, str) and target == self._paths.get(name, old))
        if old is not None and not replace and not same:
            raise RegistryError(f"{self.kind} {name!r} is already registered to {_describe(old)}; refusing to "
                                f"replace it with {_describe(target)}",
                                "use another name, or pass replace=True to override it deliberately")
        if same:
            return
        self._entries[name] = target
        self._paths.pop(name, None)
        if isinstance(target, str):
            self._paths[name] = target

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in metadata.entry_points(group=f"lmcritic.{self.kind}"):
            self.add(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """Resolve ``name``, importing its module on first use (and checking its type, when the registry has one)."""
        self._load_plugins()
        if name not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        target = self._entries[name]
        if isinstance(target, str):
            resolved = import_string(target)
            self._check(name, resolved, target)
            self._entries[name] = target = resolved  # type: ignore[assignment]
        return target  # type: ignore[return-value]

    def _check(self, name: str, obj: object, where: str) -> None:
        bases = _types(self.subclass_of)
        if bases and not (isinstance(obj, type) and issubclass(obj, bases)):
            raise RegistryError(f"{self.kind} {name!r} ({where}) is {obj!r}, not a {_names(bases)} subclass",
                                f"register a {_names(bases)} subclass under that name")
        classes = _types(self.instance_of)
        if classes and not isinstance(obj, classes):
            raise RegistryError(f"{self.kind} {name!r} ({where}) is {obj!r}, not a {_names(classes)}",
                                f"register a {_names(classes)} under that name")

    def unknown_message(self, name: str) -> str:
        hint = did_you_mean(name, self.names(), "", n=3, cutoff=0.5)
        known = ", ".join(self.names())
        return f"unknown {self.kind} {name!r}. {hint} Known: {known}".replace(".  ", ". ")


def _types(spec: TypeSpec) -> tuple[type, ...]:
    """The classes a check names (lazy strings imported now, on first use of an entry)."""
    if spec is None:
        return ()
    out = []
    for one in spec if isinstance(spec, tuple) else (spec,):
        resolved = import_string(one) if isinstance(one, str) else one
        assert isinstance(resolved, type), one
        out.append(resolved)
    return tuple(out)


def _names(classes: tuple[type, ...]) -> str:
    return " or ".join(c.__name__ for c in classes)


def _describe(target: object) -> str:
    if isinstance(target, str):
        return repr(target)
    module, name = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
    return f"'{module}:{name}'" if module and name else repr(target)
