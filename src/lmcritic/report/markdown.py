"""The run report as Markdown, rendered from the same document as the HTML and JSON reports.

Everything that came from a model or a dataset passes through :func:`lmcritic.report._escape.md`.
Plots become small tables (bars, reliability bins, the heaviest tokens), so the Markdown says what the
HTML shows.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from lmcritic.report._escape import md
from lmcritic.report._profile import fmt_s, fmt_share, summary_line
from lmcritic.report._svg import _fmt
from lmcritic.report.document import run_document  # noqa: F401  (public: the JSON report)

if TYPE_CHECKING:
    from lmcritic.store.runs import RunStore

FORMATS = ("html", "md", "json")


def render_markdown(store_or_doc: RunStore | dict[str, Any], run_id: str | None = None) -> str:
    """Markdown for a run: ``render_markdown(store, run_id)`` or ``render_markdown(doc)``."""
    doc = store_or_doc if isinstance(store_or_doc, dict) else run_document(store_or_doc, str(run_id))
    rid = doc["run_id"]
    lines = [f"# lmcritic report — {md(doc['header']['model'])} — run `{rid}`", ""]
    lines += _header(doc) + _scorecard(doc) + owasp_lines(doc)
    lines += ["## Findings, worst first", ""]
    for f in doc["findings"]:
        lines += _finding(f)
    lines += _explanations(doc) + _cases(doc) + _probes(doc["probes"], doc.get("stages", []))
    lines += ["## Reproduce", "", f"`lmcritic run --replay {rid}` repeats this run from its stored spec; "
              f"`lmcritic show {rid} --cases PROBE` lists every stored case; `lmcritic diff {rid} OTHER_RUN` "
              "compares it with another run.", ""]
    return "\n".join(lines)


def render_json(doc: dict) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False, default=str)


def render_report(store: RunStore, run_id: str, fmt: str, max_cases: int = 200) -> str:
    """One run's report as text in ``fmt`` (html, md or json)."""
    return _renderers()[fmt](run_document(store, run_id, max_cases=max_cases))


def _renderers() -> dict[str, Callable[[dict[str, Any]], str]]:
    from lmcritic.report.html import render_html

    return {"html": render_html, "md": render_markdown, "json": render_json}


def write_reports(store, run_id: str, directory: Path | None = None, formats=FORMATS,
                  max_cases: int = 200) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``report.json`` of a run; returns their paths by format."""
    from lmcritic.runner import lmcritic_home

    run_id = store.resolve(run_id)
    directory = Path(directory) if directory else lmcritic_home() / "reports" / run_id
    doc = run_document(store, run_id, max_cases=max_cases)
    render = _renderers()
    return {fmt: write_file(directory / f"report.{fmt}", render[fmt](doc)) for fmt in formats}


def write_file(path: Path, text: str) -> Path:
    """Write ``text`` (creating folders); a path that cannot be written is one line naming it."""
    from lmcritic.errors import LmcriticError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise LmcriticError(f"cannot write {path}: {err.strerror or err}",
                            "choose a writable path (-o/--report), or fix the folder's permissions") from None
    return path


def write_report(store, run_id: str, path: Path | None = None) -> Path:
    """Write the Markdown report (with its HTML and JSON twins beside it); return the Markdown path."""
    if path is None:
        return write_reports(store, run_id)["md"]
    path = Path(path)
    written = write_reports(store, run_id, path.parent)
    if written["md"] != path:
        written["md"].replace(path)
    return path


# -- sections ---------------------------------------------------------------------------------------
def _header(doc: dict) -> list[str]:
    h = doc["header"]
    created = dt.datetime.fromtimestamp(h["created"]).strftime("%Y-%m-%d %H:%M:%S") if h.get("created") else "?"
    versions = ", ".join(f"{k} {v}" for k, v in h["versions"].items())
    cache = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in h["cache"].items())
    budget = ", ".join(f"{k} {v}" for k, v in h["budget"].items() if v is not None) or "unlimited"
    total = f"{h['total_s']:.1f} s" if h.get("total_s") else "?"
    out = [f"- **Model**: {md(h['model'])} ({md(h['backend'] or '?')} backend, {h['n_parameters'] or '?'} parameters,"
           f" fingerprint `{str(h['fingerprint'] or '')[:12]}`)",
           f"- **Status**: {md(h['status'])} · created {created} · {total} · {h['n_cases']} cases over "
           f"{h['n_probes']} probes",
           f"- **Time**: {md(summary_line(doc['profile']))} (per probe: see Probes)",
           f"- **Budget**: {md(budget)} · **Cache**: {md(cache or '—')}", f"- **Versions**: {md(versions)}", ""]
    if doc["content_warnings"]:
        out += ["> **Content warning.** This report quotes model output and test data that may be offensive: "
                + "; ".join(md(w) for w in doc["content_warnings"]), ""]
    return out


def _scorecard(doc: dict) -> list[str]:
    out = ["## Scorecard", ""]
    for a in doc["areas"]:
        worst = f", worst severity {a['worst_severity']}" if a["worst_severity"] else ""
        out += [f"### {md(a['title'])} — {a['n_fail']} failing of {a['n_findings']}{worst}", ""]
        if a["rows"]:
            out += ["| probe | finding | verdict | estimate | 95% CI | n |", "|---|---|---|---|---|---|"]
            for r in a["rows"]:
                e = r["estimate"] or {}
                ci = f"[{_fmt(e.get('ci_low'))}, {_fmt(e.get('ci_high'))}]" if e else ""
                out.append(f"| {md(r['probe'])} | {md(r['name'])} | {_verdict(r)} | "
                           f"{_fmt(e.get('value')) if e else ''} | {ci} | {e.get('n', '')} |")
        out += [f"- {md(s['probe'])} {s['status']}: {md(s['reason'] or '')}" for s in a["skipped"]]
        out.append("")
    return out


def owasp_lines(doc: dict) -> list[str]:
    """The OWASP Top 10 for LLM Applications (2025): what this run says about each risk (report and card)."""
    out = ["## OWASP Top 10 for LLM applications (2025)", "", "| risk | status | probes | failing findings |",
           "|---|---|---|---|"]
    for r in doc.get("owasp") or []:
        fails = ", ".join(md(f) for f in r["failing"][:6]) + (" …" if len(r["failing"]) > 6 else "")
        out.append(f"| {r['risk']} {md(r['title'])} | {r['status']} | {md(', '.join(r['probes'])) or '—'} | "
                   f"{fails or '—'} |")
    return out + ["", "*not tested*: no probe of this run covers the risk, so the run says nothing about it.", ""]


def _finding(f: dict) -> list[str]:
    out = [f"### {_verdict(f)} · {md(f['probe'])} · {md(f['name'])}", ""]
    if f["content_warning"]:
        out += [f"> Content warning: {md(f['content_warning'])}", ""]
    out += [md(f["summary"], limit=None), ""]
    e = f.get("estimate")
    if e:
        out += [f"Estimate {_fmt(e['value'])} (95% CI {_fmt(e['ci_low'])} – {_fmt(e['ci_high'])}, n = {e['n']}, "
                f"{md(e.get('method', ''))})", ""]
    for p in f["plots"]:
        out += _plot(p)
    spans = (f.get("details") or {}).get("worst_spans")
    if isinstance(spans, list) and spans:
        out += ["Worst spans (highest mean surprisal, nats/token):", "", "| case | span | surprisal |", "|---|---|---|"]
        out += [f"| {md(s.get('case_id'))} | {md(s.get('text', ''), 120)} | {_fmt(s.get('mean_surprisal'))} |"
                for s in spans if isinstance(s, dict)]
        out.append("")
    cases = f.get("evidence_cases") or []
    if cases:
        out += [f"Examples ({len(cases)} of {f['n_evidence']}):", ""] + _records(cases)
    return out


def _plot(p: dict) -> list[str]:
    title = f"*{md(p['title'])}*"
    if p["kind"] == "bars":
        rows = [f"| {md(lbl, 80)} | {_fmt(v)} | {_ci(p, i)} | {p['n'][i] if p['n'][i] is not None else ''} |"
                for i, (lbl, v) in enumerate(zip(p["labels"], p["values"]))]
        return [title, "", "| group | value | 95% CI | n |", "|---|---|---|---|", *rows, ""]
    if p["kind"] == "reliability":
        rows = [f"| {b['low']:.1f}–{b['high']:.1f} | {b['count']} | {_fmt(b['confidence'])} | {_fmt(b['accuracy'])} |"
                for b in p["bins"] if b["count"]]
        return [title, "", "| confidence bin | n | mean confidence | accuracy |", "|---|---|---|---|", *rows, ""]
    if p["kind"] == "tokens":
        top = sorted(zip(p["tokens"], p["weights"]), key=lambda t: -abs(t[1] or 0))[:8]
        return [f"{title} — heaviest tokens: " + ", ".join(f"`{md(t, 40)}` {_fmt(w)}" for t, w in top), ""]
    if p["kind"] == "line":
        return [f"{title}: " + "; ".join(_line_summary(s) for s in p["series"]), ""]
    if p["kind"] == "graph":
        edges = [f"{md(e['source'])} → {md(e['target'])}" for e in p["edges"]]
        return [f"{title}: " + ("; ".join(edges) or ", ".join(md(n["label"]) for n in p["nodes"])), ""]
    return [f"{title}: not shown ({md(p.get('message', ''))})", ""]


def _explanations(doc: dict) -> list[str]:
    if not doc["explanations"]:
        return []
    out = ["## Explanations", ""]
    for x in doc["explanations"]:
        out += [f"**{md(x['case_id'])}**: {md(x['text'] or x['input'], 200)}", ""]
        for p in x["plots"]:
            out += _plot(p)
    return out


def _cases(doc: dict) -> list[str]:
    out = ["## All cases", ""]
    for key, c in doc["cases"].items():
        capped = f" (first {c['shown']}; `lmcritic show {doc['run_id']} --cases {key}` lists all)" \
            if c["shown"] < c["total"] else ""
        out += [f"### {md(key)} — {c['total']} cases, {c['n_failed']} failed{capped}", ""] + _records(c["records"])
    return out


def _records(records: list[dict]) -> list[str]:
    out = ["| case | passed | input | expected | output | scores |", "|---|---|---|---|---|---|"]
    for c in records:
        text = c["text"] if c["text"] is not None else c["input"]
        output = c["output"] if c["prediction"] is None else {"prediction": c["prediction"], **c["output"]}
        out.append(f"| {md(c['case_id'])} | {'' if c['passed'] is None else c['passed']} | {md(text, 160)} | "
                   f"{md(c['target'] or '')} | {md(json.dumps(output, ensure_ascii=False), 120)} | "
                   f"{md(', '.join(f'{k}={_fmt(v)}' for k, v in c['scores'].items()), 160)} |")
    return out + [""]


def _probes(probes: list[dict], stages: list[dict]) -> list[str]:
    out = ["## Probes", "", "Per probe and stage: wall seconds, share of the run, seconds inside the model and the "
           "rest (cases, scorers, statistics, storage).", "",
           "| probe | status | cases | seconds | share | model s | other s | note |",
           "|---|---|---|---|---|---|---|---|"]
    for p in probes:
        out.append(f"| {md(p['probe_key'])} | {p['status']} | {p['n_records']} | {_timing(p)} | "
                   f"{md(p.get('reason') or '')} |")
    for s in stages:
        out.append(f"| stage {md(s['stage'])} | {s['status']} |  | {_timing(s)} | {md(s.get('reason') or '')} |")
    return out + [""]


def _timing(row: dict) -> str:
    """Seconds, share, model seconds and the rest, as four table cells."""
    secs = f"{row['elapsed_s']:.1f}" if row.get("elapsed_s") else ""
    return " | ".join((secs, fmt_share(row.get("share")), fmt_s(row.get("model_s")), fmt_s(row.get("other_s"))))


def _verdict(f: dict) -> str:
    v = f["verdict"]
    return f"**FAIL ({f['severity']})**" if v == "fail" else ("pass" if v == "pass" else "n/a")


def _ci(p: dict, i: int) -> str:
    lo, hi = p.get("ci_low"), p.get("ci_high")
    return f"[{_fmt(lo[i])}, {_fmt(hi[i])}]" if lo and hi and lo[i] is not None else ""


def _line_summary(s: dict) -> str:
    pts = [(x, y) for x, y in zip(s["x"], s["y"]) if y is not None]
    if not pts:
        return "no data"
    top = max(pts, key=lambda t: t[1])
    name = f"{md(s['name'])}: " if s["name"] else ""
    low = _fmt(min(y for _, y in pts))
    return f"{name}{len(pts)} points, y from {low} to {_fmt(top[1])} (peak at x={_fmt(top[0])})"


