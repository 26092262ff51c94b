"""A run's scorecard inside a notebook cell (``Results._repr_html_`` and ``_repr_markdown_``).

It is the report's own summary, scorecard and failing findings, rendered by the same functions from the
same document, so it escapes exactly as ``report.html`` and ``report.md`` do. A notebook page is not the
report's page: there is no Content-Security-Policy to set and other cells share it. So the fragment
carries no script at all (the report's one script only opens collapsed sections on a link jump) and the
report's stylesheet comes scoped under one class, so nothing outside the fragment changes.
"""
from __future__ import annotations

from typing import Any

from lmcritic.report import html, markdown
from lmcritic.report._escape import html_text as esc
from lmcritic.report._escape import md
from lmcritic.report._style import scoped_css
from lmcritic.report._svg import _fmt

SCOPE = "lmcritic-inline"
MAX_MARKDOWN_FINDINGS = 20  # failing findings listed in the Markdown form (the HTML form folds them away)


def render_inline_html(doc: dict[str, Any]) -> str:
    """Summary tiles, the per-area scorecard and the failing findings (folded), in one scoped ``<div>``."""
    h, rid = doc["header"], doc["run_id"]
    fails = _failing(doc)
    folded = "".join(html._finding(f, rid) for f in fails)
    findings = (f"<details><summary>Failing findings ({len(fails)}), worst first</summary>{folded}</details>"
                if fails else '<p class="muted">No failing findings.</p>')
    return (f'<div class="{SCOPE}"><style>{scoped_css(SCOPE)}</style>'
            f"<h1>lmcritic — {esc(h['model'])} — run {esc(rid)}</h1>{html._summary(doc)}{html._scorecard(doc)}"
            f'{findings}<p class="muted">Full report with every case: <code>results.report()</code> or '
            f"<code>lmcritic report {esc(rid)}</code></p></div>")


def render_inline_markdown(doc: dict[str, Any]) -> str:
    """The Markdown report's header and scorecard, then one line per failing finding (the worst first)."""
    rid = doc["run_id"]
    lines = [f"## lmcritic — {md(doc['header']['model'])} — run `{rid}`", ""]
    lines += markdown._header(doc) + markdown._scorecard(doc)
    fails = _failing(doc)
    lines += [f"### Failing findings ({len(fails)}), worst first", ""] if fails else ["No failing findings.", ""]
    lines += [_finding_line(f) for f in fails[:MAX_MARKDOWN_FINDINGS]]
    if len(fails) > MAX_MARKDOWN_FINDINGS:
        lines.append(f"- … {len(fails) - MAX_MARKDOWN_FINDINGS} more: `results.failing()`")
    return "\n".join(lines + ["", f"Full report with every case: `results.report()` or `lmcritic report {rid}`"])


def _failing(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["verdict"] == "fail"]  # the document ranks them worst first


def _finding_line(f: dict[str, Any]) -> str:
    e = f.get("estimate")
    figure = f" — {_fmt(e['value'])} [{_fmt(e['ci_low'])}, {_fmt(e['ci_high'])}] (n={e['n']})" if e else ""
    return f"- **FAIL ({f['severity']})** {md(f['probe'])} · {md(f['name'])}{figure}: {md(f['summary'], 160)}"

