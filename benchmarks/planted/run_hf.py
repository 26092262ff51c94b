"""Planted-defect benchmark on real fine-tuned transformers: does the default user flow name the cause we built in?

For every cause × seed (``hf_plants.py``): fine-tune a MiniLM classifier on the planted training rows
(``minilm.py``, cached by content), then, as a user would, in a fresh ``LMCRITIC_HOME``::

    lmcritic scan --model DIR --data eval.tsv --no-progress
    lmcritic diagnose latest --train DIR/train.tsv --format json

and read the diagnosis-wide ranking of causes: where the planted hypothesis ranks (supported causes first), whether
its culprit is the planted one (group and direction, token and label, register, phenomenon, memorised rows), and
for the clean control every supported cause (a high-severity one is a false alarm). Top-1 / top-2 get Wilson 95%
intervals. Results: ``benchmarks/results/planted_hf_latest.{json,md}``; models under ``benchmarks/.work/hf_models``.

    LMCRITIC_SHARED_DATA=/path/to/shared/data .venv/bin/python benchmarks/planted/run_hf.py --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hf_plants  # noqa: E402
import minilm  # noqa: E402

ROOT = HERE.parents[1]
WORK = ROOT / "benchmarks" / ".work"
RESULTS = ROOT / "benchmarks" / "results"
SCAN_ARGS = ["--no-stages", "--skip", "robustness.attack"]


def model_for(plant: hf_plants.HFPlant, config: minilm.TrainConfig) -> tuple[Path, float]:
    """The fine-tuned model folder of a plant (trained now unless cached) and the training seconds spent now."""
    name = plant.reuse_model_of or plant.cause
    rows = plant.train if plant.reuse_model_of is None else hf_plants.build(plant.reuse_model_of, plant.seed).train
    out = WORK / minilm.work_subdir("hf_models") / f"{name}-s{plant.seed}"
    t0 = time.perf_counter()
    minilm.finetune(rows, out, config, log=lambda m: print(f"  {m}", flush=True))
    return out, time.perf_counter() - t0


def run_trial(plant: hf_plants.HFPlant, model: Path, extra: list[str], rediagnose: bool = False,
              scan_only: bool = False) -> dict | None:
    """scan + diagnose through the CLI in a fresh home; returns the diagnosis JSON and timings. ``rediagnose``:
    keep the trial's stored scan (same model and data) and run only ``diagnose`` again (diagnosis code changed).
    ``scan_only``: stop after the scan (its seconds go to scan_s.json); a later ``rediagnose`` completes the trial."""
    trial = WORK / minilm.work_subdir("hf_trials") / f"{plant.cause}-s{plant.seed}"
    trial.mkdir(parents=True, exist_ok=True)
    eval_path = minilm.write_tsv(plant.eval, trial / "eval.tsv")
    env = {**os.environ, "LMCRITIC_HOME": str(trial / "home"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    cli = [sys.executable, "-m", "lmcritic.cli.main"]
    t0 = time.perf_counter()
    stored = trial / "scan_s.json"
    if rediagnose and not stored.is_file() and (trial / "row.json").is_file():
        stored = trial / "row.json"  # a trial run before scan_s.json existed
    if rediagnose and stored.is_file():
        scan = subprocess.CompletedProcess([], 0)
        t0 -= json.loads(stored.read_text())["scan_s"]
    else:
        scan = subprocess.run([*cli, "scan", "--model", str(model), "--data", str(eval_path), "--no-progress",
                               *extra], env=env, capture_output=True, text=True)
        (trial / "scan.txt").write_text(scan.stdout + scan.stderr)
        stored.write_text(json.dumps({"scan_s": round(time.perf_counter() - t0, 1), "rc": scan.returncode,
                                      "load_15min": round(os.getloadavg()[2], 1), "run_id": _newest(trial)}))
    t1 = time.perf_counter()
    if scan_only:
        if scan.returncode != 0:
            raise RuntimeError(f"{plant.cause} seed {plant.seed}: scan rc={scan.returncode}; see {trial}")
        return None
    diag = subprocess.run([*cli, "diagnose", scan_run(trial, stored), "--train", str(model / "train.tsv"),
                           "--format", "json"], env=env, capture_output=True, text=True)
    (trial / "diagnosis.json").write_text(diag.stdout)
    (trial / "diagnose.stderr.txt").write_text(diag.stderr)
    if scan.returncode != 0 or diag.returncode != 0:
        raise RuntimeError(f"{plant.cause} seed {plant.seed}: scan rc={scan.returncode}, "
                           f"diagnose rc={diag.returncode}; "
                           f"see {trial}")
    return {"graph": json.loads(diag.stdout), "scan_s": round(t1 - t0, 1),
            "diagnose_s": round(time.perf_counter() - t1, 1),
            "trial": str(trial.relative_to(ROOT))}


def _newest(trial: Path) -> str | None:
    from lmcritic.store.runs import RunStore

    path = trial / "home" / "runs.sqlite"
    runs = RunStore(path, create=False).list_runs(1) if path.is_file() else []
    return runs[0].id if runs else None


def scan_run(trial: Path, stored: Path) -> str:
    """The run the trial's scan made, as recorded beside its timing (a later command in the trial's home, such as
    a mitigation tried by hand, must not become what "latest" diagnoses); for trials from before that record, the
    run their last diagnosis read; else "latest"."""
    for path in (stored, trial / "diagnosis.json"):
        try:
            found = json.loads(path.read_text()).get("run_id") if path.is_file() else None
        except json.JSONDecodeError:
            found = None
        if found:
            return str(found)
    return "latest"


def judge(plant: hf_plants.HFPlant, graph: dict) -> dict:
    ranking = graph.get("ranking") or []
    supported = [r for r in ranking if r["verdict"] == "supported"]
    out = {"ranking": [_short(r) for r in ranking[:6]], "supported": [_short(r) for r in supported],
           "false_alarm": plant.hypothesis is None and any(r["severity"] == "high" for r in supported)}
    if plant.hypothesis is None:
        return {**out, "rank": None, "top1": None, "top2": None, "culprit_ok": None}
    hits = [i for i, r in enumerate(ranking) if r["cause"] == plant.hypothesis and r["verdict"] == "supported"]
    rank = hits[0] + 1 if hits else None
    right = [i for i in hits if culprit_ok(plant.culprit, ranking[i].get("culprit"))]
    return {**out, "rank": rank, "top1": rank == 1, "top2": rank is not None and rank <= 2,
            "culprit_ok": bool(right) and right[0] == hits[0], "culprit_rank": right[0] + 1 if right else None}


def culprit_ok(expected: dict, got: dict | None) -> bool:
    """Does the named culprit match the plant: the same kind and value, and for an identity group the same
    attribute, contrast and direction (group A pushed toward A's label, or B toward the other label: failures
    naming B fail the other way, and the diagnosis names the group its failures over-represent); for a token the
    same label; a length shortcut, the label long inputs are pushed toward; a prior, the label it favours; memorised
    rows: any."""
    if not got or got.get("kind") != expected["kind"]:
        return False
    kind = expected["kind"]
    if kind == "identity_group":  # A pushed toward the label, or (the same bias) B pushed toward the other one
        want, same = (expected["attribute"], expected["value"], expected["contrast"]), expected.get("label")
        named = (got.get("attribute"), got.get("value"), got.get("contrast"))
        return named == want or (named == (want[0], want[2], want[1]) and got.get("label") not in (None, same))
    if kind == "token":
        return got.get("value") == expected["value"] and got.get("label") == expected["label"]
    if kind == "length" and expected.get("label"):  # a length shortcut: the label long inputs are pushed toward
        return got.get("label") == expected["label"]
    if kind == "prior":  # the label the prior favours
        return got.get("value") == expected["value"]
    if kind in ("register", "label_noise"):
        return str(got.get("value", "")).startswith(expected["value"])
    return True


def _short(r: dict) -> dict:
    c = r.get("culprit") or {}
    e = c.get("effect") or {}
    return {"cause": r["cause"], "verdict": r["verdict"], "severity": r["severity"],
            "confidence": r["confidence"], "culprit": {k: c.get(k) for k in ("kind", "attribute", "value", "contrast",
                                                                            "label") if c.get(k) is not None},
            "effect": [e.get("value"), e.get("ci_low"), e.get("ci_high")] if e else None, "defects": r["defects"]}


def summarize(rows: list[dict], dev_seeds: list[int]) -> dict:
    """Top-1/top-2/culprit rates with Wilson CIs over all trials, the development seeds (seen while the diagnosis
    was being written or tuned) and the held-out ones (never looked at before this run)."""
    from lmcritic import stats

    out = {}
    for name, subset in (("all", rows), ("dev_seeds", [r for r in rows if r["seed"] in dev_seeds]),
                         ("held_out_seeds", [r for r in rows if r["seed"] not in dev_seeds])):
        planted = [r for r in subset if r["hypothesis"] is not None]
        part = {}
        for key in ("top1", "top2", "culprit_ok", "first_right"):
            k, n = sum(_hit(r, key) for r in planted), len(planted)
            lo, hi = stats.wilson(k, n)
            part[key] = {"k": k, "n": n, "rate": k / n if n else None, "ci_low": lo, "ci_high": hi}
        clean = [r for r in subset if r["hypothesis"] is None]
        part["clean_false_alarms"] = sum(r["false_alarm"] for r in clean)
        part["clean_trials"] = len(clean)
        out[name] = part
    return out


def _hit(row: dict, key: str) -> bool:
    """first_right: the planted cause first and its culprit right (what the issue asks); else the row's flag."""
    return bool(row["top1"] and row["culprit_ok"]) if key == "first_right" else bool(row[key])


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = ["# Planted-defect benchmark on fine-tuned MiniLM classifiers", "",
             f"Run {result['created']}, seeds {result['seeds']} (development seeds {result['dev_seeds']}: results "
             f"seen while the diagnosis was written or tuned; the others were not). Each trial: `lmcritic scan "
             f"--model DIR --data eval.tsv`, then `lmcritic diagnose "
             f"latest --train DIR/train.tsv`. Rank: position of the planted hypothesis among the diagnosis-wide "
             f"causes when it is supported (supported causes first); culprit: the named culprit matches the plant.",
             "", "| trials | top-1 [Wilson 95% CI] | top-2 | culprit right | first with the right culprit | clean: "
             "high-severity false alarms |", "|---|---|---|---|---|---|"]
    for name, part in s.items():
        cells = [f"{part[k]['k']}/{part[k]['n']} [{part[k]['ci_low']:.2f}, {part[k]['ci_high']:.2f}]"
                 for k in ("top1", "top2", "culprit_ok", "first_right")]
        lines.append(f"| {name} | {' | '.join(cells)} | {part['clean_false_alarms']}/{part['clean_trials']} |")
    lines += ["", "| cause | seed | planted | rank | culprit | first cause (verdict, severity) | supported causes | "
              "train s | scan s | diagnose s | load (15 min) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["trials"]:
        first = r["ranking"][0] if r["ranking"] else None
        first_txt = f"{first['cause']} ({first['verdict']}, {first['severity']}) {_culprit_txt(first)}" \
            if first else "-"
        sup = "; ".join(f"{x['cause']} {x['severity']} {_culprit_txt(x)}" for x in r["supported"]) or "none"
        cause = r["cause"] + (f" (run {r['earlier_run']})" if r.get("earlier_run") else "")
        lines.append(f"| {cause} | {r['seed']} | {r['description']} | {r['rank']} | {r['culprit_ok']} | "
                     f"{first_txt} | {sup} | {r['train_s']} | {r['scan_s']} | {r['diagnose_s']} | "
                     f"{r.get('load_15min', '?')} |")
    return "\n".join(lines) + "\n"


def _culprit_txt(r: dict) -> str:
    c = r.get("culprit") or {}
    e = r.get("effect")
    eff = f" {e[0]:+.2f} [{e[1]:+.2f}, {e[2]:+.2f}]" if e and e[0] is not None else ""
    return f"`{c.get('kind', '')}:{c.get('attribute', '') + ':' if c.get('attribute') else ''}{c.get('value', '')}" \
           f"{'/' + c['contrast'] if c.get('contrast') and c.get('kind') == 'identity_group' else ''}" \
           f"{'→' + c['label'] if c.get('label') and c.get('kind') == 'token' else ''}`{eff}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--causes", nargs="*", choices=sorted(hf_plants.BUILDERS), default=list(hf_plants.BUILDERS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--dev-seeds", type=int, nargs="*", default=[0, 1, 2],
                    help="seeds whose results were seen during development (reported apart from the held-out ones)")
    ap.add_argument("--train-only", action="store_true", help="only fine-tune (and cache) the models")
    ap.add_argument("--scan-arg", action="append", default=None,
                    help="extra arguments for lmcritic scan (default: --no-stages --skip robustness.attack: the "
                    "diagnosis runs right after, and adversarial-search failures are not diagnosed)")
    ap.add_argument("--rediagnose", action="store_true",
                    help="reuse each trial's stored scan and run only diagnose again (after a diagnosis change)")
    ap.add_argument("--scan-only", action="store_true",
                    help="train (or reuse) and scan only; --rediagnose later runs the diagnosis on that scan")
    ap.add_argument("--threads", type=int, default=minilm.TrainConfig.threads,
                    help="torch threads for fine-tuning (the scan and diagnosis follow OMP_NUM_THREADS)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--collect", action="store_true",
                    help="run nothing: summarise the stored per-trial rows of --causes x --seeds (each trial writes "
                    "hf_trials/CAUSE-sSEED/row.json, so trials can run as separate commands)")
    ap.add_argument("--earlier", type=Path, default=None,
                    help="with --collect: a results JSON of an earlier run whose rows fill trials not run since "
                    "(marked in the table as from that run)")
    ap.add_argument("--recipe", choices=sorted(minilm.RECIPES), default="planted",
                    help="how the planted models are fine-tuned (memorised: 6 epochs, no frozen layers; its own "
                    "folders)")
    args = ap.parse_args(argv)
    minilm.use_recipe(args.recipe)
    config = minilm.recipe_config(threads=args.threads)
    rows = []
    for seed in args.seeds:
        for cause in args.causes:
            if args.collect:
                path = WORK / minilm.work_subdir("hf_trials") / f"{cause}-s{seed}" / "row.json"
                rows += [json.loads(path.read_text())] if path.is_file() else _earlier(args.earlier, cause, seed)
                continue
            row = trial_row(cause, seed, config, args)
            if row is not None:
                rows.append(row)
    if args.train_only or args.scan_only:
        return 0
    result = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "seeds": args.seeds, "dev_seeds": args.dev_seeds,
              "train_config": config.__dict__, "trials": rows, "summary": summarize(rows, args.dev_seeds)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "planted_hf_latest.json").write_text(json.dumps(result, indent=2))
    (args.out / "planted_hf_latest.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def _earlier(path: Path | None, cause: str, seed: int) -> list[dict]:
    """The row of ``cause`` x ``seed`` from an earlier results file, marked with that run's time."""
    if path is None or not path.is_file():
        return []
    result = json.loads(path.read_text())
    return [{**r, "earlier_run": result["created"]} for r in result["trials"]
            if r["cause"] == cause and r["seed"] == seed]


def trial_row(cause: str, seed: int, config: minilm.TrainConfig, args: argparse.Namespace) -> dict | None:
    """Train (or reuse) one plant's model and, unless --train-only, run and judge its trial (row.json beside it)."""
    plant = hf_plants.build(cause, seed)
    print(f"seed {seed} {cause}: {plant.description}", flush=True)
    model, train_s = model_for(plant, minilm.TrainConfig(**{**config.__dict__, "seed": seed}))
    if args.train_only:
        return None
    trial = run_trial(plant, model, SCAN_ARGS if args.scan_arg is None else args.scan_arg, args.rediagnose,
                      args.scan_only)
    if trial is None:
        return None
    row = {"cause": cause, "seed": seed, "hypothesis": plant.hypothesis, "expected_culprit": plant.culprit,
           "description": plant.description, "model": str(model.relative_to(ROOT)),
           "train_s": round(train_s, 1), "load_15min": round(os.getloadavg()[2], 1),
           **{k: v for k, v in trial.items() if k != "graph"},
           **judge(plant, trial["graph"])}
    (ROOT / row["trial"] / "row.json").write_text(json.dumps(row, indent=2))
    print(f"  rank={row['rank']} culprit_ok={row['culprit_ok']} false_alarm={row['false_alarm']} "
          f"supported={[(x['cause'], x['severity']) for x in row['supported']]}", flush=True)
    return row


if __name__ == "__main__":
    sys.exit(main())
