"""``lmcritic mitigate RUN`` (fix a diagnosed defect, re-verify with a paired re-run) and ``lmcritic mitigations``."""
from __future__ import annotations

import argparse
import json
import sys

from lmcritic.cli._common import add_cache_option, add_store_options


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mitigate", help="apply a mitigation to a diagnosed defect and re-verify it (paired re-run)")
    p.add_argument("run", nargs="?", default="latest", help="run id, unique prefix, latest or latest~N")
    p.add_argument("--defect", metavar="D",
                   help="defect id from the diagnosis (default: the first with a supported cause)")
    p.add_argument("--method", default="auto", help="a mitigation (see `lmcritic mitigations`) or auto: the one "
                   "matching the diagnosed cause and culprit")
    p.add_argument("--train", metavar="PATH", help="training corpus (text, label): training-time fixes edit it; "
                   "inference-time fixes sample held-out rows from it")
    p.add_argument("--heldout", metavar="PATH", help="labelled held-out rows to fit calibration / thresholds on "
                   "(default: sampled from --train)")
    p.add_argument("-o", "--out", metavar="DIR", help="where the mitigated model goes (default: "
                   "$LMCRITIC_HOME/mitigations/RUN-DEFECT-METHOD)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="mitigation option, e.g. "
                   "steps=100 or tokens=[cf] (see `lmcritic mitigations --format json`)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--decontaminate", action="store_true", help="drop training rows that are evaluation cases "
                   "(default: refuse them)")
    p.add_argument("--force", action="store_true", help="apply a named method even if it treats no open cause")
    p.add_argument("--no-verify", action="store_true", help="only make the mitigated model")
    p.add_argument("--control", action="store_true", help="training-time fixes: also train the same fine-tune on "
                   "the unedited corpus and judge the fix against it (twice the training and re-run)")
    p.add_argument("--probe", action="append", default=None, metavar="KEY", help="replay only these probes")
    p.add_argument("--keep-stages", action="store_true", help="also replay the run's stages (explain, diagnose)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--no-progress", action="store_true")
    add_store_options(p)
    add_cache_option(p)
    p.set_defaults(func=mitigate_cmd)

    m = sub.add_parser("mitigations", help="the mitigations lmcritic can apply: causes, needs, what they produce")
    m.add_argument("--format", choices=("text", "json"), default="text")
    m.set_defaults(func=mitigations_cmd)


def mitigate_cmd(args: argparse.Namespace) -> int:
    from lmcritic.cli._common import open_store
    from lmcritic.cli.run import _pairs
    from lmcritic.mitigate.api import apply

    store = open_store(args)
    print(f"lmcritic: mitigating run {store.resolve(args.run)} ({args.method}) ...", file=sys.stderr)
    outcome = apply(store, args.run, method=args.method, defect=args.defect, train=args.train, heldout=args.heldout,
                    out=args.out, config=_pairs(args.set, "--set"), seed=args.seed, verify=not args.no_verify,
                    decontaminate=args.decontaminate, force=args.force, cache_path=args.cache,
                    progress=not args.no_progress, probes=args.probe, keep_stages=args.keep_stages,
                    control=args.control)
    if args.format == "json":
        from lmcritic._serde import to_jsonable

        print(json.dumps(to_jsonable(outcome), indent=1, ensure_ascii=False, default=str))
        return 0
    print(_summary(outcome))
    if outcome.verification is not None:
        from lmcritic.mitigate.storage import render_text
        from lmcritic.report.markdown import write_reports

        print(render_text(outcome.verification))
        paths = write_reports(store, outcome.verification.run_after)
        print(f"run {outcome.verification.run_after}: the re-run on the mitigated model")
        print(f"report: {paths['html']}")
    return 0


INIT = {"model": "the run's weights", "base": "the base checkpoint", "scratch": "scratch"}  # where a fine-tune began


def _summary(o) -> str:
    t, m = o.target, o.model
    lines = [f"target: {t.id} {t.probe} [{t.slice}]" + (f" — cause {t.cause} ({t.verdict})" if t.cause else ""),
             f"method: {o.method} — {o.reason}",
             f"mitigated model ({m.kind}, {o.apply_s:.1f} s): {o.paths['spec']}"]
    if m.model_dir:
        train = m.details.get("training", {})
        init = INIT.get(train.get("init"))
        lines.append(f"  weights: {m.model_dir} ({train.get('adapter')} fine-tuning"
                     + (f" from {init}" if init else "") + f", {train.get('steps')} steps, "
                     f"{train.get('wall_s')} s; rows {m.details.get('rows_before')} → {m.details.get('rows_after')})")
        if train.get("resumed_from"):
            lines.append(f"  resumed from {train['resumed_from']} (an interrupted run of the same job left it)")
        arm = m.details.get("control")
        if arm:
            lines.append(f"  control arm: {arm['model_dir']} (the same fine-tune on the unedited corpus, "
                         f"{arm.get('steps')} steps, {arm.get('wall_s')} s"
                         + (f"; resumed from {arm['resumed_from']}" if arm.get("resumed_from") else "") + ")")
    shown = {k: v for k, v in m.details.items()  # base_hint: said by the notes that need it, not a count
             if k not in ("training", "rows", "base_hint") and not isinstance(v, (dict, list))}
    if shown:
        lines.append("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    lines += [f"  note: {n}" for n in m.notes]
    return "\n".join(lines)


def mitigations_cmd(args: argparse.Namespace) -> int:
    from lmcritic.mitigate import MITIGATIONS

    rows = [MITIGATIONS.get(n)().describe() for n in MITIGATIONS.names()]
    if args.format == "json":
        print(json.dumps(rows, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mitigations (lmcritic mitigate RUN --method NAME)")
    for col in ("name", "kind", "treats", "needs", "produces"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["kind"], ", ".join(r["treats"]) or "-", ", ".join(r["needs"]) or "any backend",
                      r["produces"])
    Console().print(table)
    return 0
