"""``lmcritic monitor``: production logs → the same scorers → windows, drift, alerts, report, new test cases.

Exit codes: 0 done (no alert), 2 bad input, 5 ``check``/``report`` found at least one alert (for cron and CI).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmcritic.cli._common import add_cache_option, add_store_options

EXIT_ALERT = 5


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("monitor", help="monitor production traffic: ingest logs, score, drift, alerts, report")
    msub = p.add_subparsers(dest="monitor_command", metavar="STEP")
    i = msub.add_parser("ingest", help="read JSONL/CSV/Parquet logs into the store (incremental, idempotent)")
    i.add_argument("logs", nargs="+", metavar="LOG")
    i.add_argument("--map", action="append", metavar="FIELD=COLUMN", help="rename: --map prompt=question "
                   "(dotted columns reach into objects: --map timestamp=meta.ts)")
    i.add_argument("--max-line-bytes", type=int, default=1 << 20, help="longer lines are skipped and reported")
    i.add_argument("--final", action="store_true", help="read an unterminated last line now (default: hold it "
                   "back, the writer may still be writing it)")
    add_store_options(i)
    i.set_defaults(func=ingest_cmd)
    s = msub.add_parser("score", help="score every new request (batched, cached)")
    _scoring_options(s)
    s.set_defaults(func=score_cmd)
    for name, fn, helptext in (("check", check_cmd, "windows, drift, alert rules (exit 5 on alert)"),
                               ("report", report_cmd, "the HTML/JSON monitoring report (exit 5 on alert)")):
        c = msub.add_parser(name, help=helptext)
        _scoring_options(c)
        _check_options(c)
        if name == "report":
            c.add_argument("--format", choices=("html", "json", "all"), default="html")
            c.add_argument("-o", "--output", metavar="PATH", help="file (or folder with --format all); default "
                           "$LMCRITIC_HOME/reports/monitor/report.FORMAT")
        else:
            c.add_argument("--format", choices=("text", "json"), default="text")
        c.set_defaults(func=fn)
    e = msub.add_parser("export-cases", help="flagged production cases → datasets + a run spec for the next scan")
    e.add_argument("-o", "--output", required=True, metavar="DIR")
    e.add_argument("--max-cases", type=int, default=2000)
    _flag_options(e)
    e.set_defaults(func=export_cmd)
    r = msub.add_parser("to-run", help="store the traffic as a run, so `lmcritic diagnose RUN` slices its failures")
    r.add_argument("--run-model", metavar="M", help="model to store in the run (so diagnosis can re-ask it)")
    r.add_argument("--max-requests", type=int, default=20000)
    _flag_options(r)
    r.set_defaults(func=to_run_cmd)
    st = msub.add_parser("status", help="what is stored: requests, sources and their progress, row errors")
    add_store_options(st)
    st.set_defaults(func=status_cmd)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _scoring_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="scoring model for input perplexity / adversarial score (e.g. smollm2-135m)")
    p.add_argument("--backend", help="the scoring model's backend (inferred when omitted)")
    p.add_argument("--scorers", metavar="LIST", help="comma-separated field.scorer steps (default: all), e.g. "
                   "prompt.pii,response.pii,response.refusal")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="ray: a Ray Data pipeline")
    add_store_options(p)
    add_cache_option(p)


def _check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", default="1d", help="hour, day, 30m, 6h, 1d or N requests (500req); default 1d")
    p.add_argument("--reference", default="first", help="first, first:K, previous, range:START..END or run:RUN")
    p.add_argument("--rules", metavar="YAML", help="alert rules (default: the packaged ones)")
    p.add_argument("--since", help="start time (ISO 8601 or Unix seconds)")
    p.add_argument("--until", help="end time")
    p.add_argument("--no-embedding", action="store_true", help="skip MiniLM embedding drift")


def _flag_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flag", action="append", metavar="METRIC", help="rate metrics that flag a request (default: "
                   "response.pii, response.toxic, prompt.injection, response.refusal, feedback.negative)")
    p.add_argument("--since")
    p.add_argument("--until")
    _scoring_options(p)


def _store(args: argparse.Namespace):
    from lmcritic.runner import lmcritic_home
    from lmcritic.store.monitor import MonitorStore

    return MonitorStore(args.store or lmcritic_home() / "runs.sqlite")


def _time(text: str | None) -> float | None:
    from lmcritic.errors import ConfigError
    from lmcritic.monitor.schema import RowError, parse_timestamp

    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except RowError as err:
        raise ConfigError(f"bad time {text!r}: {err}") from None


def ingest_cmd(args: argparse.Namespace) -> int:
    from lmcritic.monitor.ingest import ingest
    from lmcritic.monitor.schema import parse_map

    store = _store(args)
    report = ingest(store, args.logs, parse_map(args.map), args.max_line_bytes, args.final)
    for line in report.lines():
        print(line)
    print(f"stored {report.total('stored')} new request(s); {store.count()} in {store.path}")
    return 0


def _scorer(args: argparse.Namespace, store):
    from lmcritic.monitor.api import build_scorer
    from lmcritic.monitor.scoring import DEFAULT_STEPS, ScoringConfig, parse_steps

    steps = parse_steps(args.scorers.split(",")) if args.scorers else DEFAULT_STEPS
    scorer = build_scorer(store, ScoringConfig(steps, args.model, args.backend), args.cache)
    for name, why in scorer.skipped.items():
        print(f"lmcritic: scorer {name} skipped: {why}", file=sys.stderr)
    return scorer


def _score(args: argparse.Namespace, store, scorer) -> int:
    from lmcritic.monitor.scoring import score_store

    if args.engine == "ray":
        from lmcritic.monitor.ray_engine import score_store_ray

        return score_store_ray(store, scorer)
    from rich.progress import Progress

    todo = store.count() - store.scored_count(scorer.fingerprint)
    with Progress(transient=True) as bar:
        task = bar.add_task("scoring requests", total=max(todo, 0))
        return score_store(store, scorer, progress=lambda n: bar.advance(task, n))


def score_cmd(args: argparse.Namespace) -> int:
    store = _store(args)
    scorer = _scorer(args, store)
    done = _score(args, store, scorer)
    print(f"scored {done} request(s) with {len(scorer.steps)} scorers (score set {scorer.fingerprint})")
    return 0


def _check(args: argparse.Namespace):
    from lmcritic.monitor.alerts import load_rules
    from lmcritic.monitor.api import check_store
    from lmcritic.monitor.check import CheckConfig

    store = _store(args)
    scorer = _scorer(args, store)
    _score(args, store, scorer)
    config = CheckConfig(args.window, args.reference, not args.no_embedding, start=_time(args.since),
                         end=_time(args.until))
    return store, check_store(store, scorer, config, load_rules(args.rules), store)


def check_cmd(args: argparse.Namespace) -> int:
    from lmcritic.report.monitor import monitor_document, render_monitor_json

    store, result = _check(args)
    if args.format == "json":
        print(render_monitor_json(monitor_document(store, result)))
    else:
        for note in result.notes:
            print(f"note: {note}")
        tested = [w for w in result.windows if not w.is_reference]
        print(f"{len(result.windows)} windows of {result.window} ({len(tested)} tested against reference "
              f"{result.reference}); {len(result.alerts)} alert(s)")
        for a in result.alerts:
            print(f"ALERT {a.severity} window {_when(a.start)}: {a.message}")
    return EXIT_ALERT if result.alerts else 0


def report_cmd(args: argparse.Namespace) -> int:
    from lmcritic.report.monitor import monitor_document, render_monitor_html, render_monitor_json
    from lmcritic.runner import lmcritic_home

    store, result = _check(args)
    doc = monitor_document(store, result)
    formats = ("html", "json") if args.format == "all" else (args.format,)
    base = Path(args.output) if args.output else lmcritic_home() / "reports" / "monitor"
    for fmt in formats:
        path = (base / f"report.{fmt}") if (args.format == "all" or not args.output) else base
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((render_monitor_html if fmt == "html" else render_monitor_json)(doc), encoding="utf-8")
        print(f"{fmt}: {path}")
    print(f"{len(result.alerts)} alert(s)")
    return EXIT_ALERT if result.alerts else 0


def export_cmd(args: argparse.Namespace) -> int:
    from lmcritic.monitor.export import DEFAULT_FLAGS, export_cases

    store = _store(args)
    scorer = _scorer(args, store)
    _score(args, store, scorer)
    counts = export_cases(store, scorer.fingerprint, args.output, tuple(args.flag or DEFAULT_FLAGS),
                          _time(args.since), _time(args.until), args.max_cases)
    for name, n in counts.items():
        print(f"{Path(args.output) / (name + '.jsonl')}: {n} rows")
    print(f"run spec: {Path(args.output) / 'scan.yaml'}  (lmcritic run {Path(args.output) / 'scan.yaml'} --model M)")
    return 0


def to_run_cmd(args: argparse.Namespace) -> int:
    from lmcritic.monitor.export import DEFAULT_FLAGS, to_run

    store = _store(args)
    scorer = _scorer(args, store)
    _score(args, store, scorer)
    run_id = to_run(store, store, scorer.fingerprint, tuple(args.flag or DEFAULT_FLAGS),
                    _time(args.since), _time(args.until), args.run_model, args.max_requests)
    print(f"run {run_id}: production traffic stored; next: lmcritic diagnose {run_id}")
    return 0


def status_cmd(args: argparse.Namespace) -> int:
    store = _store(args)
    span = store.span()
    print(f"{store.count()} requests in {store.path}" + (f", {_when(span[0])} to {_when(span[1])}" if span else ""))
    for s in store.sources():
        print(f"  {s.path} ({s.format}): read to line {s.line}, offset {s.offset}")
    counts = store.failure_counts()
    print("rows not ingested: " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none"))
    for f in store.failures(20):
        print(f"  {f.source}:{f.line}: {f.kind}: {f.message}")
    return 0


def _when(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
