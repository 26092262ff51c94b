"""The HTML report's inline stylesheet and its one tiny script (opens collapsed sections on a link jump)."""
from __future__ import annotations

import base64
import hashlib
import re

CSS = """
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f9fafb;--crit:#7f1d1d;--high:#dc2626;--med:#d97706;
--low:#ca8a04;--ok:#059669;--info:#2563eb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);margin:0;
background:#fff}
main{max-width:1180px;margin:0 auto;padding:18px 26px 60px}
h1{font-size:22px;margin:6px 0 2px}h2{font-size:18px;margin:30px 0 8px;border-bottom:2px solid var(--line);
padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
nav.toc{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:6px 26px;z-index:2;
font-size:13px}nav.toc a{margin-right:14px;color:var(--info);text-decoration:none}
.muted{color:var(--muted)}.mono,code{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
table{border-collapse:collapse;width:100%;margin:6px 0 10px}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;font-size:12px}
td.txt{max-width:420px;white-space:pre-wrap;word-break:break-word}td.in{min-width:300px}
td.sm{font-size:11px;max-width:220px;word-break:break-word}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:4px 18px;margin:8px 0}
.kv b{display:inline-block;min-width:110px;color:var(--muted);font-weight:500}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff;
background:var(--muted);white-space:nowrap}
.badge.fail{background:var(--high)}.badge.pass{background:var(--ok)}.badge.na{background:#9ca3af}
.badge.critical{background:var(--crit)}.badge.high{background:var(--high)}.badge.medium{background:var(--med)}
.badge.low{background:var(--low)}.badge.info{background:var(--info)}
.banner{border:2px solid var(--med);background:#fffbeb;padding:10px 14px;border-radius:6px;margin:12px 0}
.glance{display:flex;gap:12px;flex-wrap:wrap;margin:10px 0}
.tile{border:1px solid var(--line);border-radius:8px;padding:8px 12px;min-width:150px;background:var(--bg)}
.tile .big{font-size:22px;font-weight:700}.tile.bad{border-color:var(--high)}.tile.good{border-color:var(--ok)}
.area{border:1px solid var(--line);border-radius:8px;padding:4px 12px 8px;margin:10px 0}
.finding{border:1px solid var(--line);border-left:6px solid var(--ok);border-radius:6px;padding:6px 14px 10px;
margin:12px 0}
.finding.fail.critical{border-left-color:var(--crit)}.finding.fail.high{border-left-color:var(--high)}
.finding.fail.medium{border-left-color:var(--med)}.finding.fail.low,.finding.fail.info{border-left-color:var(--low)}
.finding.not_applicable{border-left-color:#9ca3af}
.finding h3{margin:6px 0}.finding .summary{white-space:pre-wrap;word-break:break-word}
figure.plot{margin:8px 0;display:inline-block;vertical-align:top;margin-right:18px;max-width:100%;overflow-x:auto}
figcaption{font-size:12px;font-weight:600;margin-bottom:2px}
svg.chart text{font-size:11px;fill:var(--fg)}svg .tiny{font-size:9px;fill:var(--muted)}
svg .note{font-size:10px;fill:var(--muted)}svg .axis{stroke:#9ca3af}svg .ref{stroke:#6b7280;stroke-dasharray:4 3}
svg .edge{stroke:#9ca3af;stroke-width:1.4}svg .node{fill:#eef2ff;stroke:#6366f1}
svg .node.sev-critical,svg .node.sev-high{fill:#fee2e2;stroke:var(--high)}svg .node.sev-medium{fill:#ffedd5;
stroke:var(--med)}svg.strip{vertical-align:middle}
.tokens{font-family:"DejaVu Sans Mono",Menlo,monospace;font-size:12px;line-height:1.9;white-space:pre-wrap;
max-width:1000px;word-break:break-all;border:1px solid var(--line);padding:6px;border-radius:4px}
.tokens span{border-radius:2px}
details{margin:6px 0}details>summary{cursor:pointer;font-weight:600}
details.probe{border:1px solid var(--line);border-radius:6px;padding:4px 10px}
tr:target,article:target{background:#fef9c3}
pre{white-space:pre-wrap;word-break:break-word;background:var(--bg);padding:8px;border-radius:4px;max-height:360px;
overflow:auto}
@media print{nav.toc{display:none}details{display:block}}
"""

SCRIPT = ("function lmcOpen(){var h=decodeURIComponent(location.hash.slice(1));if(!h)return;"
          "var e=document.getElementById(h);for(var p=e;p;p=p.parentElement){if(p.tagName==='DETAILS')p.open=true;}"
          "if(e)e.scrollIntoView();}window.addEventListener('hashchange',lmcOpen);"
          "document.addEventListener('DOMContentLoaded',lmcOpen);")


def script_hash() -> str:
    """CSP hash of :data:`SCRIPT`: only this script may run, so injected markup could not execute anyway."""
    return "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")


def csp() -> str:
    return (f"default-src 'none'; style-src 'unsafe-inline'; script-src '{script_hash()}'; img-src data:; "
            "base-uri 'none'; form-action 'none'")


_RULE = re.compile(r"([^{}]+)\{((?:[^{}]|\{[^{}]*\})*)\}")  # selectors { body }, one level of nesting (@media)
_PAGE = (":root", "body")  # the report owns the page; embedded, these become the embedding element


def scoped_css(scope: str, css: str = CSS) -> str:
    """:data:`CSS` with every selector under ``.scope``, for markup placed in a page that is not ours (a
    notebook output): nothing outside the scope element changes, and it looks like the report inside."""
    out = []
    for m in _RULE.finditer(css):
        selectors, body = m.group(1).strip(), m.group(2)
        if selectors.startswith("@"):
            out.append(f"{selectors}{{{scoped_css(scope, body)}}}")
        else:
            out.append(",".join(_scoped(s.strip(), scope) for s in selectors.split(",")) + f"{{{body}}}")
    return "\n".join(out)


def _scoped(selector: str, scope: str) -> str:
    head, sep, rest = selector.partition(" ")
    return f".{scope}{sep}{rest}" if head in _PAGE else f".{scope} {selector}"
