"""The CLI diagnosis of every probe of a stored planted scan: the planted cause, and what else it calls supported.

``run_hf.py`` judges the diagnosis of the planted evaluation alone. The mitigation trials
(``run_mitigation_hf.py``) scan each planted model on two probes, the planted evaluation rows and a clean held-out
set (``clean``), as a user with two datasets would. This re-runs, as a user would,

    lmcritic diagnose RUN --train MODEL/train.tsv --format json

on each trial's first run (its scan before any mitigation) with the code as it is now, and reports per trial
whether the planted cause comes first with the right culprit (``run_hf.judge``) and every supported cause that is
not the planted one, with the probe its defects are on. The typos trials use the clean model, so on their
``clean`` probe anything supported is a false alarm. Costs no training: the models and scans are stored.

    LMCRITIC_SHARED_DATA=/path/to/shared/data .venv/bin/python benchmarks/planted/rediagnose_trials.py \\
        --trials benchmarks/.work/hf_mitigation --seeds 0 1 --out benchmarks/planted/results/NAME
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
import run_hf  # noqa: E402

ROOT = HERE.parents[1]


def first_run(trial: Path) -> str:
    """The trial's scan: its oldest run (the mitigated re-runs come after it)."""
    from lmcritic.store.runs import RunStore

    runs = RunStore(trial / "runs.sqlite", create=False, read_only=True).list_runs(limit=1000)
    return min(runs, key=lambda r: r.created).id


def diagnose(trial: Path, model: Path) -> tuple[dict, float]:
    env = {**os.environ, "LMCRITIC_HOME": str(trial), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lmcritic.cli.main", "diagnose", first_run(trial), "--train",
                          str(model / "train.tsv"), "--format", "json"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{trial.name}: diagnose rc={out.returncode}: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout), round(time.perf_counter() - t0, 1)


def row(cause: str, seed: int, trials: Path, models: Path) -> dict | None:
    trial = trials / f"{cause}-s{seed}"
    plant = hf_plants.build(cause, seed)
    model = models / f"{plant.reuse_model_of or cause}-s{seed}"
    if not (trial / "runs.sqlite").is_file() or not (model / "train.tsv").is_file():
        return None
    graph, secs = diagnose(trial, model)
    probes = {d["defect"]["id"]: d["defect"]["probe"] for d in graph.get("defects", [])}
    verdict = run_hf.judge(plant, graph)
    others = [{**r, "probes": sorted({probes.get(d, "?") for d in r["defects"]})} for r in verdict["supported"]
              if r["cause"] != plant.hypothesis]
    return {"cause": cause, "seed": seed, "description": plant.description, "hypothesis": plant.hypothesis,
            "first_right": bool(verdict["top1"] and verdict["culprit_ok"]), "rank": verdict["rank"],
            "culprit_ok": verdict["culprit_ok"], "first": verdict["ranking"][0] if verdict["ranking"] else None,
            "not_planted": others, "diagnose_s": secs}


def markdown(rows: list[dict], note: str) -> str:
    from lmcritic import stats

    k = sum(r["first_right"] for r in rows)
    lo, hi = stats.wilson(k, len(rows))
    alarms = sum(bool(r["not_planted"]) for r in rows)
    lines = [f"# CLI diagnosis of every probe of the stored planted scans{note}", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}. Per trial: `lmcritic diagnose RUN --train MODEL/train.tsv` "
             "on the scan of the planted evaluation rows (`performance.sst2`) and a clean held-out set (`clean`).", "",
             f"Planted cause first with the right culprit: **{k}/{len(rows)}** [{lo:.2f}, {hi:.2f}]; trials with a "
             f"supported cause that was not planted: {alarms}/{len(rows)}.", "",
             "| cause | seed | planted | first cause (verdict, severity) | rank | culprit | supported, not planted "
             "(probe) | diagnose s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f = r["first"]
        first = f"{f['cause']} ({f['verdict']}, {f['severity']}) {run_hf._culprit_txt(f)}" if f else "-"
        other = "; ".join(f"{x['cause']} {x['severity']} {run_hf._culprit_txt(x)} ({', '.join(x['probes'])})"
                          for x in r["not_planted"]) or "none"
        lines.append(f"| {r['cause']} | {r['seed']} | {r['description']} | {first} | {r['rank']} | "
                     f"{r['culprit_ok']} | {other} | {r['diagnose_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=Path, default=ROOT / "benchmarks" / ".work" / "hf_mitigation")
    ap.add_argument("--models", type=Path, default=ROOT / "benchmarks" / ".work" / "hf_models")
    ap.add_argument("--causes", nargs="*", choices=sorted(hf_plants.BUILDERS), default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", type=Path, required=True, help="results path without suffix (.json and .md written)")
    ap.add_argument("--note", default="", help="appended to the results title")
    args = ap.parse_args(argv)
    causes = args.causes or [c for c in hf_plants.BUILDERS if c != "clean"]
    rows = []
    for seed in args.seeds:
        for cause in causes:
            r = row(cause, seed, args.trials, args.models)
            if r is None:
                print(f"{cause} seed {seed}: no stored trial or model, skipped", file=sys.stderr)
                continue
            rows.append(r)
            print(f"{cause} seed {seed}: first right {r['first_right']}, not planted {len(r['not_planted'])}, "
                  f"{r['diagnose_s']} s", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    args.out.with_suffix(".md").write_text(markdown(rows, f" ({args.note})" if args.note else ""))
    print(args.out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
