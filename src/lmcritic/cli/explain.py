"""``lmcritic explain RUN CASE`` (one stored case, pairs on both sides) and ``lmcritic explain RUN --worst K``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmcritic.cli._common import add_cache_option, add_store_options, cache_path

METHODS = ("integrated_gradients", "grad_x_input", "attention", "attention_rollout", "occlusion", "leave_one_out")


def add_to(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="explain a stored case (attributions, faithfulness), or a run's worst failures")
    p.add_argument("run", help="run id, unique prefix, latest or latest~N")
    p.add_argument("case", nargs="?", help="case id (PROBE/CASE when several probes have it)")
    p.add_argument("--probe", help="the probe key the case belongs to")
    p.add_argument("--worst", type=int, metavar="K", help="explain the K most confident failures and store them")
    p.add_argument("--method", action="append", choices=METHODS, help="attribution method (repeatable; default: "
                   "grad_x_input + leave_one_out, or two black-box ones for API models)")
    p.add_argument("--ig-steps", type=int, help="integrated gradients: fixed step count (default: adaptive)")
    p.add_argument("--trigger", action="append", default=[], help="planted trigger string counted as spurious")
    p.add_argument("--no-faithfulness", action="store_true", help="skip comprehensiveness/sufficiency")
    p.add_argument("--html", help="write a self-contained HTML page of the heatmaps here")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    add_store_options(p)
    add_cache_option(p)
    p.set_defaults(func=explain_cmd)


def explain_cmd(args: argparse.Namespace) -> int:
    from lmcritic.cli._common import open_store
    from lmcritic.errors import ConfigError

    if (args.case is None) == (args.worst is None):
        raise ConfigError("give either CASE or --worst K", "e.g. lmcritic explain latest sst2-12 or --worst 5")
    store = open_store(args)
    run_id = store.resolve(args.run)
    model = _load_run_model(store, run_id, cache_path(args))
    methods = _methods(args, model)
    if args.worst is not None:
        from lmcritic.interpret.run import explain_worst
        from lmcritic.stages import EXPLANATIONS_KEY

        if args.worst < 1:
            raise ConfigError(f"--worst must be >= 1, got {args.worst}")
        done = explain_worst(model, store, run_id, args.worst, methods, triggers=args.trigger,
                             faithfulness=not args.no_faithfulness)
        _show(done, args)
        print(f"stored {len(done)} explanations in run {run_id} under {EXPLANATIONS_KEY}")
        return 0
    from lmcritic.interpret.cases import explain_record

    key, record = _find_case(store, run_id, args.case, args.probe)
    done = [explain_record(model, record, methods if methods is not None else _defaults(model), probe_key=key,
                           triggers=args.trigger,
                           faithfulness=not args.no_faithfulness)]
    _show(done, args)
    return 0


def _load_run_model(store, run_id: str, cache: str | None):
    """The run's model from its stored spec, behind the shared call cache; it must be the same model."""
    from lmcritic.backends import load_model
    from lmcritic.errors import ConfigError
    from lmcritic.runner import lmcritic_home
    from lmcritic.spec import RunSpec
    from lmcritic.store.cache import CachedBackend

    info = store.get_run(run_id)
    spec = RunSpec.from_dict(info.spec, source=f"run {run_id}")
    model = CachedBackend(load_model(spec.model), Path(cache) if cache else lmcritic_home() / "cache.sqlite")
    if model.fingerprint() != info.model_fingerprint:
        raise ConfigError(f"the model named in run {run_id} no longer matches the one it ran with (fingerprint "
                          "differs)", "restore that model, or re-run the probes")
    return model


def _methods(args: argparse.Namespace, model) -> list | None:
    from lmcritic.interpret import attributor

    if not args.method:
        return None if args.worst is not None else _defaults(model)
    return [attributor(m, **({"n_steps": args.ig_steps} if m == "integrated_gradients" and args.ig_steps else {}))
            for m in args.method]


def _defaults(model):
    from lmcritic.interpret.run import default_methods

    return default_methods(model)


def _find_case(store, run_id: str, case: str, probe: str | None):
    from lmcritic.errors import UnknownNameError

    keys = [p.probe_key for p in store.probe_runs(run_id, kind="probe")]
    if probe is None and "/" in case and case.split("/", 1)[0] in keys:
        probe, case = case.split("/", 1)
    hits = [(k, r) for k in ([probe] if probe else keys) for r in store.records(run_id, k) if r.case_id == case]
    if not hits:
        raise UnknownNameError(f"no case {case!r} in run {run_id}" + (f" probe {probe}" if probe else ""),
                               f"list cases with `lmcritic show {run_id} --cases PROBE`")
    if len(hits) > 1:
        raise UnknownNameError(f"case {case!r} is in several probes: {', '.join(k for k, _ in hits)}",
                               "pass --probe KEY or PROBE/CASE")
    return hits[0]


def _show(done: list, args: argparse.Namespace) -> None:
    if args.json:
        from lmcritic._serde import to_jsonable

        print(json.dumps(to_jsonable(done), indent=2, ensure_ascii=False))
    else:
        from lmcritic.interpret._text import print_explanations

        print_explanations(done)
    if args.html:
        from lmcritic.interpret.html import page_html

        Path(args.html).write_text(page_html(done), encoding="utf-8")
        print(f"wrote {args.html}")
