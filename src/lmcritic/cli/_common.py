"""Options shared by subcommands, and the exit codes every command uses (the table is in ``cli.main``)."""
from __future__ import annotations

import argparse

EXIT_OK = 0
EXIT_INTERNAL = 1  # an error lmcritic did not foresee: one line, the traceback in a log file
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 3
EXIT_GATE_FAILED = 4
# 5: `monitor check`/`monitor report` raised an alert (lmcritic.cli.monitor.EXIT_ALERT)
EXIT_PARTIAL = 6  # the run finished, but some probes, stages or cases failed (stored; resume retries them)
EXIT_FAILED = 7  # the run finished without measuring anything: every probe failed or was skipped
EXIT_FOR_STATUS = {"done": EXIT_OK, "partial": EXIT_PARTIAL, "failed": EXIT_FAILED, "interrupted": EXIT_INTERRUPTED}


def add_store_options(p: argparse.ArgumentParser, create: bool = False) -> None:
    p.add_argument("--store", help="run database (default: $LMCRITIC_HOME/runs.sqlite)")
    if create:
        p.add_argument("--create", action="store_true",
                       help="start a new run database at --store if none is there (else a missing one is an error)")


def add_cache_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", help="model-call cache (default: $LMCRITIC_HOME/cache.sqlite)")
    p.add_argument("--rebuild-cache", action="store_true",
                   help="move the cache aside and start an empty one (after a 'damaged' error; runs are kept)")


def open_store(args: argparse.Namespace):
    """The run store for a command that reads runs: an explicit ``--store`` must exist (a typo must not
    open an empty database); a store that cannot be written is opened read-only, for browsing."""
    from lmcritic.runner import lmcritic_home
    from lmcritic.store.runs import RunStore

    if args.store:
        return RunStore(args.store, create=bool(getattr(args, "create", False)))
    return RunStore(lmcritic_home() / "runs.sqlite")


def cache_path(args: argparse.Namespace):
    """The call cache of a command (``--cache`` or the default); ``--rebuild-cache`` moves it aside first."""
    import sys
    from pathlib import Path

    from lmcritic.runner import lmcritic_home
    from lmcritic.store.cache import set_aside

    path = Path(args.cache).expanduser() if args.cache else lmcritic_home() / "cache.sqlite"
    if getattr(args, "rebuild_cache", False):
        moved = set_aside(path)
        if moved is not None:
            print(f"lmcritic: moved the old cache to {moved}; starting an empty one", file=sys.stderr)
    return path
