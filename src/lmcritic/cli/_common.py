"""Options shared by subcommands."""
from __future__ import annotations

import argparse


def add_store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="run database (default: $LMCRITIC_HOME/runs.sqlite)")


def add_cache_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", help="model-call cache (default: $LMCRITIC_HOME/cache.sqlite)")


def open_store(args: argparse.Namespace):
    from lmcritic.runner import lmcritic_home
    from lmcritic.store.runs import RunStore

    return RunStore(args.store or lmcritic_home() / "runs.sqlite")
