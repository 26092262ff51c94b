"""``lmcritic report RUN`` (HTML, Markdown or JSON) and ``lmcritic card RUN`` (model critique card)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmcritic.cli._common import add_store_options, open_store


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a run's report (self-contained HTML, Markdown or JSON)")
    p.add_argument("run", nargs="?", default="latest", help="run id, unique prefix, latest or latest~N")
    p.add_argument("--format", choices=("html", "md", "json", "all"), default="html")
    p.add_argument("-o", "--output", metavar="PATH", help="file to write ('-' for stdout; with --format all: a "
                   "folder). Default: $LMCRITIC_HOME/reports/RUN/report.FORMAT")
    p.add_argument("--max-cases", type=int, default=200, help="cases listed per probe (the rest: `lmcritic show`)")
    add_store_options(p)
    p.set_defaults(func=report_cmd)

    c = sub.add_parser("card", help="write a model critique card (Markdown) from a run's findings")
    c.add_argument("run", nargs="?", default="latest")
    c.add_argument("-o", "--output", metavar="PATH", help="file to write (default: stdout)")
    c.add_argument("--intended-use", metavar="TEXT", help="the use the model is meant for (quoted in the card)")
    add_store_options(c)
    c.set_defaults(func=card_cmd)


def report_cmd(args: argparse.Namespace) -> int:
    from lmcritic.errors import ConfigError
    from lmcritic.report.markdown import render_report, write_reports

    store = open_store(args)
    run_id = store.resolve(args.run)
    if args.max_cases < 0:
        raise ConfigError("--max-cases must be >= 0")
    if args.format == "all":
        paths = write_reports(store, run_id, Path(args.output) if args.output else None, max_cases=args.max_cases)
        for fmt in ("md", "json", "html"):
            print(f"{fmt}: {paths[fmt]}")
        return 0
    text = render_report(store, run_id, args.format, args.max_cases)
    return _emit(text, args.output or _default_path(run_id, args.format))


def card_cmd(args: argparse.Namespace) -> int:
    from lmcritic.report.card import render_card

    store = open_store(args)
    text = render_card(store, store.resolve(args.run), intended_use=args.intended_use)
    return _emit(text, args.output or "-")


def _emit(text: str, output: str | Path) -> int:
    if str(output) == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    from lmcritic.report.markdown import write_file

    print(write_file(Path(output), text))
    return 0


def _default_path(run_id: str, fmt: str) -> Path:
    from lmcritic.runner import lmcritic_home

    return lmcritic_home() / "reports" / run_id / f"report.{fmt}"
