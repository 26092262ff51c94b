"""``lmcritic probes``: every registered probe with its area, what it needs and what it does (like lm-eval's
``--tasks list``); the pattern matching ``--probe`` uses lives in :mod:`lmcritic.probes._select`."""
from __future__ import annotations

import argparse
from typing import Any

from lmcritic.probes._select import matches


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probes", help="list every registered probe: area, needs, description")
    p.add_argument("pattern", nargs="*", help="only probes matching a name, an area or a glob ('safety.*')")
    p.set_defaults(func=run)


def describe(name: str) -> dict[str, Any]:
    """Area, required capabilities and a one-line description of a registered probe (imports its module)."""
    import sys

    from lmcritic.probes import PROBES

    cls = PROBES.get(name)
    doc = (cls.__doc__ or "").strip() or (sys.modules[cls.__module__].__doc__ or "").strip()
    return {"name": name, "area": cls.area, "needs": sorted(c.value for c in cls.requires),
            "description": _first_sentence(" ".join(doc.split("\n\n")[0].split()))}


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from lmcritic.probes import PROBES

    table = Table(title="Registered probes (--probe NAME, AREA or 'GLOB')")
    for col in ("probe", "area", "needs", "description"):
        table.add_column(col, overflow="fold")
    for name in PROBES.names():
        if args.pattern and not any(matches(p, name) for p in args.pattern):
            continue
        d = describe(name)
        table.add_row(d["name"], d["area"], ", ".join(d["needs"]) or "-", d["description"])
    Console().print(table)
    return 0


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + "." if dot else text


__all__ = ["add_to", "describe", "run"]
