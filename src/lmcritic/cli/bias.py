"""``lmcritic swap`` (a counterfactual of a sentence) and ``lmcritic data-skew`` (identity-term label skew in a
corpus): the bias area's model-free tools, for checking the lexicon and a training set before any run."""
from __future__ import annotations

import argparse
import json


def add_to(sub: argparse._SubParsersAction) -> None:
    from lmcritic.lexicon import ATTRIBUTES, ZH_ATTRIBUTES

    p = sub.add_parser("swap", help="counterfactual demographic swap of a sentence (English or Chinese)")
    p.add_argument("text")
    p.add_argument("--attribute", "-a", default="gender",
                   choices=ATTRIBUTES + tuple(a for a in ZH_ATTRIBUTES if a not in ATTRIBUTES))
    p.add_argument("--to", default=None, help="target group (default: random other group)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the edits as JSON")
    p.set_defaults(func=run_swap)
    q = sub.add_parser("data-skew", help="association of identity terms with labels in a corpus")
    q.add_argument("corpus", help=".tsv/.csv/.jsonl with a text column (and optionally a label column)")
    q.add_argument("--text-column", default="sentence")
    q.add_argument("--label-column", default="label", help="'' to label by sentiment words instead")
    q.add_argument("--min-count", type=int, default=5)
    q.add_argument("--top", type=int, default=15, help="terms to list")
    q.set_defaults(func=run_skew)


def run_swap(args: argparse.Namespace) -> int:
    from lmcritic._serde import to_jsonable
    from lmcritic.lexicon import swap

    new, edits = swap(args.text, args.attribute, args.seed, args.to)
    print(json.dumps({"text": new, "edits": to_jsonable(edits)}, indent=1) if args.json else new)
    return 0


def run_skew(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from lmcritic.probes.bias.data_skew import DataSkew

    probe = DataSkew(data=args.corpus, text_column=args.text_column, label_column=args.label_column or None,
                     min_count=args.min_count)
    records = probe.score(None, list(probe.cases()))
    console = Console()
    for f in probe.summarize(records):
        console.print(f"[bold]{f.verdict.value.upper()}[/bold] {escape(f.summary)}")
    table = Table(title="Most skewed identity terms (BH-adjusted Fisher p)")
    for col in ("term", "attribute", "group", "docs", "P(target|term)", "95% CI", "PMI", "p_bh"):
        table.add_column(col)
    terms = sorted((r for r in records if r.tags["kind"] == "term"), key=lambda r: r.scores["p_adjusted"])
    for r in terms[: args.top]:
        s = r.scores
        table.add_row(escape(r.tags["term"]), r.tags["attribute"], r.tags["group"], f"{s['n_docs']:.0f}",
                      f"{s['rate']:.3f}", f"[{s['rate_ci_low']:.3f}, {s['rate_ci_high']:.3f}]", f"{s['pmi']:+.2f}",
                      f"{s['p_adjusted']:.2g}")
    console.print(table)
    return 0
