"""``lmcritic diff RUN_A RUN_B`` (what changed, with paired significance) and ``lmcritic gate`` (for CI).

Gate semantics: ``lmcritic gate RUN --baseline BASE --max-regression METRIC=TOL`` compares RUN against BASE
on the cases both scored. METRIC is ``PROBE:SCORE`` or ``SCORE`` (every shared probe with that per-case
score; ``pass_rate`` is the share of passed cases). TOL is in the metric's own units (``0.02``) or relative
to the baseline mean (``5%``). A metric fails the gate when it got worse by more than TOL (in the direction
that is worse for that metric) AND the change is significant: Benjamini–Hochberg-adjusted p < ``--alpha``
over the gated metrics (McNemar for pass/fail, paired sign-flip test for scores; cases pair on id and input).
A gated metric whose probe failed, ran partly or is missing in RUN fails too. Exit 4 if any gated metric
fails (or, with ``--fail-on-new-findings``, if a finding fails in RUN that did not fail in BASE or a probe of
BASE did not finish in RUN), else 0. ``--alpha`` must lie in (0, 1) and tolerances be finite and >= 0.
"""
from __future__ import annotations

import argparse
import json

from lmcritic.cli._common import EXIT_GATE_FAILED, add_store_options, open_store

__all__ = ["EXIT_GATE_FAILED", "add_to"]


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="compare two runs case by case (paired tests, BH-corrected)")
    p.add_argument("run_a", help="baseline run (id, prefix, latest~N)")
    p.add_argument("run_b", help="run to compare with it")
    p.add_argument("--format", choices=("text", "md", "json"), default="text")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level for BH-adjusted p (default 0.05)")
    p.add_argument("--all", action="store_true", help="also list metrics that did not change")
    add_store_options(p)
    p.set_defaults(func=diff_cmd)

    g = sub.add_parser("gate", help="exit 4 if RUN regressed against a baseline run (for CI pipelines)")
    g.add_argument("run", help="candidate run")
    g.add_argument("--baseline", required=True, metavar="RUN", help="baseline run")
    g.add_argument("--max-regression", action="append", default=[], metavar="METRIC=TOL",
                   help="allowed worsening, e.g. performance.sst2:pass_rate=0.02 or nll=5%% (repeatable)")
    g.add_argument("--lower-is-better", action="append", default=[], metavar="METRIC",
                   help="declare a metric's direction when its name does not tell")
    g.add_argument("--higher-is-better", action="append", default=[], metavar="METRIC")
    g.add_argument("--fail-on-new-findings", action="store_true", help="also fail when a finding newly fails")
    g.add_argument("--alpha", type=float, default=0.05)
    g.add_argument("--format", choices=("text", "json"), default="text")
    add_store_options(g)
    g.set_defaults(func=gate_cmd)


def diff_cmd(args: argparse.Namespace) -> int:
    from lmcritic.report.compare import compare_runs
    from lmcritic.report.diff_render import comparison_json, comparison_markdown, comparison_text
    from lmcritic.report.gate import check_alpha

    check_alpha(args.alpha)
    store = open_store(args)
    comp = compare_runs(store, args.run_a, args.run_b)
    if args.format == "json":
        print(json.dumps(comparison_json(comp, args.alpha), indent=1, ensure_ascii=False))
    elif args.format == "md":
        print(comparison_markdown(comp, args.alpha, show_all=args.all))
    else:
        print(comparison_text(comp, args.alpha, show_all=args.all))
    return 0


def gate_cmd(args: argparse.Namespace) -> int:
    from lmcritic.errors import ConfigError
    from lmcritic.report.compare import compare_runs
    from lmcritic.report.gate import evaluate_gate, parse_rules

    if not args.max_regression and not args.fail_on_new_findings:
        raise ConfigError("gate needs at least one --max-regression METRIC=TOL or --fail-on-new-findings",
                          "e.g. --max-regression performance.sst2:pass_rate=0.02")
    from lmcritic.report.gate import check_alpha

    check_alpha(args.alpha)
    rules = parse_rules(args.max_regression, args.lower_is_better, args.higher_is_better)
    store = open_store(args)
    result = evaluate_gate(compare_runs(store, args.baseline, args.run), rules, args.alpha,
                           args.fail_on_new_findings)
    print(json.dumps(result.to_json(), indent=1) if args.format == "json" else result.text())
    return EXIT_GATE_FAILED if result.failed else 0
