"""``lmcritic`` command line. Each subcommand module exposes ``add_to(subparsers)``.

Exit codes: 0 success, 1 unexpected crash, 2 bad input (one-line reason on stderr), 3 run interrupted
(budget spent or Ctrl-C; finished work is stored and ``run --resume`` continues it), 4 gate failed,
5 ``monitor check``/``monitor report`` raised at least one alert.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# modules in lmcritic.cli, in help order; some register several subcommands
COMMANDS = ("models", "run", "runs", "report", "diff", "explain", "diagnose", "bias", "serve", "monitor")
EXIT_BAD_INPUT = 2


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

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except LmcriticError as err:
        print(f"lmcritic: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("lmcritic: interrupted", file=sys.stderr)
        return 3


def _version() -> str:
    from lmcritic import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
