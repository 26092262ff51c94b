"""``lmcritic run SPEC`` and ``lmcritic scan --model M``: execute a run and write its report."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lmcritic.cli._common import EXIT_FOR_STATUS, EXIT_INTERRUPTED, add_cache_option, add_store_options, cache_path

__all__ = ["EXIT_INTERRUPTED", "add_to"]


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a spec file (YAML/JSON), resume a killed run, or replay one")
    p.add_argument("spec", nargs="?", help="run spec file (.yaml/.json)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN where it stopped (finished work is reused)")
    p.add_argument("--replay", metavar="RUN", help="run RUN's stored spec again as a new run")
    p.add_argument("--probe", action="append", default=[], metavar="PATTERN",
                   help="only the spec's probes matching a name, key, area or glob ('safety.*')")
    _add_run_options(p)
    p.set_defaults(func=run_cmd)

    s = sub.add_parser("scan", help="run the default suite on a model")
    s.add_argument("--model", default=None, help="known name (see `lmcritic models`), local dir, .gguf, hub id")
    s.add_argument("--backend", help="hf | openai | python | vllm | ray (inferred when omitted)")
    s.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="backend option")
    s.add_argument("--probe", action="append", default=[], metavar="PATTERN",
                   help="probes to run: a name, key, area or glob ('safety.*'; default: the whole suite)")
    s.add_argument("--skip", action="append", default=[], metavar="NAME", help="leave out a probe of the suite")
    s.add_argument("--set", action="append", default=[], metavar="PROBE.KEY=VALUE", help="probe option")
    s.add_argument("--data", metavar="PATH", help="labelled rows of the model's own task (.tsv/.csv/.jsonl, text + "
                   "label): the performance, robustness and bias probes use them instead of the packaged SST-2 sample")
    s.add_argument("--train", metavar="PATH", help="the model's training corpus (text + label): corpus checks and "
                   "the diagnosis use it")
    s.add_argument("--no-stages", action="store_true",
                   help="skip the stages after the probes (explaining the worst failures, diagnosis)")
    _add_run_options(s)
    s.set_defaults(func=scan_cmd)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    add_store_options(p, create=True)
    add_cache_option(p)
    p.add_argument("--max-output-chars", type=int, metavar="N",
                   help="cut model outputs longer than N characters before storing them (default 100000, "
                   "or $LMCRITIC_MAX_OUTPUT_CHARS)")
    p.add_argument("--max-queries", type=int, help="budget: model calls that miss the cache")
    p.add_argument("--max-tokens", type=int, help="budget: tokens sent to the model (estimated)")
    p.add_argument("--report", metavar="DIR", help="write report.html, report.md and report.json into DIR "
                   "(default: $LMCRITIC_HOME/reports/RUN/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--workers", type=int, metavar="N", help="run N probes at once, each worker process with its own "
                   "copy of the model, all writing to the same run (default: the spec's parallel.workers, else 1)")
    p.add_argument("--workers-on", choices=("local", "ray"), help="where the workers run: processes of this machine "
                   "(default) or Ray actors ($RAY_ADDRESS, else a local Ray instance)")


def run_cmd(args: argparse.Namespace) -> int:
    from lmcritic.errors import ConfigError
    from lmcritic.spec import RunSpec

    chosen = [x for x in (args.spec, args.resume, args.replay) if x]
    if len(chosen) != 1:
        raise ConfigError("give exactly one of SPEC, --resume RUN or --replay RUN")
    if args.spec:
        return _execute(_only(RunSpec.from_file(args.spec), args.probe), args)
    runner_store = _runner(args).store
    ref = args.resume or args.replay
    spec = RunSpec.from_dict(runner_store.get_run(runner_store.resolve(ref)).spec, source=f"run {ref}")
    if args.probe and args.resume:
        raise ConfigError("--probe cannot narrow a resumed run", "resume it whole, or --replay it with --probe")
    return _execute(_only(spec, args.probe), args, resume=args.resume)


def _only(spec, patterns: list[str]):
    """The spec narrowed to the probes matching ``patterns`` (none given: unchanged)."""
    from dataclasses import replace

    from lmcritic.errors import ConfigError
    from lmcritic.probes._select import select

    if not patterns:
        return spec
    chosen = tuple(select(patterns, spec.probes))
    if not chosen:
        keys = ", ".join(p.key for p in spec.probes)
        raise ConfigError(f"--probe {' '.join(patterns)} matches none of the spec's probes", f"probes: {keys}")
    return replace(spec, probes=chosen)


def scan_cmd(args: argparse.Namespace) -> int:
    from lmcritic.backends import DEFAULT_MODEL
    from lmcritic.spec import scan_spec

    options = _pairs(args.option, "--option")
    model: dict[str, Any] = {"name": args.model or _default_name(args.backend, options) or DEFAULT_MODEL,
                             "options": options}
    if args.backend:
        model["backend"] = args.backend
    overrides = _probe_overrides(args.set)
    spec = scan_spec(model, args.probe, overrides, stages=not args.no_stages, source="command line")
    return _execute(_with_user_data(spec, overrides, args), args)


def _with_user_data(spec: Any, overrides: dict[str, dict[str, Any]], args: argparse.Namespace) -> Any:
    """``--skip`` leaves probes out; ``--data``/``--train`` go where :mod:`lmcritic._user_data` says (``--set``
    still wins); the model's label names, when a local classifier folder says them, decide its own task."""
    from dataclasses import replace

    from lmcritic._user_data import head_labels, with_user_data

    spec = replace(spec, probes=tuple(p for p in spec.probes if p.name not in args.skip and p.key not in args.skip))
    heads = head_labels(spec.model.name, spec.model.options) if args.data else None
    return with_user_data(spec, args.data, args.train, heads, overrides)


def _execute(spec, args: argparse.Namespace, resume: str | None = None) -> int:
    from dataclasses import replace

    from lmcritic.report.markdown import write_reports
    from lmcritic.spec import BudgetSpec

    if args.max_queries or args.max_tokens:
        spec = replace(spec, budget=BudgetSpec(args.max_queries or spec.budget.max_queries,
                                               args.max_tokens or spec.budget.max_tokens))
    if args.workers is not None or args.workers_on:
        workers = spec.parallel.workers if args.workers is None else args.workers  # 0 is an error, not 'unset'
        parallel = replace(spec.parallel, workers=workers,
                           engine=args.workers_on or spec.parallel.engine)
        spec = replace(spec, parallel=parallel)
    runner = _runner(args)
    print(f"lmcritic: loading model {spec.model.name!r} ...", file=sys.stderr)
    outcome = runner.run(spec, resume=resume)
    paths = write_reports(runner.store, outcome.run_id, _report_dir(args.report))
    _print_summary(runner.store, outcome.run_id)
    for error in outcome.errors:  # also printed as they happened; repeated so the end of a CI log has them
        print(f"lmcritic: error: {error}", file=sys.stderr)
    print(f"run {outcome.run_id}: {outcome.status}" + (f" — {outcome.message}" if outcome.message else ""))
    print(f"markdown: {paths['md']}  json: {paths['json']}")
    print(f"report: {paths['html']}")  # last line: the file a person opens
    return EXIT_FOR_STATUS.get(outcome.status, EXIT_INTERRUPTED)


def _report_dir(report: str | None) -> Path | None:
    """``--report DIR``; a file name (``out/report.md``) means its folder."""
    if not report:
        return None
    path = Path(report)
    return path.parent if path.suffix.lower() in (".html", ".htm", ".md", ".json") else path


def _runner(args: argparse.Namespace):
    from lmcritic.runner import Runner

    return Runner(store_path=args.store, cache_path=cache_path(args), progress=not args.no_progress,
                  create_store=not args.store or args.create, max_output_chars=args.max_output_chars)


def _default_name(backend: str | None, options: dict[str, Any]) -> str | None:
    """A run's model label when only ``--backend``/``--option`` name it: the callable or the server, never
    the default model's name (which would mislabel the run)."""
    if not backend or backend == "hf":
        return None
    return str(options.get("fn") or options.get("model") or options.get("base_url") or backend)


def _print_summary(store, run_id: str) -> None:
    from rich.console import Console

    from lmcritic.cli.runs import failures_table

    console = Console()
    skipped = [p for p in store.probe_runs(run_id) if p.status == "skipped"]
    if skipped:  # the plan: what does not apply to this kind of model, and why
        console.print(f"not run ({len(skipped)}): " + "; ".join(f"{p.probe_key} — {p.reason}" for p in skipped),
                      markup=False, style="dim")
    console.print(failures_table(store, run_id))  # every finding: the report, or `lmcritic show RUN`


def _pairs(items: list[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs with VALUE kept as text: it is converted by the annotation of the option it sets
    (``n=8`` → 8 for an int, ``prompt=yes`` stays "yes" for text), when the probe or backend is built."""
    from lmcritic.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def _probe_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--set PROBE.KEY=VALUE`` as probe key → options (the probe is checked against the run's probes)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in _pairs(items, "--set").items():
        probe, _, opt = key.rpartition(".")
        out.setdefault(probe, {})[opt] = value
    return out
