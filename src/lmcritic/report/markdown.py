"""The run report as Markdown (and the same content as a JSON document).

Everything that came from a model or a dataset passes through :func:`lmcritic.report._escape.md`.
The HTML report (issue 8) renders from :func:`run_document` too, so all formats say the same thing.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from lmcritic._serde import to_jsonable
from lmcritic.report._escape import md


def run_document(store, run_id: str, evidence_per_finding: int = 5) -> dict[str, Any]:
    """Run, probes, findings (worst first) and the evidence cases, as one JSON-able dict."""
    info = store.get_run(run_id)
    records = {(r_key, r.case_id): r for r_key in _probe_keys(store, run_id)
               for r in store.records(run_id, r_key)}
    findings = sorted(store.findings(run_id), key=lambda f: (f.verdict.value != "fail", -f.severity.rank))
    doc_findings = []
    for f in findings:
        cases = [records.get((f.probe, cid)) for cid in f.evidence[:evidence_per_finding]]
        doc_findings.append({**to_jsonable(f), "evidence_cases": [to_jsonable(c) for c in cases if c]})
    return {"run": to_jsonable(info), "probes": [to_jsonable(p) for p in store.probe_runs(run_id)],
            "findings": doc_findings}


def render_markdown(store, run_id: str) -> str:
    doc = run_document(store, run_id)
    run = doc["run"]
    lines = [f"# lmcritic report — run `{run_id}`", ""]
    lines += _header(run)
    lines += ["## Scorecard", "", "| probe | finding | verdict | estimate | 95% CI | n |", "|---|---|---|---|---|---|"]
    for f in doc["findings"]:
        e = f.get("estimate") or {}
        ci = f"[{e['ci_low']:.4g}, {e['ci_high']:.4g}]" if e else ""
        value = f"{e['value']:.4g}" if e else ""
        lines.append(f"| {f['probe']} | {f['name']} | {_verdict(f)} | {value} | {ci} | {e.get('n', '')} |")
    lines += ["", "## Findings, worst first", ""]
    for f in doc["findings"]:
        lines += _finding(f)
    lines += _probes(doc["probes"])
    lines += ["## Reproduce", "", f"`lmcritic run --replay {run_id}` repeats this run from its stored spec; "
              f"`lmcritic show {run_id} --cases PROBE` lists every stored case.", ""]
    return "\n".join(lines)


def write_report(store, run_id: str, path: Path | None = None) -> Path:
    """Write the Markdown report (and a JSON twin beside it); return the Markdown path."""
    import json

    from lmcritic.runner import lmcritic_home

    path = path or lmcritic_home() / "reports" / run_id / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(store, run_id), encoding="utf-8")
    path.with_suffix(".json").write_text(json.dumps(run_document(store, run_id), indent=1, ensure_ascii=False),
                                         encoding="utf-8")
    return path


def _header(run: dict) -> list[str]:
    model = run.get("model") or {}
    created = dt.datetime.fromtimestamp(run["created"]).strftime("%Y-%m-%d %H:%M:%S") if run.get("created") else "?"
    versions = ", ".join(f"{k} {v}" for k, v in (run.get("versions") or {}).items())
    return [f"- **Model**: {md(model.get('name', '?'))} ({md(model.get('backend', '?'))} backend, "
            f"{model.get('n_parameters', '?')} parameters, fingerprint `{str(run.get('model_fingerprint', ''))[:12]}`)",
            f"- **Status**: {run.get('status')} · created {created} · versions: {md(versions)}",
            f"- **Timings**: {md(_timings(run.get('timings') or {}))}", ""]


def _finding(f: dict) -> list[str]:
    out = [f"### {_verdict(f)} · {f['probe']} · {f['name']}", "", md(f["summary"], limit=None), ""]
    spans = (f.get("details") or {}).get("worst_spans")
    if spans:
        out += ["Worst spans (highest mean surprisal, nats/token):", "", "| case | span | surprisal |", "|---|---|---|"]
        out += [f"| {s['case_id']} | {md(s['text'], 120)} | {s['mean_surprisal']:.2f} |" for s in spans]
        out.append("")
    cases = f.get("evidence_cases") or []
    if cases and not spans:
        out += ["Examples:", "", "| case | input | expected | output | scores |", "|---|---|---|---|---|"]
        for c in cases:
            out.append(f"| {c['case_id']} | {md(c['input'].get('text', c['input']), 160)} | "
                       f"{md(c['tags'].get('expected', ''))} | {md(_brief(c['output']), 120)} | "
                       f"{md(_scores(c['scores']))} |")
        out.append("")
    return out


def _probes(probes: list[dict]) -> list[str]:
    out = ["## Probes", "", "| probe | status | cases | seconds | note |", "|---|---|---|---|---|"]
    for p in probes:
        secs = f"{p['elapsed_s']:.1f}" if p.get("elapsed_s") else ""
        out.append(f"| {p['probe_key']} | {p['status']} | {p.get('n_cases') or ''} | {secs} | {md(p.get('reason') or '')} |")
    return out + [""]


def _verdict(f: dict) -> str:
    v = f["verdict"]
    return f"**FAIL ({f['severity']})**" if v == "fail" else ("pass" if v == "pass" else "n/a")


def _brief(output: dict) -> dict:
    return {k: v for k, v in output.items() if k not in ("tokens", "logprobs", "offsets", "label_logprobs")}


def _scores(scores: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in scores.items())


def _timings(t: dict) -> str:
    total = t.get("total_s")
    cache = t.get("cache") or {}
    parts = [f"{total:.1f} s total"] if total else []
    if cache:
        parts.append(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in cache.items()))
    return "; ".join(parts)


def _probe_keys(store, run_id: str) -> list[str]:
    return [p.probe_key for p in store.probe_runs(run_id)]

