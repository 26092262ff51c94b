"""``lmcritic diagnose RUN``: find a run's defects, test their causes, print the defect graph."""
from __future__ import annotations

import argparse

from lmcritic.cli._common import add_cache_option, add_store_options, cache_path


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diagnose", help="why a run's model fails: defects, ranked causes, evidence, mitigation")
    p.add_argument("run", nargs="?", default="latest", help="run id, unique prefix, latest or latest~N")
    p.add_argument("--train", metavar="PATH", help="training corpus (.tsv/.csv/.jsonl with text[,label], or .txt)")
    p.add_argument("--reference", metavar="PATH", help="reference corpus for memorization (default: --train)")
    p.add_argument("--format", choices=("text", "md", "json"), default="text")
    p.add_argument("--probe", action="append", default=None, metavar="KEY", help="diagnose only these probes")
    p.add_argument("--hypothesis", action="append", default=None, metavar="NAME", help="test only these causes")
    p.add_argument("--max-queries", type=int, help="cap on edited cases re-scored by the tests (default 4000)")
    p.add_argument("--max-cases", type=int, help="failing cases tested per defect (default 24)")
    p.add_argument("--no-perplexity", action="store_true", help="skip the model's input perplexity feature")
    p.add_argument("--stored", action="store_true", help="print the run's stored diagnosis without recomputing")
    add_store_options(p)
    add_cache_option(p)
    p.set_defaults(func=diagnose_cmd)


def diagnose_cmd(args: argparse.Namespace) -> int:
    from lmcritic.cli._common import open_store
    from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run, with_overrides
    from lmcritic.diagnose.graph import render_text
    from lmcritic.diagnose.hypotheses import HYPOTHESES
    from lmcritic.diagnose.storage import load_graph
    from lmcritic.errors import ConfigError, UnknownNameError

    store = open_store(args)
    for name in args.hypothesis or ():
        if name not in HYPOTHESES:
            raise UnknownNameError(HYPOTHESES.unknown_message(name))
    if args.stored:
        _stored_only(args)
        graph = load_graph(store, args.run)
        if graph is None:
            raise ConfigError(f"run {args.run} has no stored diagnosis", "run `lmcritic diagnose RUN` first")
    else:
        config = with_overrides(DiagnoseConfig(), max_queries=args.max_queries, max_cases=args.max_cases,
                                hypotheses=tuple(args.hypothesis) if args.hypothesis else None,
                                probes=tuple(args.probe) if args.probe else None)
        if args.no_perplexity:
            config = with_overrides(config, perplexity=False)
        graph = diagnose_run(store, args.run, train=args.train, reference=args.reference, config=config,
                             cache_path=cache_path(args))
    if args.format == "json":
        print(graph.to_json())
    else:
        print(render_text(graph, markdown=args.format == "md"))
    return 0


RECOMPUTE = ("train", "reference", "probe", "hypothesis", "max_queries", "max_cases", "no_perplexity")


def _stored_only(args: argparse.Namespace) -> None:
    """--stored prints the diagnosis as it was computed; an option that would change it must not be ignored
    silently (``--stored --probe X`` printed every probe's defects)."""
    from lmcritic.errors import ConfigError

    given = [f"--{name.replace('_', '-')}" for name in RECOMPUTE if getattr(args, name) not in (None, False)]
    if given:
        raise ConfigError(f"--stored prints the stored diagnosis unchanged; {', '.join(given)} would change it",
                          f"drop --stored to diagnose again with {', '.join(given)}")
