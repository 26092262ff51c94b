"""Drift detection, lmcritic monitor vs Evidently, on the same synthetic log and the same windows.

    bash benchmarks/setup_evidently.sh        # once: Evidently in its own venv
    .venv/bin/python benchmarks/monitor/bench_drift.py

Both tools see windows of 500 requests and the same reference (the first 4,000 requests). lmcritic runs its
packaged alert rules plus thumbs-down per topic (``benchmarks/monitor/rules.yaml``: sequential CUSUM rules on the
rates, drift rules on distributions, every window's tests BH-adjusted at 0.01), and once more with the same rules
at 0.05, Evidently's per-test level, to compare delays at a like false-alarm budget; Evidently runs its
``DataDriftPreset`` (per-column tests at its defaults) on (a) its own text descriptors of prompt and response plus
the topic and thumbs columns, and (b) lmcritic's per-request scores, so the statistics can be compared on
identical columns. Per planted change: the detection delay (requests from the onset to the end of the first
window that alerts), and the windows of the no-change control stretch that alert (false alarms).
Results: ``benchmarks/results/monitor_drift_<stamp>.json`` and ``monitor_drift_latest.md``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks/.work/monitor"
RESULTS = ROOT / "benchmarks/results"
EV_PY = ROOT / "benchmarks/.work/venv-evidently/bin/python"
RULES = ROOT / "benchmarks/monitor/rules.yaml"
SCORE_COLUMNS = ("prompt.toxicity", "response.toxicity", "prompt.pii", "response.pii", "response.refusal",
                 "prompt.injection", "prompt.register", "prompt.register.marker_rate", "prompt.length",
                 "response.length", "prompt.language.code", "feedback.vader")
# What counts as alerting on the planted change itself: lmcritic metrics, and Evidently columns (its descriptors
# and text drift of the changed text, or the lmcritic score columns it was given).
RELEVANT = {"register": ("prompt.colloquial", "prompt.marker_rate", "prompt.embedding", "prompt.words"),
            "injection": ("prompt.injection", "prompt.injection_score", "prompt.embedding", "prompt.words"),
            "pii": ("response.pii",), "feedback": ("feedback.negative",)}
RELEVANT_EVIDENTLY = {
    "register": ("prompt", "prompt_length", "prompt_words", "prompt_nonletter", "prompt.register",
                 "prompt.register.marker_rate", "prompt.length"),
    "injection": ("prompt", "prompt_length", "prompt_words", "prompt_nonletter", "prompt_injection_regexp",
                  "prompt.injection", "prompt.length"),
    "pii": ("response", "response_length", "response_words", "response_nonletter", "response_pii_regexp",
            "response.pii", "response.length"),
    "feedback": ("thumb", "feedback.vader")}


def lmcritic_side(log: Path, store_path: Path, window: int, ref_windows: int, embedding: bool,
                  embed_sample: int, rules_path: Path = ROOT / "benchmarks/monitor/rules.yaml") -> dict:
    from lmcritic.monitor.alerts import load_rules
    from lmcritic.monitor.api import build_scorer, check_store
    from lmcritic.monitor.check import CheckConfig
    from lmcritic.monitor.ingest import ingest
    from lmcritic.monitor.scoring import score_store
    from lmcritic.store.monitor import MonitorStore

    store = MonitorStore(store_path)  # a re-run reuses its stored requests, scores and embeddings
    t0 = time.perf_counter()
    report = ingest(store, [log])
    t_ingest = time.perf_counter() - t0
    scorer = build_scorer(store)
    t0, load0 = time.perf_counter(), os.getloadavg()
    n = score_store(store, scorer)
    t_score, load1 = time.perf_counter() - t0, os.getloadavg()
    t0, load0 = time.perf_counter(), os.getloadavg()
    config = CheckConfig(f"{window}req", f"first:{ref_windows}", embedding, embed_sample)
    rules = load_rules(rules_path)
    result = check_store(store, scorer, config, rules)
    t_check = time.perf_counter() - t0
    # the same rules at Evidently's per-test level (0.05), still BH-adjusted over each window's tests
    at_05 = check_store(store, scorer, config, [replace(r, significance=0.05) for r in rules])
    position = _dump_table(store, scorer.fingerprint, WORK / "requests.csv", window)
    return {"alerts": _alerts(result), "alerts_at_0.05": _alerts(at_05), "ingest_s": t_ingest, "score_s": t_score,
            "alert_positions": _positions(result, position, window),
            "check_s": t_check, "load_during_check": [load0, os.getloadavg()], "n_scored": n,
            "stored": report.total("stored"), "load_during_scoring": [load0, load1], "skipped": scorer.skipped,
            "scorers": scorer.metrics(), "tests_per_window": len(result.windows[-1].tests)}


def _alerts(result) -> dict[int, list[str]]:
    return {w.index: sorted({a.metric + (f"[{a.group}]" if a.group else "") for a in w.alerts})
            for w in result.windows}


def _positions(result, position: dict[int, int], window: int) -> dict[int, dict[str, int]]:
    """Per window, per alerting metric: the log position of the request by which its evidence sufficed
    (sequential rules), else the window's last position."""
    out: dict[int, dict[str, int]] = {}
    for w in result.windows:
        for a in w.alerts:
            name = a.metric + (f"[{a.group}]" if a.group else "")
            at = position.get(a.at_request) if a.at_request is not None else None
            pos = at if at is not None else (w.index + 1) * window - 1
            out.setdefault(w.index, {})[name] = min(pos, out.get(w.index, {}).get(name, pos))
    return out


def _dump_table(store, scorer: str, path: Path, window: int) -> dict[int, int]:
    """The per-request table Evidently reads: texts, topic, thumbs and lmcritic's scores, with the window.
    Returns each request id's position in the log."""
    position: dict[int, int] = {}
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["window", "prompt", "response", "topic", "thumb", *SCORE_COLUMNS])
        i = 0
        for chunk in store.iter_scored(scorer):
            rows = {r.id: r for r in store.requests([c[0] for c in chunk])}
            for rid, _, scores, attrs in chunk:
                rec = rows[rid].record
                w.writerow([i // window, rec.prompt, rec.response or "", attrs.get("topic", ""),
                            "" if rec.thumb is None else rec.thumb, *[scores.get(c, "") for c in SCORE_COLUMNS]])
                position[rid] = i
                i += 1
    return position


def evidently_side(window: int, ref_windows: int, modes: str) -> dict:
    if not EV_PY.exists():
        raise SystemExit("Evidently venv missing: bash benchmarks/setup_evidently.sh")
    out, table = WORK / "evidently.json", WORK / "requests.csv"
    if not modes:  # --evidently-modes "": the last run's results, only if they read this very table
        data = json.loads(out.read_text())
        if data.get("input_sha256") != _sha256(table):
            raise SystemExit(f"{out} was computed on another requests table: rerun Evidently (drop --evidently-modes)")
        return data | {"total_s": 0.0, "reused": True}
    t0 = time.perf_counter()
    digest = _sha256(table)
    subprocess.run([str(EV_PY), str(ROOT / "benchmarks/monitor/_evidently_side.py"), str(table),
                    str(ref_windows), str(out), modes], check=True)
    data = json.loads(out.read_text())
    data["total_s"], data["input_sha256"] = time.perf_counter() - t0, digest
    out.write_text(json.dumps(data))
    return data


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def delays(alerts_by_window: dict, truth: dict, window: int, relevant: dict | None) -> dict:
    """Per episode: requests from onset to the end of the first alerting window (None: missed); control: alarms."""
    out = {}
    for e in truth["episodes"]:
        wins = range(e["start"] // window, (e["end"] - 1) // window + 1)
        if e["name"] == "control":
            out["control_false_alarm_windows"] = [k for k in wins if alerts_by_window.get(k)]
            out["control_windows"] = len(wins)
            continue
        want = relevant.get(e["name"]) if relevant else None
        hit = next((k for k in wins if _hit(alerts_by_window.get(k) or [], want)), None)
        out[e["name"]] = None if hit is None else (hit + 1) * window - e["start"]
    return out


def request_delays(positions: dict, truth: dict, window: int, relevant: dict) -> dict:
    """Per episode: requests from the onset to the request by which the first alert on the changed metric had
    its evidence (sequential rules; the window's end for the others)."""
    out = {}
    for e in truth["episodes"]:
        if e["name"] == "control":
            continue
        wins = range(e["start"] // window, (e["end"] - 1) // window + 1)
        hits = [pos for k in wins for name, pos in (positions.get(k) or {}).items()
                if name.split("[")[0] in relevant[e["name"]]]
        out[e["name"]] = None if not hits else min(hits) + 1 - e["start"]
    return out


def _hit(names: list[str], want: tuple[str, ...] | None) -> bool:
    if want is None:
        return bool(names)
    return any(n.split("[")[0] in want for n in names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--reference-windows", type=int, default=8)
    ap.add_argument("--no-embedding", action="store_true")
    ap.add_argument("--embed-sample", type=int, default=128, help="prompts embedded per window for MMD")
    ap.add_argument("--fresh", action="store_true", help="start from an empty store (else cached work is reused)")
    ap.add_argument("--skip-evidently", action="store_true")
    ap.add_argument("--rules", type=Path, default=RULES, help="alert rules (another file: results named after it)")
    ap.add_argument("--reuse", action="store_true", help="reuse the last lmcritic side (benchmarks/.work/monitor)")
    ap.add_argument("--evidently-modes", default="descriptors,scores",
                    help="Evidently configurations to (re)run; the others are read from the last run "
                    "('' reruns none)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    log = WORK / "traffic.jsonl"
    if not log.exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks/monitor/build_log.py")], check=True)
    truth = json.loads((WORK / "truth.json").read_text())
    saved = WORK / "lmcritic_side.json"
    if args.reuse and saved.exists():
        ours = json.loads(saved.read_text())
        for key in ("alerts", "alerts_at_0.05", "alert_positions"):
            ours[key] = {int(k): v for k, v in ours.get(key, {}).items()}
    else:
        if args.fresh:
            (WORK / "bench.sqlite").unlink(missing_ok=True)
        ours = lmcritic_side(log, WORK / "bench.sqlite", args.window, args.reference_windows, not args.no_embedding,
                             args.embed_sample, args.rules)
        saved.write_text(json.dumps(ours, default=str))
    theirs = None if args.skip_evidently else evidently_side(args.window, args.reference_windows, args.evidently_modes)
    at_request = request_delays(ours.get("alert_positions") or {}, truth, args.window, RELEVANT)
    res = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(), "truth": truth, "lmcritic": ours,
           "lmcritic_at_request": at_request,
           "rules": str(args.rules.relative_to(ROOT) if args.rules.is_relative_to(ROOT) else args.rules),
           "embedding": "off" if args.no_embedding else f"{args.embed_sample} prompts per window",
           "evidently": theirs, "summary": _summary(ours, theirs, truth, args.window)}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "monitor_drift" if args.rules == RULES else f"monitor_drift_{args.rules.stem}"
    (RESULTS / f"{name}_{stamp}.json").write_text(json.dumps(res, indent=1, default=str))
    md = _markdown(res, stamp)
    (RESULTS / f"{name}_latest.md").write_text(md)
    print(md)
    return 0


def _summary(ours: dict, theirs: dict | None, truth: dict, window: int) -> dict:
    out = {"lmcritic (any alert)": delays(ours["alerts"], truth, window, None),
           "lmcritic (alert on the changed metric)": delays(ours["alerts"], truth, window, RELEVANT)}
    if ours.get("alerts_at_0.05"):
        out["lmcritic, rules at significance 0.05 (any alert)"] = delays(ours["alerts_at_0.05"], truth, window, None)
    if theirs:
        for name, per_window in theirs["modes"].items():
            by_window = {int(k): v for k, v in per_window.items()}
            out[f"Evidently {name}"] = delays(by_window, truth, window, None)
            if "any column" in name:
                out[f"Evidently {name.replace('any column', 'a changed column')}"] = \
                    delays(by_window, truth, window, RELEVANT_EVIDENTLY)
    return out


def _markdown(res: dict, stamp: str) -> str:
    ours = res["lmcritic"]
    lines = [f"# Drift detection: lmcritic monitor vs Evidently ({stamp}; lmcritic rules {res['rules']})", "",
             f"Log: {res['truth']['n']} requests, windows of {res['truth']['window']}, reference = first "
             f"{res['truth']['reference_end']}. Delay = requests from onset to the end of the first alerting window "
             "(– = missed). Control = windows of the no-change stretch that alerted.", "",
             "| detector | register | injection | PII | feedback (topic) | control false alarms |",
             "|---|---|---|---|---|---|"]
    for name, d in res["summary"].items():
        cells = [str(d.get(k)) if d.get(k) is not None else "–" for k in ("register", "injection", "pii", "feedback")]
        lines.append(f"| {name} | {' | '.join(cells)} | {len(d['control_false_alarm_windows'])} of "
                     f"{d['control_windows']} |")
    at = res.get("lmcritic_at_request") or {}
    if at:
        cells = [str(at.get(k)) if at.get(k) is not None else "–" for k in ("register", "injection", "pii", "feedback")]
        lines += ["", "lmcritic's sequential alerts also name the request by which their evidence sufficed (the "
                  "first request whose running p-value, calibrated on the whole window, was under the window's BH "
                  "cut-off); the alert itself is raised when the window is checked. Requests from onset to it, first "
                  "alert on the changed metric: " + ", ".join(f"{k} {c}" for k, c in
                                                            zip(("register", "injection", "PII", "feedback"), cells))]
    scored = (f"scored {ours['n_scored']} requests in {ours['score_s']:.1f} s (load average "
              f"{ours['load_during_scoring']})" if ours["n_scored"] else "scores reused from the store")
    lines += ["", f"lmcritic: {scored}; check (windows, tests, embeddings) {ours['check_s']:.1f} s (load average "
              f"{ours.get('load_during_check')}); {ours.get('tests_per_window')} tests per window, BH-adjusted; "
              f"skipped scorers: {ours['skipped'] or 'none'}; embedding drift: {res['embedding']}"]
    if res["evidently"]:
        secs = ", ".join(f"{k} {v:.0f} s" for k, v in res["evidently"].get("seconds", {}).items())
        reused = " (reused: computed on the byte-identical requests table, sha256 " \
            f"{res['evidently']['input_sha256'][:12]})" if res["evidently"].get("reused") else ""
        lines.append(f"Evidently {res['evidently'].get('version')}: {secs}; errors: "
                     f"{len(res['evidently'].get('errors', []))}{reused}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
