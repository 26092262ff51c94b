"""Which probes a pattern names: what ``--probe``, ``--skip`` and a spec's probe filters share (a name or key, an
area such as ``safety``, or a glob such as ``safety.*``). Kept out of the CLI so the spec layer needs no CLI code."""
from __future__ import annotations

import fnmatch
from typing import Iterable, Protocol, Sequence, TypeVar


class Named(Protocol):
    """A probe entry (a ProbeSpec): its registered name and its key in the run."""

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str: ...


E = TypeVar("E", bound=Named)


def matches(pattern: str, *names: str) -> bool:
    """``pattern`` is a name or key, an area (``safety``) or a glob (``safety.*``, ``*.attack``)."""
    for name in names:
        if pattern == name or fnmatch.fnmatchcase(name, pattern) or name.split(".", 1)[0] == pattern:
            return True
    return False


def select(patterns: Sequence[str], entries: Iterable[E]) -> list[E]:
    """The entries whose name or key matches any pattern, in their order."""
    return [e for e in entries if any(matches(p, e.name, e.key) for p in patterns)]
