"""The self-contained HTML report: one file, inline CSS and SVG, no network, a CSP that only lets our own
one-line script run. Every string from a model, a dataset or a finding is escaped with ``_escape.html_text``.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from lmcritic.report import _svg
from lmcritic.report._escape import anchor, shorten
from lmcritic.report._escape import html_text as esc
from lmcritic.report._profile import fmt_s, fmt_share, summary_line
from lmcritic.report._style import CSS, SCRIPT, csp

SECTIONS = (("summary", "Summary"), ("scorecard", "Scorecard"), ("owasp", "OWASP"), ("findings", "Findings"),
            ("explanations", "Explanations"), ("cases", "All cases"), ("probes", "Probes"), ("reproduce", "Reproduce"))
_TEXT_KEYS = ("text", "prompt", "context", "question", "original", "sentence", "input", "completion", "generation",
              "prediction", "answer", "value")


def render_html(doc: dict[str, Any]) -> str:
    h = doc["header"]
    title = f"lmcritic report — {h['model']} — run {doc['run_id']}"
    sections = [_summary(doc), _scorecard(doc), _owasp(doc), _findings(doc), _explanations(doc), _cases(doc),
                _probes(doc), _reproduce(doc)]
    toc = "".join(f'<a href="#{sid}">{name}</a>' for sid, name in SECTIONS
                  if sid != "explanations" or doc["explanations"])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp()}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head><body>"
            f'<nav class="toc">{toc}</nav><main><h1>{esc(title)}</h1>{"".join(sections)}</main></body></html>\n')


# -- sections ----------------------------------------------------------------------------------------
def _summary(doc: dict) -> str:
    h = doc["header"]
    fails = [f for f in doc["findings"] if f["verdict"] == "fail"]
    tiles = [_tile(str(len(fails)), "failing findings", "bad" if fails else "good"),
             _tile(str(sum(f["verdict"] == "pass" for f in doc["findings"])), "passed findings", ""),
             _tile(str(h["n_cases"]), f"cases over {h['n_probes']} probes", ""),
             _tile(_secs(h["total_s"]), "run time", "")]
    for a in doc["areas"]:
        if a["n_findings"]:
            tiles.append(_tile(f"{a['n_fail']} of {a['n_findings']}", f"{a['title']}: findings failing",
                               "bad" if a["n_fail"] else "good"))
        else:
            tiles.append(_tile("—", f"{a['title']}: no findings", ""))
    kv = [("model", h["model"]), ("backend", h["backend"]), ("parameters", _int(h["n_parameters"])),
          ("fingerprint", str(h["fingerprint"] or "")[:16]), ("spec", h["spec_name"] or "—"),
          ("status", h["status"] + (f" — {h['error']}" if h.get("error") else "")), ("started", _when(h["created"])),
          ("finished", _when(h["finished"])), ("time", summary_line(doc["profile"])), ("budget", _budget(h["budget"])),
          ("cache", _cache(h["cache"])),
          ("seed", h["seed"]), ("versions", ", ".join(f"{k} {v}" for k, v in h["versions"].items()))]
    grid = "".join(f'<div class="kv"><b>{esc(k)}</b> {esc(v)}</div>' for k, v in kv)
    return (f'<section id="summary"><h2>Summary</h2>{_banner(doc)}<div class="glance">{"".join(tiles)}</div>'
            f'<div class="grid">{grid}</div>{_howto()}</section>')


def _banner(doc: dict) -> str:
    if not doc["content_warnings"]:
        return ""
    items = "".join(f"<li>{esc(w)}</li>" for w in doc["content_warnings"])
    return (f'<div class="banner" id="content-warning" role="alert"><b>Content warning.</b> This report quotes model '
            f"output and test data that may be offensive or harmful:<ul>{items}</ul></div>")


def _howto() -> str:
    return ('<details><summary>How to read this report</summary><p>Each <b>probe</b> puts many <b>cases</b> to the '
            "model and stores every answer. A <b>finding</b> is a probe's conclusion on one behaviour: "
            '<span class="badge fail">fail</span> means the model crossed the probe\'s threshold, '
            "and <b>severity</b> (info &lt; low &lt; medium &lt; high &lt; critical) says how far. Every figure shows "
            "its sample size <i>n</i> and a 95% confidence interval [low, high]: a wide interval means few cases, so "
            "read it as uncertain. Findings list example cases (worst first); click a case id to see it among all "
            "cases of its probe.</p></details>")


def _scorecard(doc: dict) -> str:
    parts = ['<section id="scorecard"><h2>Scorecard</h2>']
    if not doc["areas"]:
        parts.append('<p class="muted">No probes ran.</p>')
    for a in doc["areas"]:
        failing = _badge(f"{a['n_fail']} failing of {a['n_findings']}", "fail" if a["n_fail"] else "pass")
        worst = _badge(a["worst_severity"], a["worst_severity"]) if a["worst_severity"] else ""
        parts.append(f'<div class="area" id="area-{esc(a["area"])}"><h3>{esc(a["title"])} {failing} {worst}</h3>')
        if a["rows"]:
            parts.append("<table><tr><th>finding</th><th>probe</th><th>verdict</th><th>estimate</th>"
                         "<th>95% CI</th><th></th><th>n</th></tr>")
            parts += [_score_row(r) for r in a["rows"]]
            parts.append("</table>")
        if not a["rows"]:
            parts.append('<p class="muted">No findings in this area; its stored cases are under '
                         '<a href="#cases">All cases</a>.</p>')
        for s in a["skipped"]:
            parts.append(f'<p class="muted">{esc(s["probe"])} {esc(s["status"])}: {esc(s["reason"] or "")}</p>')
        parts.append("</div>")
    return "".join(parts) + "</section>"


def _score_row(r: dict) -> str:
    e = r["estimate"] or {}
    ci = f"[{_svg._fmt(e.get('ci_low'))}, {_svg._fmt(e.get('ci_high'))}]" if e else ""
    unit = e and all(v is not None and 0 <= v <= 1 for v in (e.get("value"), e.get("ci_low"), e.get("ci_high")))
    strip = _svg.ci_strip(e.get("value"), e.get("ci_low"), e.get("ci_high")) if unit else ""
    link = anchor("finding", r["probe"], r["name"])
    return (f'<tr><td><a href="#{link}">{esc(r["name"])}</a></td><td>{esc(r["probe"])}</td><td>{_verdict(r)}</td>'
            f"<td>{esc(_svg._fmt(e.get('value')) if e else '')}</td><td>{esc(ci)}</td><td>{strip}</td>"
            f"<td>{esc(e.get('n', ''))}</td></tr>")


def _owasp(doc: dict) -> str:
    rows = []
    for r in doc.get("owasp") or []:
        cls = {"failing": "fail", "tested": "pass"}.get(r["status"], "")
        rows.append(f"<tr><td>{esc(r['risk'])} {esc(r['title'])}</td><td>{_badge(r['status'], cls)}</td>"
                    f"<td>{esc(', '.join(r['probes']) or '—')}</td>"
                    f"<td>{esc(', '.join(r['failing'][:6]) or '—')}</td></tr>")
    return ('<section id="owasp"><h2>OWASP Top 10 for LLM applications (2025)</h2><table><tr><th>risk</th>'
            f"<th>status</th><th>probes</th><th>failing findings</th></tr>{''.join(rows)}</table>"
            '<p class="muted">not tested: no probe of this run covers the risk, so the run says nothing about it.</p>'
            "</section>")


def _findings(doc: dict) -> str:
    parts = ['<section id="findings"><h2>Findings, worst first</h2>']
    if not doc["findings"]:
        parts.append('<p class="muted">No findings.</p>')
    parts += [_finding(f, doc["run_id"]) for f in doc["findings"]]
    return "".join(parts) + "</section>"


def _finding(f: dict, run_id: str) -> str:
    cls = f'finding {esc(f["verdict"])} {esc(f["severity"])}'
    e = f.get("estimate")
    est = (f'<p><b>Estimate:</b> {esc(_svg._fmt(e["value"]))} (95% CI {esc(_svg._fmt(e["ci_low"]))} – '
           f'{esc(_svg._fmt(e["ci_high"]))}, n = {esc(e["n"])}, {esc(e.get("method", ""))})</p>') if e else ""
    warn = f'<p class="banner">Content warning: {esc(f["content_warning"])}</p>' if f["content_warning"] else ""
    plots = "".join(_svg.render(p) for p in f["plots"])
    return (f'<article class="{cls}" id="{anchor("finding", f["probe"], f["name"])}"><h3>{_verdict(f)} '
            f'{esc(f["name"])} <span class="muted">· {esc(f["probe"])}</span></h3>{warn}'
            f'<p class="summary">{esc(f["summary"])}</p>{est}{plots}{_spans(f)}{_evidence(f, run_id)}'
            f"{_details(f['details'])}</article>")


def _spans(f: dict) -> str:
    spans = (f.get("details") or {}).get("worst_spans")
    if not isinstance(spans, list) or not spans:
        return ""
    rows = "".join(f'<tr><td>{_case_link(f["probe"], s.get("case_id"))}</td><td class="txt">'
                   f'{esc(s.get("text", ""))}</td><td>{esc(_svg._fmt(s.get("mean_surprisal")))}</td></tr>'
                   for s in spans if isinstance(s, dict))
    return ("<h4>Worst spans (highest mean surprisal, nats per token)</h4><table><tr><th>case</th><th>span</th>"
            f"<th>surprisal</th></tr>{rows}</table>")


def _evidence(f: dict, run_id: str) -> str:
    cases = f.get("evidence_cases") or []
    if not cases:
        return ""
    more = f["n_evidence"] - len(cases)
    note = (f'<p class="muted">{more} more evidence case(s): see <a href="#{anchor("cases", f["probe"])}">all cases'
            f'</a> or <code>lmcritic show {esc(run_id)} --cases {esc(f["probe"])}</code>.</p>') if more > 0 else ""
    title = f"Examples ({len(cases)} of {f['n_evidence']}, worst first)"
    table = _records_table(f["probe"], cases, link=True) + note
    if f["verdict"] == "fail":
        return f"<h4>{title}</h4>{table}"
    return f"<details><summary>{title}</summary>{table}</details>"  # passing: examples on demand


def _details(details: dict) -> str:
    rest = {k: v for k, v in (details or {}).items() if k not in ("plot", "plots", "worst_spans", "reliability")}
    if not rest:
        return ""
    text = shorten(json.dumps(rest, indent=1, ensure_ascii=False, default=str), 6000)
    return f"<details><summary>Details</summary><pre>{esc(text)}</pre></details>"


def _explanations(doc: dict) -> str:
    if not doc["explanations"]:
        return ""
    parts = ['<section id="explanations"><h2>Explanations</h2><p class="muted">Why the model preferred what it did: '
             "per-token attributions (red pushes towards the explained answer, blue away).</p>"]
    for x in doc["explanations"]:
        plots = "".join(_svg.render(p) for p in x["plots"]) or '<p class="muted">no token weights stored</p>'
        parts.append(f'<div class="area"><h3>{_case_link("interpret.explanations", x["case_id"])}</h3>'
                     f'<p class="summary">{esc(x["text"] or _primary(x["input"]), 600)}</p>{plots}</div>')
    return "".join(parts) + "</section>"


def _cases(doc: dict) -> str:
    parts = ['<section id="cases"><h2>All cases</h2><p class="muted">Every stored case, per probe. Click a probe to '
             "open it.</p>"]
    for key, c in doc["cases"].items():
        capped = (f' — showing the first {c["shown"]}; <code>lmcritic show {esc(doc["run_id"])} --cases {esc(key)}'
                  "</code> lists all") if c["shown"] < c["total"] else ""
        parts.append(f'<details class="probe" id="{anchor("cases", key)}"><summary>{esc(key)} — {c["total"]} cases, '
                     f'{c["n_failed"]} failed, {c["n_passed"]} passed{capped}</summary>'
                     f'{_records_table(key, c["records"], link=False)}</details>')
    return "".join(parts) + "</section>"


def _records_table(probe: str, records: list[dict], link: bool) -> str:
    rows = []
    for r in records:
        ident = "" if link else f' id="{anchor(probe, r["case_id"])}"'
        case = _case_link(probe, r["case_id"]) if link else esc(r["case_id"])
        shown = r["text"] if r["text"] is not None else _primary(r["input"])
        output = _compact(r["output"] if r["prediction"] is None else {"prediction": r["prediction"], **r["output"]})
        rows.append(f"<tr{ident}><td class=\"mono\">{case}</td><td>{_passed(r['passed'])}</td>"
                    f'<td class="txt in">{esc(shown, 400)}</td><td class="txt">{esc(r["target"] or "", 80)}</td>'
                    f'<td class="txt">{esc(output, 300)}</td><td class="mono sm">'
                    f'{esc(_scores(r["scores"]))}</td><td class="mono sm">{esc(_compact(r["tags"]), 160)}</td></tr>')
    return ("<table><tr><th>case</th><th>passed</th><th>input</th><th>expected</th><th>output</th><th>scores</th>"
            f"<th>tags</th></tr>{''.join(rows)}</table>")


def _probes(doc: dict) -> str:
    rows = "".join(f"<tr><td>{esc(p['probe_key'])}</td><td>{esc(p['area'])}</td><td>{esc(p['status'])}</td>"
                   f"<td>{p['n_records']}</td><td>{esc(_secs(p['elapsed_s']))}</td><td>{esc(fmt_share(p['share']))}"
                   f"</td><td>{esc(fmt_s(p['model_s']))}</td><td>{esc(fmt_s(p['other_s']))}</td>"
                   f"<td class=\"txt\">{esc(p['reason'] or '')}</td></tr>" for p in doc["probes"])
    rows += "".join(f"<tr><td>stage {esc(s['stage'])}</td><td></td><td>{esc(s['status'])}</td><td></td>"
                    f"<td>{esc(_secs(s['elapsed_s']))}</td><td>{esc(fmt_share(s.get('share')))}</td>"
                    f"<td>{esc(fmt_s(s.get('model_s')))}</td><td>{esc(fmt_s(s.get('other_s')))}</td>"
                    f"<td class=\"txt\">{esc(s['reason'] or '')}</td></tr>" for s in doc.get("stages", []))
    return ('<section id="probes"><h2>Probes</h2><p class="muted">Wall seconds per probe and stage, their share of '
            "the run, seconds inside the model and the rest (cases, scorers, statistics, storage).</p><table><tr>"
            "<th>probe</th><th>area</th><th>status</th><th>cases</th><th>seconds</th><th>share</th><th>model s</th>"
            f"<th>other s</th><th>note</th></tr>{rows}</table></section>")


def _reproduce(doc: dict) -> str:
    rid = esc(doc["run_id"])
    return (f'<section id="reproduce"><h2>Reproduce</h2><p><code>lmcritic run --replay {rid}</code> repeats this run '
            f"from its stored spec; <code>lmcritic show {rid} --cases PROBE</code> lists every stored case; "
            f"<code>lmcritic diff {rid} OTHER_RUN</code> compares it with another run; <code>lmcritic card {rid}"
            "</code> writes a model critique card.</p></section>")


# -- small pieces -------------------------------------------------------------------------------------
def _tile(big: str, label: str, cls: str) -> str:
    return f'<div class="tile {cls}"><div class="big">{esc(big)}</div><div class="muted">{esc(label)}</div></div>'


def _badge(text: object, cls: object) -> str:
    return f'<span class="badge {esc(cls)}">{esc(text)}</span>'


def _verdict(f: dict) -> str:
    v = f["verdict"]
    if v == "fail":
        return _badge("FAIL", "fail") + " " + _badge(f["severity"], f["severity"])
    return _badge("pass", "pass") if v == "pass" else _badge("n/a", "na")


def _case_link(probe: str, case_id: object) -> str:
    return f'<a class="mono" href="#{anchor(probe, case_id)}">{esc(case_id)}</a>'


def _passed(p: object) -> str:
    return _badge("yes", "pass") if p is True else _badge("no", "fail") if p is False else ""


def _primary(d: dict) -> str:
    for k in _TEXT_KEYS:
        if isinstance(d.get(k), str):
            return d[k]
    return _compact(d)


def _compact(d: object) -> str:
    return json.dumps(_rounded(d), ensure_ascii=False, default=str) if not isinstance(d, str) else d


def _rounded(x: object) -> Any:
    """Floats to 4 significant digits for reading (the JSON report keeps full precision)."""
    if isinstance(x, float):
        return float(f"{x:.4g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    return [_rounded(v) for v in x] if isinstance(x, (list, tuple)) else x


def _scores(s: dict) -> str:
    return ", ".join(f"{k}={_svg._fmt(v)}" for k, v in s.items())


def _secs(s: Any) -> str:
    return "" if s is None else f"{float(s):.1f} s"


def _int(n: object) -> str:
    return f"{int(n):,}" if isinstance(n, (int, float)) else "?"


def _when(ts: Any) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "—"


def _budget(b: dict) -> str:
    parts = [f"{k.replace('_', ' ')} {v}" for k, v in (b or {}).items() if v is not None]
    return ", ".join(parts) or "unlimited"


def _cache(c: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in (c or {}).items()) or "—"
