"""The default scan, before and after: ``lmcritic scan --model smollm2-135m`` of a base commit against this tree.

    .venv/bin/python benchmarks/bench_scan.py                       # base b3604fc, one ABAB round (4 scans)
    .venv/bin/python benchmarks/bench_scan.py --repeats 1 --probe safety.toxicity --no-stages   # a quick look

The base version is a git worktree of ``--base-commit`` (made under benchmarks/.work/ when missing) or
``--base PATH``; both versions run with this interpreter, ``PYTHONPATH`` set to their own ``src``. Each scan gets a
fresh ``LMCRITIC_HOME`` (empty call cache and run store) whose ``models/`` links one shared model cache, so both
sides compute everything and neither loads a GGUF. Runs are interleaved (base, new, new, base, ...). Reported:
wall seconds of the whole command and CPU seconds of its process (less sensitive to other load on a shared
machine), the run's own stored per-probe seconds, the machine's load average at each start, and whether the two
versions found the same things: the same findings (probe, name, verdict, severity, n; estimates to 1e-4, except
the efficiency probe's, which are measured times) and the same cases (ids and pass/fail per probe; generated
texts equal).
Writes benchmarks/results/scan_<stamp>.json and scan_latest.md.
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

SIDES = ("base", "new")
TOL = 1e-4
TIMING_PROBES = ("performance.efficiency",)  # their estimates are measured times: compared on verdict and n only


def base_tree(args) -> Path:
    if args.base:
        return Path(args.base).resolve()
    dest = HERE / ".work" / f"scan-base-{args.base_commit[:12]}"
    if not (dest / "src" / "lmcritic").is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(dest), args.base_commit],
                       check=True, capture_output=True)
    return dest


def shared_models(args) -> Path:
    """One dequantized SmolLM2 for every run (built here once if missing)."""
    models = Path(args.models).resolve()
    if not (models / "smollm2-135m" / "config.json").is_file():
        home = models.parent
        subprocess.run([sys.executable, "-c", "from lmcritic.backends import load_model; load_model('smollm2-135m')"],
                       check=True, env={**os.environ, "LMCRITIC_HOME": str(home), "PYTHONPATH": str(ROOT / "src")})
    return models


def scan(src: Path, models: Path, args, log: Path) -> dict:
    """One scan in a fresh home; (wall, child CPU, home)."""
    home = Path(tempfile.mkdtemp(prefix="lmc-scan-", dir=args.work))
    (home / "models").symlink_to(models)
    cmd = [sys.executable, "-m", "lmcritic.cli.main", "scan", "--model", "smollm2-135m", "--no-progress",
           *[x for p in args.probe for x in ("--probe", p)], *(["--no-stages"] if args.no_stages else [])]
    env = {**os.environ, "LMCRITIC_HOME": str(home), "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    load = os.getloadavg()
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=str(home))
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "exit": os.waitstatus_to_exitcode(status),
            "loadavg": load, "home": str(home), "log": str(log)}


# -- what a run found ---------------------------------------------------------------------------------
def run_contents(home: str) -> dict:
    conn = sqlite3.connect(f"file:{home}/runs.sqlite?mode=ro", uri=True)
    run_id, timings = conn.execute("SELECT id, timings_json FROM runs ORDER BY created DESC LIMIT 1").fetchone()
    probes = {k: (s, e) for k, s, e in conn.execute(
        "SELECT probe_key, status, elapsed_s FROM probe_runs WHERE run_id = ? ORDER BY rowid", (run_id,))}
    findings = [(p, n, v, sev, json.loads(est) if est else None) for p, n, v, sev, est in conn.execute(
        "SELECT probe, name, verdict, severity, estimate_json FROM findings WHERE run_id = ? ORDER BY probe_key, seq",
        (run_id,))]
    cases: dict[str, dict] = {}
    for key, cid, passed, out in conn.execute(
            "SELECT probe_key, case_id, passed, output_json FROM cases WHERE run_id = ?", (run_id,)):
        cases.setdefault(key, {})[cid] = (passed, _texts(json.loads(out)))
    conn.close()
    return {"run_id": run_id, "timings": json.loads(timings) if timings else {}, "probes": probes,
            "findings": findings, "cases": cases}


def _texts(output: dict) -> list[str]:
    """The generated texts of a case (what sampled/greedy decoding produced), for the same-outputs check."""
    keys = ("samples", "completion", "generation", "response", "output", "text", "answer")
    out = []
    for k in keys:
        v = output.get(k)
        out += [v] if isinstance(v, str) else [x for x in v if isinstance(x, str)] if isinstance(v, list) else []
    return out


def compare(a: dict, b: dict) -> dict:
    """Findings and cases of two runs: what differs (empty lists: the same)."""
    fa, fb = _by_name(a["findings"]), _by_name(b["findings"])
    diff_findings = [f"{k[0]}:{k[1]}" for k in sorted(set(fa) | set(fb)) if not _same_finding(fa.get(k), fb.get(k))]
    renamed = sorted(f"{fa[k][1]} -> {fb[k][1]}" for k in set(fa) & set(fb)
                     if fa[k][1] != fb[k][1] and _same_finding(fa[k], fb[k]))
    diff_cases, diff_texts = [], []
    for key in sorted(set(a["cases"]) | set(b["cases"])):
        ca, cb = a["cases"].get(key, {}), b["cases"].get(key, {})
        if set(ca) != set(cb) or any(ca[c][0] != cb[c][0] for c in ca):
            diff_cases.append(key)
        diff_texts += [f"{key}/{c}" for c in ca if c in cb and ca[c][1] != cb[c][1]]
    return {"n_findings": [len(fa), len(fb)], "n_cases": [sum(map(len, a["cases"].values())),
                                                          sum(map(len, b["cases"].values()))],
            "differing_findings": diff_findings, "renamed_findings": renamed, "differing_case_sets": diff_cases,
            "differing_texts": diff_texts,
            "same": not (diff_findings or diff_cases or diff_texts)}


def _by_name(findings: list) -> dict:
    """Findings keyed by (probe, name) with the name scheme's separators made one ('invariance:casing' and
    'invariance/casing' are the same finding, renamed); a name both ways in one run keeps its own key."""
    out: dict = {}
    for f in findings:
        key = (f[0], f[1].replace(":", "/"))
        out[key if key not in out else (f[0], f[1])] = f
    return out


def _same_finding(x, y) -> bool:
    if x is None or y is None:
        return x is y
    if x[2:4] != y[2:4] or (x[4] is None) != (y[4] is None):
        return False
    if x[4] is None:
        return True
    ex, ey = x[4], y[4]
    timing = x[0] in TIMING_PROBES
    return ex.get("n") == ey.get("n") and (timing or all(
        _close(ex.get(k), ey.get(k)) for k in ("value", "ci_low", "ci_high")))


def _close(u, v) -> bool:
    if isinstance(u, (int, float)) and isinstance(v, (int, float)):
        return abs(u - v) <= TOL * max(1.0, abs(u), abs(v))
    return u == v


# -- report ---------------------------------------------------------------------------------------------
def summarize(res: dict) -> None:
    by = {s: [r for r in res["runs"] if r["side"] == s] for s in SIDES}
    med = {s: {k: common.median([r[k] for r in by[s]]) for k in ("wall_s", "cpu_s")} for s in SIDES}
    per_probe: dict[str, dict] = {}
    for s in SIDES:
        for r in by[s]:
            for key, (_, secs) in r["contents"]["probes"].items():
                per_probe.setdefault(key, {}).setdefault(s, []).append(secs or 0.0)
    res["summary"] = {
        "median": med, "ratio_wall": med["new"]["wall_s"] / med["base"]["wall_s"],
        "ratio_cpu": med["new"]["cpu_s"] / med["base"]["cpu_s"],
        "per_probe_median_s": {k: {s: common.median(v.get(s, [])) for s in SIDES} for k, v in per_probe.items()},
        "comparisons": res.pop("comparisons")}


def markdown(res: dict) -> str:
    s, m = res["summary"], res["machine"]
    comps = s["comparisons"]
    same = all(c["same"] for c in comps)
    title = f"# Default scan, base {res['base_commit']} vs {res.get('new_commit', 'this tree')} — {res['stamp']}"
    lines = [title, "", "Raw numbers: `{json}`. Command: `.venv/bin/python benchmarks/bench_scan.py "
             + " ".join(res["argv"]) + "`",
             "", f"Machine: {m['cpu']}, nproc={m['nproc']}, OMP threads {res['threads'] or 'default'}; 1-min load "
             f"average at each start: {common.load_text([r['loadavg'] for r in res['runs']])} (end "
             f"{m['loadavg_end'][0]:.2f}). Order: {' '.join(r['side'] for r in res['runs'])}.", "",
             "| side | median wall s | median CPU s | runs |", "|---|---:|---:|---|",
             *(f"| {side} | {s['median'][side]['wall_s']:.1f} | {s['median'][side]['cpu_s']:.1f} | "
               + ", ".join(f"{r['contents']['run_id']} ({r['wall_s']:.0f} s)" for r in res["runs"] if r["side"] == side)
               + " |" for side in SIDES), "",
             f"New / base: **{100 * s['ratio_wall']:.0f}%** of the wall time ({100 * s['ratio_cpu']:.0f}% of the CPU "
             "time); target ≤ 50%.", "",
             f"Same findings and cases in every base/new pair: **{'yes' if same else 'NO'}** "
             f"({comps[0]['n_findings'][0]} findings, {comps[0]['n_cases'][0]} cases)." if comps else "", ""]
    for c in comps:
        if not c["same"]:
            lines.append(f"- differing findings ({len(c['differing_findings'])}): {c['differing_findings']}; case "
                         f"sets {c['differing_case_sets']}; texts {c['differing_texts'][:20]}")
        if c.get("renamed_findings"):
            lines.append(f"- renamed, same verdict, severity, n and estimate (to 1e-4): {c['renamed_findings']}")
    lines += ["", "Per probe and stage (median seconds stored by each run):", "",
              "| probe / stage | base s | new s | new / base |", "|---|---:|---:|---:|"]
    for key, v in sorted(s["per_probe_median_s"].items(), key=lambda kv: -kv[1].get("base", 0)):
        b, n = v.get("base", 0.0), v.get("new", 0.0)
        lines.append(f"| {key} | {b:.1f} | {n:.1f} | {n / b:.2f} |" if b else f"| {key} | {b:.1f} | {n:.1f} | |")
    return "\n".join(lines) + "\n"


def _head(tree: Path) -> str:
    """The commit a checkout is at (``+`` when it has uncommitted changes to tracked files)."""
    git = ["git", "-C", str(tree)]
    sha = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "src"], capture_output=True).returncode != 0
    return sha + ("+" if dirty else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-commit", default="b3604fc", help="the version to compare against (default: b3604fc)")
    ap.add_argument("--base", help="an existing checkout of the base version instead of a worktree made here")
    ap.add_argument("--repeats", type=int, default=2, help="scans per side, interleaved (default 2: base new new base)")
    ap.add_argument("--probe", action="append", default=[], help="only these probes (default: the whole suite)")
    ap.add_argument("--no-stages", action="store_true", help="skip the stages (explain, diagnose)")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS for both sides (default: torch's own choice)")
    ap.add_argument("--models", default=str(Path(os.environ.get("LMCRITIC_HOME") or ROOT / ".lmcritic") / "models"),
                    help="the shared model cache (default: $LMCRITIC_HOME/models)")
    ap.add_argument("--work", default=str(HERE / ".work" / "scan-homes"))
    ap.add_argument("--keep", action="store_true", help="keep each run's LMCRITIC_HOME")
    args = ap.parse_args(argv)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    srcs = {"base": base_tree(args) / "src", "new": ROOT / "src"}
    models = shared_models(args)
    res = {"stamp": common.stamp(), "argv": sys.argv[1:], "machine": common.machine(), "threads": args.threads,
           "base_commit": args.base_commit if not args.base else _head(Path(args.base)), "new_commit": _head(ROOT),
           "runs": [], "comparisons": []}
    logs = HERE / ".work" / "scan-logs"
    logs.mkdir(parents=True, exist_ok=True)
    last: dict[str, dict] = {}
    for i, side in enumerate(common.abab(args.repeats, SIDES)):
        run = scan(srcs[side], models, args, logs / f"{res['stamp']}-{i}-{side}.log")
        run["contents"] = run_contents(run["home"]) if run["exit"] == 0 else {"run_id": None, "probes": {}}
        print(f"{side:>4}: {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s cpu, exit {run['exit']}, "
              f"run {run['contents']['run_id']} (load {run['loadavg'][0]:.2f})", flush=True)
        if run["exit"] != 0:
            raise SystemExit(f"the {side} scan failed: see {run['log']}")
        last[side] = run["contents"]
        if len(last) == 2 and i % 2 == 1:
            res["comparisons"].append(compare(last["base"], last["new"]))
        if not args.keep:
            shutil.rmtree(run["home"], ignore_errors=True)
        res["runs"].append({"side": side, **{k: v for k, v in run.items() if k != "contents"},
                            "contents": {k: run["contents"][k] for k in ("run_id", "probes", "timings", "findings")}})
    res["machine"]["loadavg_end"] = os.getloadavg()
    summarize(res)
    common.publish("scan", res, markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
