"""``lmcritic`` command line. Each subcommand module exposes ``add_to(subparsers)``.

Exit codes (every command):

====  ==========================================================================================
0     success (a run: every probe and stage ran; probes skipped as not applicable are fine)
1     internal error: one line on stderr, the traceback in ``$LMCRITIC_HOME/logs/`` (please report it)
2     bad input: one line on stderr naming what was wrong and how to fix it (spec, option, path, store)
3     run interrupted: budget spent, Ctrl-C or SIGTERM; finished work is stored, ``run --resume RUN``
4     gate failed (``lmcritic gate``)
5     ``monitor check``/``monitor report`` raised at least one alert
6     run partial: some probes, stages or cases failed (each reason printed); the rest is stored and
      ``run --resume RUN`` retries the failed parts
7     run failed: nothing was measured (every probe failed, or none could run on this model)
====  ==========================================================================================

No traceback reaches the console: lmcritic's own errors are one line, anything else is caught here.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from lmcritic.cli._common import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK

# modules in lmcritic.cli, in help order; some register several subcommands
COMMANDS = ("models", "probes", "run", "runs", "report", "diff", "explain", "diagnose", "mitigate", "bias", "serve",
            "monitor", "integrations")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmcritic", description="Critique a language model end to end and find why it fails.")
    parser.add_argument("--version", action="version", version=f"lmcritic {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"lmcritic.cli.{name}").add_to(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from lmcritic.errors import LmcriticError

    _one_line_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    from lmcritic._signals import terminate_as_interrupt

    try:
        with terminate_as_interrupt():  # every command, not only run and serve: SIGTERM is a Ctrl-C
            return int(args.func(args) or 0)
    except LmcriticError as err:
        _say(f"lmcritic: error: {err}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as err:
        _say(f"lmcritic: {str(err) or 'interrupted'}")  # a bare Ctrl-C carries no message
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `lmcritic show --format json | head`: the reader has what it wanted
        _silence_stdout()
        return EXIT_OK
    except Exception as err:  # noqa: BLE001 - the last resort: one line, traceback in a log
        from lmcritic._crashlog import internal_error

        _say(f"lmcritic: {internal_error(err, f'lmcritic {args.command}')} (please report it)")
        return EXIT_INTERNAL


def _one_line_warnings() -> None:
    """lmcritic's own warnings (rows skipped while reading data) as one line each, without source lines."""
    import warnings

    from lmcritic.datasets import DataWarning

    default = warnings.showwarning
    if getattr(default, "lmcritic", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 (warnings' signature)
        if issubclass(category, DataWarning):
            _say(f"lmcritic: warning: {message}")
        else:
            default(message, category, filename, lineno, file, line)

    show.lmcritic = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed too: nothing left to tell
        pass


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _version() -> str:
    from lmcritic import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
