"""One JSON-able document per run, the single source every report format renders from.

HTML, Markdown and JSON say the same thing because they all render :func:`run_document`. Nothing here
escapes: the document holds raw (untrusted) text and each renderer escapes for its own format.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable

from lmcritic._serde import to_jsonable
from lmcritic.probes.base import Record
from lmcritic.report import _plots_data as plots
from lmcritic.report._profile import run_profile
from lmcritic.stages import EXPLANATIONS_KEY

if TYPE_CHECKING:
    from lmcritic.store.runs import RunStore

SCHEMA = "lmcritic.report/1"
AREA_TITLES = {"performance": "Performance", "robustness": "Robustness", "bias": "Bias and fairness",
               "interpret": "Interpretability", "interpretability": "Interpretability",
               "safety": "Safety and privacy", "diagnose": "Diagnosis", "diagnosis": "Diagnosis",
               "mitigate": "Mitigation"}
AREA_ORDER = ("performance", "robustness", "bias", "safety", "interpret", "interpretability", "diagnose",
              "diagnosis", "mitigate")
BULKY_KEYS = ("tokens", "logprobs", "offsets", "label_logprobs", "weights", "attributions", "plot", "plots")


def run_document(store: RunStore, run_id: str, evidence_per_finding: int = 5, max_cases: int = 200) -> dict[str, Any]:
    """Header, per-area scorecard, findings worst first with their evidence and plots, and every probe's cases
    (first ``max_cases`` per probe; ``lmcritic show RUN --cases PROBE`` lists the rest)."""
    run_id = store.resolve(run_id)
    info = to_jsonable(store.get_run(run_id))
    probe_rows = [to_jsonable(p) for p in store.probe_runs(run_id)]
    records = {key: store.records(run_id, key) for key in _record_keys(store, run_id, probe_rows)}
    stage_rows = [to_jsonable(s) for s in store.stage_runs(run_id)]
    profile = run_profile(info, probe_rows, stage_rows)
    timed = {r["key"]: r for r in profile["rows"]}
    probes = [_probe(p, records.get(p["probe_key"], []), timed.get(p["probe_key"])) for p in probe_rows]
    probes += [_pseudo_probe(k, recs) for k, recs in records.items() if k not in {p["probe_key"] for p in probe_rows}]
    areas = {p["probe_key"]: p["area"] for p in probes}  # a probe's key may be a free name ("mc_knowledge")
    findings = [_finding(f, records, evidence_per_finding, areas) for f in _ranked(store.findings(run_id))]
    from lmcritic.report.owasp import coverage

    return {
        "schema": SCHEMA, "run_id": run_id, "header": _header(info, probes), "run": info, "profile": profile,
        "content_warnings": _warnings(findings), "areas": _areas(findings, probes), "findings": findings,
        "owasp": coverage(probe_rows, findings),
        "probes": probes, "stages": [{**s, **_timing(timed.get(f"stage:{s['stage']}"))} for s in stage_rows],
        "explanations": _explanations(records.get(EXPLANATIONS_KEY, [])),
        "cases": {k: _cases(recs, max_cases) for k, recs in records.items()},
    }


def area_of(probe_key: str) -> str:
    """Probe names are ``area.name``; a run may key a probe ``area.name@variant``."""
    if "." in probe_key:
        return probe_key.split(".", 1)[0]
    return probe_key if probe_key in AREA_TITLES else "general"  # stage outputs stored under a bare area key


def area_title(area: str) -> str:
    return AREA_TITLES.get(area, area.replace("_", " ").capitalize())


# -- pieces ------------------------------------------------------------------------------------------
def _header(info: dict, probes: list[dict]) -> dict[str, Any]:
    model, spec, timings = info.get("model") or {}, info.get("spec") or {}, info.get("timings") or {}
    return {"model": model.get("name") or (spec.get("model") or {}).get("name", "?"),
            "backend": model.get("backend") or model.get("kind"), "n_parameters": model.get("n_parameters"),
            "fingerprint": info.get("model_fingerprint"), "spec_name": info.get("name") or spec.get("name"),
            "spec_probes": [p.get("key") or p.get("name") for p in spec.get("probes") or []],
            "budget": spec.get("budget") or {}, "seed": spec.get("seed"), "status": info.get("status"),
            "error": info.get("error"), "created": info.get("created"), "finished": info.get("finished"),
            "total_s": timings.get("total_s"), "cache": timings.get("cache") or {},
            "versions": info.get("versions") or {}, "n_probes": len(probes),
            "n_cases": sum(p["n_records"] for p in probes)}


def _probe(p: dict, recs: list, timed: dict | None = None) -> dict[str, Any]:
    """A probe's row; ``timed``: its profile row (model seconds, the rest, share of the run, calls)."""
    passed = [r.passed for r in recs if r.passed is not None]
    return {**p, "area": area_of(p["probe_name"] or p["probe_key"]), "n_records": len(recs),
            "n_passed": sum(passed), "n_failed": len(passed) - sum(passed), **_timing(timed)}


def _timing(timed: dict | None) -> dict[str, Any]:
    """A probe's or stage's profile fields (None where the run stored no measurement)."""
    t = timed or {}
    return {k: t.get(k) for k in ("model_s", "other_s", "share", "sent", "hits")}


def _pseudo_probe(key: str, recs: list) -> dict[str, Any]:
    """Records stored under a key with no probe row (explanations, diagnosis graphs)."""
    row = {"run_id": None, "probe_key": key, "probe_name": key, "status": "done", "reason": None, "started": None,
           "finished": None, "elapsed_s": None, "n_cases": len(recs)}
    return _probe(row, recs)


def _ranked(findings: Iterable) -> list:
    """Failures first, worst severity first; then passes; not-applicable last."""
    order = {"fail": 0, "pass": 1, "not_applicable": 2}
    return sorted(findings, key=lambda f: (order.get(f.verdict.value, 3), -f.severity.rank))


def _finding(f, records: dict[str, list], k: int, areas: dict[str, str]) -> dict[str, Any]:
    by_id = {r.case_id: r for r in records.get(f.probe, [])}
    evidence = [by_id[c] for c in f.evidence if c in by_id]
    d = to_jsonable(f)
    warning = (f.details or {}).get("content_warning")
    return {**d, "area": areas.get(f.probe) or area_of(f.probe), "content_warning": _warning_text(warning),
            "plots": plots.finding_plots(d["details"] or {}) + plots.record_plots(evidence[:3]),
            "evidence_cases": [brief_record(r) for r in evidence[:k]], "n_evidence": len(f.evidence),
            "ci_width": _ci_width(d.get("estimate"))}


def _warning_text(value: object) -> str | None:
    if not value:
        return None
    return value if isinstance(value, str) else "this finding quotes model output or data that may be offensive"


def _warnings(findings: list[dict]) -> list[str]:
    """One line per warning text, naming the findings that carry it (so a reader knows where to look)."""
    seen: dict[str, list[str]] = {}
    for f in findings:
        if f["content_warning"]:
            seen.setdefault(f["content_warning"], []).append(f"{f['probe']}:{f['name']}")
    return [f"{text} ({', '.join(names)})" for text, names in seen.items()]


def _areas(findings: list[dict], probes: list[dict]) -> list[dict[str, Any]]:
    names = {p["area"] for p in probes} | {f["area"] for f in findings}
    out = []
    for area in sorted(names, key=lambda a: (AREA_ORDER.index(a) if a in AREA_ORDER else 99, a)):
        fs = [f for f in findings if f["area"] == area]
        ps = [p for p in probes if p["area"] == area]
        fails = [f for f in fs if f["verdict"] == "fail"]
        worst = max(fails, key=lambda f: _SEV.index(f["severity"]), default=None)
        out.append({"area": area, "title": area_title(area), "n_findings": len(fs), "n_fail": len(fails),
                    "n_pass": sum(f["verdict"] == "pass" for f in fs), "worst_severity": worst and worst["severity"],
                    "probes": [p["probe_key"] for p in ps],
                    "skipped": [{"probe": p["probe_key"], "status": p["status"], "reason": p["reason"]}
                                for p in ps if p["status"] in ("skipped", "failed")],
                    "rows": [_score_row(f) for f in fs]})
    return out


_SEV = ("info", "low", "medium", "high", "critical")


def _score_row(f: dict) -> dict[str, Any]:
    return {"probe": f["probe"], "name": f["name"], "verdict": f["verdict"], "severity": f["severity"],
            "estimate": f.get("estimate"), "anchor_of": [f["probe"], f["name"]]}


def _ci_width(e: dict | None) -> float | None:
    if not e or e.get("ci_low") is None or e.get("ci_high") is None:
        return None
    w = float(e["ci_high"]) - float(e["ci_low"])
    return w if math.isfinite(w) else None


def _explanations(recs: list) -> list[dict[str, Any]]:
    return [{**brief_record(r), "plots": plots.explanation_plots(r)} for r in recs]


def _cases(recs: list, limit: int) -> dict[str, Any]:
    return {"total": len(recs), "shown": min(limit, len(recs)),
            "n_passed": sum(1 for r in recs if r.passed), "n_failed": sum(1 for r in recs if r.passed is False),
            "records": [brief_record(r) for r in recs[:limit]]}


def brief_record(r: Record) -> dict[str, Any]:
    """A record without bulky per-token arrays (they become plots), HTML fragments dropped (we never trust them)."""
    return {"case_id": r.case_id, "passed": r.passed, "text": r.text, "target": r.target,
            "prediction": r.prediction, "group": r.group, "input": _slim(r.input), "output": _slim(r.output),
            "scores": {k: v for k, v in r.scores.items()}, "tags": r.tags}


def _slim(d: dict) -> dict:
    if not isinstance(d, dict):
        return {"value": d}
    return {k: v for k, v in d.items() if k not in BULKY_KEYS and "html" not in k.lower()}


def _record_keys(store, run_id: str, probe_rows: list[dict]) -> list[str]:
    """Probe keys with stored cases, plan order first, then pseudo-probes (explanations, diagnosis)."""
    keys = [p["probe_key"] for p in probe_rows]
    extra = store.record_keys(run_id)
    return keys + [k for k in extra if k not in keys]
