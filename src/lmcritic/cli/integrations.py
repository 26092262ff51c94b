"""``lmcritic export-tests RUN`` (a pytest file pinning the run's findings) and ``lmcritic track RUN`` (the run's
findings and report into MLflow or Weights & Biases)."""
from __future__ import annotations

import argparse
from pathlib import Path

from lmcritic.cli._common import add_store_options, open_store


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-tests", help="write a pytest file that pins a run's findings as regression tests")
    p.add_argument("run", nargs="?", default="latest", help="run id, unique prefix, latest or latest~N")
    p.add_argument("-o", "--output", metavar="PATH", help="file to write ('-': stdout; default: "
                   "test_lmcritic_RUN.py here)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of each regression test")
    p.add_argument("--tolerance", type=float, default=0.0, help="allowed worsening, in each metric's units")
    add_store_options(p)
    p.set_defaults(func=export_cmd)

    t = sub.add_parser("track", help="log a run's findings (estimates, CIs, n) and report to an experiment tracker")
    t.add_argument("run", nargs="?", default="latest")
    t.add_argument("--to", required=True, metavar="TRACKER", help="mlflow | wandb")
    t.add_argument("--uri", help="mlflow: tracking URI or folder; wandb: the folder for its files")
    t.add_argument("--experiment", help="mlflow experiment / wandb project (default: lmcritic)")
    t.add_argument("--offline", action="store_true", help="wandb: write the run locally, no network")
    add_store_options(t)
    t.set_defaults(func=track_cmd)


def export_cmd(args: argparse.Namespace) -> int:
    from lmcritic.report.markdown import write_file
    from lmcritic.testing.export import export_tests

    store = open_store(args)
    run_id = store.resolve(args.run)
    path = Path(args.output or f"test_lmcritic_{run_id.replace('-', '_')}.py")
    text = export_tests(store, run_id, alpha=args.alpha, tolerance=args.tolerance, filename=path.name)
    if args.output == "-":
        print(text, end="")
        return 0
    print(write_file(path, text))
    return 0


def track_cmd(args: argparse.Namespace) -> int:
    from lmcritic.results import Results

    config = {"mlflow": {"tracking_uri": args.uri, "experiment": args.experiment},
              "wandb": {"dir": args.uri, "project": args.experiment, "mode": "offline" if args.offline else None}}
    chosen = {k: v for k, v in config.get(args.to, {}).items() if v is not None}
    print(Results(open_store(args), args.run).log_to(args.to, **chosen))
    return 0
