"""``lmcritic explain RUN CASE`` on one SST-2 case of SmolLM2: the default methods and integrated gradients.

    .venv/bin/python benchmarks/bench_explain.py [--repeats 2] [--threads 1] [--base PATH]

A fresh ``LMCRITIC_HOME`` (its ``models/`` linked to the shared model cache) gets a small stored run
(``lmcritic scan --probe performance.sst2 --set performance.sst2.n=N --no-stages``); then the command a user types
is timed as a whole process (Python start, model load, the explanation, faithfulness), the default methods and
``--method integrated_gradients`` interleaved (default, IG, IG, default, ...). The first call of each fills the
call cache with its faithfulness queries; later calls find them there (what the issue called "cache warm").
Reported per call: wall seconds, the seconds each method reports for itself (``timings.total_s``), IG's step
count and convergence delta, faithfulness (ERASER comprehensiveness / sufficiency against random orders), and
the load average at its start. ``--base PATH``: also time another checkout's ``explain`` on the same run and
case (same interpreter, ``PYTHONPATH`` set to its ``src``), interleaved with this tree's.
Writes benchmarks/results/explain_<stamp>.json and explain_latest.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _bench_common as common  # noqa: E402

COMMANDS = {"default": [], "integrated_gradients": ["--method", "integrated_gradients"]}
TARGETS_S = {"default": 5.0, "integrated_gradients": 20.0}


def env_for(src: Path, home: Path, threads: int | None) -> dict:
    env = {**os.environ, "LMCRITIC_HOME": str(home), "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def lmcritic(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmcritic.cli.main", *args], env=env, cwd=str(cwd),
                          capture_output=True, text=True)


def make_run(home: Path, env: dict, n: int) -> tuple[str, str]:
    """A stored SST-2 run of n cases; (run id, the first case's id)."""
    out = lmcritic(["scan", "--model", "smollm2-135m", "--probe", "performance.sst2", "--set",
                    f"performance.sst2.n={n}", "--no-stages", "--no-progress"], env, home)
    if out.returncode != 0:
        raise SystemExit(f"the scan failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    conn = sqlite3.connect(f"file:{home}/runs.sqlite?mode=ro", uri=True)
    run_id = conn.execute("SELECT id FROM runs ORDER BY created DESC LIMIT 1").fetchone()[0]
    case = conn.execute("SELECT case_id FROM cases WHERE run_id = ? AND probe_key = 'performance.sst2' "
                        "ORDER BY rowid LIMIT 1", (run_id,)).fetchone()[0]
    conn.close()
    return run_id, case


def explain(side: str, what: str, run_id: str, case: str, env: dict, home: Path) -> dict:
    load = os.getloadavg()
    t0 = time.perf_counter()
    out = lmcritic(["explain", run_id, case, "--json", *COMMANDS[what]], env, home)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{side} explain ({what}) failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return {"side": side, "what": what, "wall_s": wall, "loadavg": load, **summary(json.loads(out.stdout))}


def summary(done: list) -> dict:
    """Per method: its own seconds, steps, delta; faithfulness of each."""
    side = done[0]["original"]
    methods = {e["method"]: {"seconds": (e.get("timings") or {}).get("total_s"), "n_steps": e.get("n_steps"),
                             "delta": e.get("delta"), "score": e.get("score"),
                             "baseline_score": e.get("baseline_score")} for e in side["explanations"]}
    for f in side.get("faithfulness") or []:
        methods.setdefault(f["method"], {}).update(
            comprehensiveness=f["comprehensiveness"], sufficiency=f["sufficiency"],
            random_comprehensiveness=f["random_comprehensiveness"], random_sufficiency=f["random_sufficiency"],
            faithfulness_s=f["seconds"], faithfulness_queries=f["n_queries"])
    return {"methods": methods, "target": side["target"]}


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"# lmcritic explain on one SST-2 case of SmolLM2 — {res['stamp']}", "",
             "Raw numbers: `{json}`. Command: `.venv/bin/python benchmarks/bench_explain.py "
             + " ".join(res["argv"]) + "`", "",
             f"Machine: {m['cpu']}, nproc={m['nproc']}, OMP threads {res['threads'] or 'default'}. Run "
             f"{res['run_id']}, case `{res['case']}` ({res['commits']}). Each call is a whole `lmcritic explain` "
             "process: Python start and model load included.", "",
             "| side | methods | call | wall s | load | method s (own timing) | IG steps | IG delta | "
             "comprehensiveness / sufficiency (random) |", "|---|---|---:|---:|---:|---|---:|---:|---|"]
    seen: dict[tuple[str, str], int] = {}
    for c in res["calls"]:
        k = (c["side"], c["what"])
        seen[k] = seen.get(k, 0) + 1
        ms = c["methods"]
        own = ", ".join(f"{n} {v['seconds']:.2f}" for n, v in ms.items() if v.get("seconds") is not None)
        ig = ms.get("integrated_gradients", {})
        faith = "; ".join(f"{n} {v['comprehensiveness']:.3f} / {v['sufficiency']:.3f} "
                          f"({v['random_comprehensiveness']:.3f} / {v['random_sufficiency']:.3f})"
                          for n, v in ms.items() if "comprehensiveness" in v)
        delta = f"{ig['delta']:.2e}" if ig.get("delta") is not None else ""
        lines.append(f"| {c['side']} | {c['what']} | {seen[k]} | {c['wall_s']:.1f} | {c['loadavg'][0]:.2f} | {own} | "
                     f"{ig.get('n_steps') or ''} | {delta} | {faith} |")
    lines += ["", "Targets (issue 20): integrated gradients ≤ 20 s with its convergence delta, default methods ≤ 5 s."]
    for (side, what), target in ((k, TARGETS_S[k[1]]) for k in sorted(seen)):
        walls = [c["wall_s"] for c in res["calls"] if (c["side"], c["what"]) == (side, what)]
        own = [sum(v["seconds"] for v in c["methods"].values() if v.get("seconds") is not None)
               for c in res["calls"] if (c["side"], c["what"]) == (side, what)]
        lines.append(f"- {side} {what}: median wall {common.median(walls):.1f} s, median method time "
                     f"{common.median(own):.2f} s (target {target:g} s)")
    return "\n".join(lines) + "\n"


def _head(tree: Path) -> str:
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="calls per command and side (default 2)")
    ap.add_argument("--n", type=int, default=8, help="SST-2 cases in the stored run (default 8)")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS (default: torch's own choice)")
    ap.add_argument("--base", help="another checkout to time on the same run and case")
    ap.add_argument("--models", default=str(Path(os.environ.get("LMCRITIC_HOME") or ROOT / ".lmcritic") / "models"))
    ap.add_argument("--work", default=str(HERE / ".work" / "explain-homes"))
    args = ap.parse_args(argv)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="lmc-explain-", dir=args.work))
    (home / "models").symlink_to(Path(args.models).resolve())
    trees = {"new": ROOT, **({"base": Path(args.base).resolve()} if args.base else {})}
    envs = {side: env_for(tree / "src", home, args.threads) for side, tree in trees.items()}
    run_id, case = make_run(home, envs["new"], args.n)
    res = {"stamp": common.stamp(), "argv": sys.argv[1:], "machine": common.machine(), "threads": args.threads,
           "run_id": run_id, "case": case, "commits": ", ".join(f"{s} {_head(t)}" for s, t in trees.items()),
           "calls": []}
    for what in common.abab(args.repeats, tuple(COMMANDS)):
        for side in trees:
            call = explain(side, what, run_id, case, envs[side], home)
            print(f"{side} {what}: {call['wall_s']:.1f} s (load {call['loadavg'][0]:.2f})", flush=True)
            res["calls"].append(call)
    res["machine"]["loadavg_end"] = os.getloadavg()
    shutil.rmtree(home, ignore_errors=True)
    common.publish("explain", res, markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
