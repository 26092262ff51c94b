"""``lmcritic models``: the known models and the backends (with their capabilities)."""
from __future__ import annotations

import argparse


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list known models and backends")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from lmcritic.backends import BACKENDS, DEFAULT_MODEL, MODELS

    console = Console()
    table = Table(title="Known models (--model NAME)")
    for col in ("name", "backend", "description", "licence"):
        table.add_column(col)
    for name in MODELS.names():
        m = MODELS.get(name)
        table.add_row(name + (" (default)" if name == DEFAULT_MODEL else ""), m.backend, m.description, m.licence)
    console.print(table)
    console.print("Backends: " + ", ".join(BACKENDS.names())
                  + ". Any local HF directory, .gguf file or hub id (org/name) also works with --model; "
                  "--backend openai --option base_url=... for a server; --backend python --option fn=module:fn.")
    return 0
