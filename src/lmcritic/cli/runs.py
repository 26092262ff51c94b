"""``lmcritic runs`` (history) and ``lmcritic show RUN`` (one run, as text, Markdown or JSON)."""
from __future__ import annotations

import argparse
import datetime as dt
import json

from lmcritic.cli._common import add_store_options, open_store


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list past runs")
    p.add_argument("--limit", type=int, default=20)
    add_store_options(p)
    p.set_defaults(func=runs_cmd)

    s = sub.add_parser("show", help="show a run's findings (RUN: id, unique prefix, latest, latest~N)")
    s.add_argument("run", nargs="?", default="latest")
    s.add_argument("--format", choices=("text", "md", "json"), default="text")
    s.add_argument("--cases", metavar="PROBE", help="also list the stored cases of PROBE")
    add_store_options(s)
    s.set_defaults(func=show_cmd)


def runs_cmd(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    store = open_store(args)
    table = Table(title="Runs (newest first)")
    for col in ("id", "created", "status", "model", "findings"):
        table.add_column(col)
    for r in store.list_runs(limit=args.limit):
        summary = r.summary or {}
        table.add_row(r.id, _when(r.created), r.status, _model_name(r.spec),
                      f"{summary.get('n_fail', '?')} fail / {summary.get('n_findings', '?')}")
    Console().print(table)
    return 0


def show_cmd(args: argparse.Namespace) -> int:
    from rich.console import Console

    store = open_store(args)
    run_id = store.resolve(args.run)
    if args.format == "md":
        from lmcritic.report.markdown import render_markdown

        print(render_markdown(store, run_id))
    elif args.format == "json":
        from lmcritic.report.markdown import run_document

        print(json.dumps(run_document(store, run_id), indent=2, ensure_ascii=False))
    else:
        console = Console()
        info = store.get_run(run_id)
        console.print(f"[bold]run {run_id}[/bold] — {info.status} — model {_model_name(info.spec)}", highlight=False)
        console.print(findings_table(store, run_id))
        console.print(probes_table(store, run_id))
        console.print(profile_table(store, run_id))
    if args.cases:
        Console().print(cases_table(store, run_id, args.cases))
    return 0


def findings_table(store, run_id: str):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Findings of run {run_id}")
    for col in ("probe", "finding", "verdict", "severity", "estimate [95% CI] (n)", "summary"):
        table.add_column(col, overflow="fold")
    for f in sorted(store.findings(run_id), key=lambda f: (f.verdict.value != "fail", -f.severity.rank)):
        style = "red" if f.verdict.value == "fail" else "green"
        table.add_row(f.probe, f.name, f"[{style}]{f.verdict.value}[/{style}]", f.severity.value,
                      str(f.estimate) if f.estimate else "", escape(f.summary))
    return table


def failures_table(store, run_id: str, limit: int = 20):
    """What a person reads first after a scan: failing findings, most severe first, one line each."""
    from rich.markup import escape
    from rich.table import Table

    findings = store.findings(run_id)
    fails = sorted((f for f in findings if f.verdict.value == "fail"), key=lambda f: -f.severity.rank)
    table = Table(title=f"{len(fails)} of {len(findings)} findings fail"
                  + (f" (the {limit} most severe shown)" if len(fails) > limit else ""))
    for col in ("severity", "probe", "finding", "estimate [95% CI] (n)"):
        table.add_column(col, overflow="fold")
    for f in fails[:limit]:
        table.add_row(f"[red]{f.severity.value}[/red]", f.probe, escape(f.name), str(f.estimate or ""))
    return table


def probes_table(store, run_id: str):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Probes")
    for col in ("probe", "status", "cases", "seconds", "reason"):
        table.add_column(col)
    for p in store.probe_runs(run_id):
        secs = f"{p.elapsed_s:.1f}" if p.elapsed_s else ""
        table.add_row(p.probe_key, p.status, str(p.n_cases or ""), secs, escape(p.reason or ""))
    for s in store.stage_runs(run_id):
        table.add_row(f"stage {s.stage}", s.status, "", f"{s.elapsed_s:.1f}" if s.elapsed_s else "",
                      escape(s.reason or ""))
    return table


def profile_table(store, run_id: str):
    """Where the run's time went: probes and stages slowest first, model time against the rest."""
    from rich.markup import escape
    from rich.table import Table

    from lmcritic._serde import to_jsonable
    from lmcritic.report._profile import HEADERS, run_profile, summary_line, table_rows

    prof = run_profile(to_jsonable(store.get_run(run_id)), [to_jsonable(p) for p in store.probe_runs(run_id)],
                       [to_jsonable(s) for s in store.stage_runs(run_id)])
    table = Table(title="Profile", caption=escape(summary_line(prof)))
    for i, col in enumerate(HEADERS):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in table_rows(prof):
        table.add_row(*(escape(c) for c in row))
    return table


def cases_table(store, run_id: str, probe_key: str, limit: int = 50):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Cases of {probe_key} (first {limit})")
    for col in ("case", "passed", "input", "output", "scores"):
        table.add_column(col, overflow="fold")
    for r in store.records(run_id, probe_key)[:limit]:
        out = {k: v for k, v in r.output.items() if k not in ("tokens", "logprobs", "offsets")}
        out = out if r.prediction is None else {"prediction": r.prediction, **out}
        table.add_row(r.case_id, str(r.passed), escape(_short(r.text if r.text is not None else r.input)),
                      escape(_short(out)), escape(_short({k: round(v, 4) for k, v in r.scores.items()})))
    return table


def _short(value: object, n: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= n else text[: n - 1] + "…"


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""


def _model_name(spec: dict | None) -> str:
    model = (spec or {}).get("model") or {}
    return str(model.get("name", "?")) if isinstance(model, dict) else str(model)
