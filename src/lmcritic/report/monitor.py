"""The monitoring report: a JSON document of a check, and the same as a self-contained HTML page.

Time series per metric with 95% CI bands (windows that alerted marked), each alert with the log lines behind it
(``source:line``, prompt, response — untrusted text, escaped like every report), what drifted and by how much,
and the ingestion errors with ``file:line``.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Any

from lmcritic._serde import to_jsonable
from lmcritic.report import _svg
from lmcritic.report._escape import html_text as esc
from lmcritic.report._style import CSS, SCRIPT, csp

if TYPE_CHECKING:
    from lmcritic.monitor.alerts import Alert
    from lmcritic.monitor.check import CheckResult
    from lmcritic.store.monitor import MonitorStore

EXCERPT = 600


def monitor_document(store: MonitorStore, result: CheckResult, max_errors: int = 100) -> dict[str, Any]:
    """Everything the report shows, as plain JSON (the ``--format json`` output)."""
    alerts = [_alert(store, a) for a in result.alerts]
    windows = [to_jsonable(w) for w in result.windows]
    span = store.span()
    return {"kind": "lmcritic-monitor", "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "store": str(store.path), "window": result.window, "reference": result.reference, "scorer": result.scorer,
            "n_requests": store.count(), "span": list(span) if span else None, "notes": list(result.notes),
            "rules": [to_jsonable(r) for r in result.rules], "alerts": alerts, "series": _series(result),
            "drift": _drift(result), "windows": windows,
            "ingestion": {"errors": store.failure_counts(), "sources": [to_jsonable(s) for s in store.sources()],
                          "examples": [to_jsonable(f) for f in store.failures(max_errors)]}}


def _alert(store: MonitorStore, a: Alert) -> dict[str, Any]:
    rows = store.requests(list(a.evidence))
    lines = [{"id": r.id, "time": _when(r.record.timestamp), "source": r.source, "line": r.line,
              "prompt": _cut(r.record.prompt), "response": _cut(r.record.response),
              "feedback": r.record.thumb, "comment": _cut(r.record.feedback_comment)} for r in rows]
    return {**to_jsonable(a), "evidence_lines": lines}


def _series(result: CheckResult) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    alerted = {(a.metric, a.group, a.window) for a in result.alerts}
    for seq, w in enumerate(result.windows):
        for s in w.summaries:
            if s.kind not in ("rate", "mean"):
                continue
            name = s.metric + (f" [{s.group}]" if s.group else "")
            d = out.setdefault(name, {"metric": s.metric, "group": s.group, "kind": s.kind, "x": [], "start": [],
                                      "y": [], "lo": [], "hi": [], "n": [], "marked": []})
            if (s.metric, s.group, w.index) in alerted:
                d["marked"].append(len(d["x"]))
            for key, val in (("x", seq), ("start", w.start), ("y", s.value), ("lo", s.ci_low), ("hi", s.ci_high),
                             ("n", s.n)):
                d[key].append(_num(val))
    return out


def _drift(result: CheckResult, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Every test whose BH-adjusted p is under ``alpha``, biggest effect first within each window."""
    rows = [{"window": w.index, "start": w.start, **to_jsonable(t)} for w in result.windows for t in w.tests
            if t.p_adj < alpha]
    return sorted(rows, key=lambda r: (r["start"], -abs(r["effect"] or 0)))


# -- HTML ------------------------------------------------------------------------------------------------
def render_monitor_html(doc: dict[str, Any]) -> str:
    title = f"lmcritic monitor — {doc['n_requests']} requests, {len(doc['windows'])} windows of {doc['window']}"
    body = [_summary(doc), _alerts(doc), _plots(doc), _drift_table(doc), _errors(doc), _reproduce(doc)]
    toc = "".join(f'<a href="#{k}">{v}</a>' for k, v in (("summary", "Summary"), ("alerts", "Alerts"),
                                                         ("series", "Time series"), ("drift", "Drift"),
                                                         ("ingestion", "Ingestion"), ("reproduce", "Reproduce")))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp()}">'
            f"<title>{esc(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head><body>"
            f'<nav class="toc">{toc}</nav><main><h1>{esc(title)}</h1>{"".join(body)}</main></body></html>\n')


def _summary(doc: dict) -> str:
    errors = sum(doc["ingestion"]["errors"].values())
    tiles = [(str(len(doc["alerts"])), "alerts", "bad" if doc["alerts"] else "good"),
             (str(doc["n_requests"]), "requests stored", ""),
             (str(len(doc["windows"])), f"windows of {doc['window']}", ""),
             (str(errors), "log rows not ingested (see Ingestion)", "bad" if errors else "")]
    span = doc["span"]
    kv = [("reference", doc["reference"]), ("score set", doc["scorer"]), ("store", doc["store"]),
          ("traffic from", _when(span[0]) if span else "—"), ("to", _when(span[1]) if span else "—"),
          ("generated", doc["generated"])]
    notes = "".join(f'<p class="muted">{esc(n)}</p>' for n in doc["notes"])
    return ('<section id="summary"><h2>Summary</h2><div class="glance">'
            + "".join(f'<div class="tile {c}"><div class="big">{esc(b)}</div>{esc(t)}</div>' for b, t, c in tiles)
            + '</div><div class="grid">' + "".join(f'<div class="kv"><b>{esc(k)}</b> {esc(v)}</div>' for k, v in kv)
            + f"</div>{notes}</section>")


def _alerts(doc: dict) -> str:
    parts = ['<section id="alerts"><h2>Alerts</h2>']
    if not doc["alerts"]:
        parts.append('<p class="muted">No alert rule fired.</p>')
    for i, a in enumerate(doc["alerts"]):
        parts.append(f'<div class="finding fail {esc(a["severity"])}" id="alert-{i}"><h3>'
                     f'<span class="badge {esc(a["severity"])}">{esc(a["severity"])}</span> {esc(a["rule"])} — '
                     f'window {esc(_when(a["start"]))} – {esc(_when(a["end"]))}</h3>'
                     f'<p class="summary">{esc(a["message"])}</p>{_lines_table(a["evidence_lines"])}</div>')
    return "".join(parts) + "</section>"


def _lines_table(lines: list[dict]) -> str:
    if not lines:
        return '<p class="muted">No single log line stands behind this alert (a shift of the whole window).</p>'
    rows = "".join(f'<tr><td class="sm">{esc(ln["source"] or "")}:{esc(ln["line"] or "")}</td><td class="sm">'
                   f'{esc(ln["time"])}</td><td class="txt">{esc(ln["prompt"])}</td><td class="txt">'
                   f'{esc(ln["response"] or "")}</td><td class="sm">{esc(_fb(ln))}</td></tr>' for ln in lines)
    return (f"<details open><summary>{len(lines)} log lines behind it</summary><table><tr><th>file:line</th>"
            f"<th>time</th><th>prompt</th><th>response</th><th>feedback</th></tr>{rows}</table></details>")


def _plots(doc: dict) -> str:
    figs = []
    for name, s in doc["series"].items():
        plot = {"kind": "band", "title": f"{name} (95% CI; red: alert)", "x": s["x"], "y": s["y"], "lo": s["lo"],
                "hi": s["hi"], "marked": s["marked"], "x_label": "window (see the Drift table for times)"}
        figs.append(_svg.render(plot))
    return '<section id="series"><h2>Time series</h2>' + "".join(figs) + "</section>"


def _drift_table(doc: dict) -> str:
    rows = "".join(f"<tr><td>{esc(_when(d['start']))}</td><td>{esc(d['metric'])}</td><td>{esc(d['group'] or '')}</td>"
                   f"<td>{esc(d['test'])}</td><td>{esc(d['method'])}</td><td>{esc(_svg._fmt(d['reference']))}</td>"
                   f"<td>{esc(_svg._fmt(d['value']))}</td>"
                   f"<td>{esc(d['effect_name'])} {esc(_svg._fmt(d['effect']))}</td>"
                   f"<td>{esc(_svg._fmt(d['p_adj']))}</td><td>{esc(d['n'])}</td></tr>" for d in doc["drift"])
    head = ("<tr><th>window</th><th>metric</th><th>group</th><th>test</th><th>method</th><th>reference</th>"
            "<th>window value</th><th>size</th><th>BH p</th><th>n</th></tr>")
    body = f"<table>{head}{rows}</table>" if rows else '<p class="muted">Nothing drifted (BH p &lt; 0.05).</p>'
    return f'<section id="drift"><h2>What drifted, and by how much</h2>{body}</section>'


def _errors(doc: dict) -> str:
    ing = doc["ingestion"]
    counts = ", ".join(f"{k}: {v}" for k, v in ing["errors"].items()) or "none"
    rows = "".join(f'<tr><td class="sm">{esc(e["source"])}:{esc(e["line"])}</td><td>{esc(e["kind"])}</td>'
                   f'<td class="txt">{esc(e["message"])}</td><td class="txt">{esc(e["excerpt"] or "")}</td></tr>'
                   for e in ing["examples"])
    table = (f"<table><tr><th>file:line</th><th>error</th><th>message</th><th>excerpt</th></tr>{rows}</table>"
             if rows else "")
    return (f'<section id="ingestion"><h2>Ingestion</h2><p>Rows not ingested, by kind: {esc(counts)}</p>{table}'
            "</section>")


def _reproduce(doc: dict) -> str:
    cmd = f"lmcritic monitor report --store {doc['store']} --window {doc['window']} --reference {doc['reference']}"
    return f'<section id="reproduce"><h2>Reproduce</h2><pre>{esc(cmd)}</pre></section>'


def render_monitor_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False, default=str)


def _fb(line: dict) -> str:
    thumb = {1: "thumbs up", -1: "thumbs down"}.get(int(line.get("feedback") or 0), "")
    return f"{thumb} {line.get('comment') or ''}".strip()


def _cut(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def _num(v: object) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _when(ts: Any) -> str:
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
