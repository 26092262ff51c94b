"""Inline SVG (and token-span) renderings of normalised plot dicts: no JavaScript, no external assets.

Every string that reaches the markup goes through :func:`lmcritic.report._escape.html_text`; numbers are
formatted by us, so attribute values never carry outside text.
"""
from __future__ import annotations

import math
from typing import Any

from lmcritic.report._escape import html_text as esc
from lmcritic.report._escape import shorten

COLOURS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2")


def render(plot: dict[str, Any]) -> str:
    """A ``<figure>`` for one plot (an explanatory note for an invalid one)."""
    fn = {"bars": bars, "reliability": reliability, "line": line, "tokens": tokens, "graph": graph,
          "band": band}.get(plot["kind"])
    body = fn(plot) if fn else f'<p class="muted">plot not shown: {esc(plot.get("message", "invalid plot"))}</p>'
    return (f'<figure class="plot plot-{esc(plot["kind"])}"><figcaption>{esc(plot.get("title", ""))}</figcaption>'
            f"{body}</figure>")


def bars(p: dict) -> str:
    labels, vals = p["labels"], p["values"]
    lo, hi = p.get("ci_low") or [None] * len(vals), p.get("ci_high") or [None] * len(vals)
    nums = [v for v in [*vals, *lo, *hi, p.get("reference")] if v is not None]
    a, b = _range(nums, include_zero=True)
    left, width, row = 210, 330, 24
    height = row * len(labels) + 42
    sx = _scale(a, b, left, left + width)
    out = [_svg_open(left + width + 230, height, "Bar chart with 95% confidence intervals")]
    out += _x_axis(a, b, sx, row * len(labels) + 12, p.get("x_label", ""))
    for i, label in enumerate(labels):
        y = 8 + i * row
        out.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="lbl"><title>{esc(label)}</title>'
                   f"{esc(shorten(label, 34))}</text>")
        if vals[i] is None:
            continue
        x0, x1 = sorted((sx(max(a, min(0.0, b))), sx(vals[i])))
        out.append(f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 1):.1f}" height="{row - 8}" '
                   f'fill="{COLOURS[0]}" opacity="0.75"/>')
        if lo[i] is not None and hi[i] is not None:
            out.append(_whisker(sx(lo[i]), sx(hi[i]), y + row / 2))
        n = p["n"][i] if p.get("n") else None
        note = f"{_fmt(vals[i])}" + (f" [{_fmt(lo[i])}, {_fmt(hi[i])}]" if lo[i] is not None and hi[i] is not None
                                     else "") + (f" n={n}" if n is not None else "")
        out.append(f'<text x="{left + width + 6}" y="{y + 15}" class="note">{esc(note)}</text>')
    if p.get("reference") is not None:
        x = sx(p["reference"])
        out.append(f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{row * len(labels) + 12}" class="ref"/>')
    return "".join(out) + "</svg>"


def reliability(p: dict) -> str:
    size, left, top = 260, 48, 10
    sx, sy = _scale(0, 1, left, left + size), _scale(0, 1, top + size, top)
    out = [_svg_open(left + size + 200, size + 56, "Reliability diagram: accuracy against confidence per bin")]
    out += _x_axis(0, 1, sx, top + size, "confidence") + _y_axis(0, 1, sy, left, "accuracy")
    out.append(f'<line x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(1):.1f}" y2="{sy(1):.1f}" class="ref"/>')
    for b in p["bins"]:
        if not b["count"] or b["accuracy"] is None:
            continue
        x0, x1 = sx(b["low"]) + 1, sx(b["high"]) - 1
        out.append(f'<rect x="{x0:.1f}" y="{sy(b["accuracy"]):.1f}" width="{x1 - x0:.1f}" '
                   f'height="{sy(0) - sy(b["accuracy"]):.1f}" fill="{COLOURS[0]}" opacity="0.7">'
                   f'<title>{esc(_bin_note(b))}</title></rect>')
        if b["confidence"] is not None:
            ya, yc = sorted((sy(b["accuracy"]), sy(b["confidence"])))
            out.append(f'<rect x="{x0:.1f}" y="{ya:.1f}" width="{x1 - x0:.1f}" height="{yc - ya:.1f}" '
                       f'fill="{COLOURS[1]}" opacity="0.25"/>')
        out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{sy(b["accuracy"]) - 3:.1f}" text-anchor="middle" '
                   f'class="tiny">{b["count"]}</text>')
    lx = left + size + 14
    out.append(f'<rect x="{lx}" y="20" width="12" height="12" fill="{COLOURS[0]}" opacity="0.7"/>'
               f'<text x="{lx + 18}" y="30" class="note">accuracy in bin (n above)</text>'
               f'<rect x="{lx}" y="40" width="12" height="12" fill="{COLOURS[1]}" opacity="0.25"/>'
               f'<text x="{lx + 18}" y="50" class="note">gap to confidence</text>'
               f'<line x1="{lx}" y1="66" x2="{lx + 12}" y2="66" class="ref"/>'
               f'<text x="{lx + 18}" y="70" class="note">perfect calibration</text>')
    return "".join(out) + "</svg>"


def line(p: dict) -> str:
    xs = [x for s in p["series"] for x in s["x"] if x is not None]
    ys = [y for s in p["series"] for y in s["y"] if y is not None]
    if not xs or not ys:
        return '<p class="muted">no data</p>'
    left, width, top, height = 56, 520, 10, 170
    sx, sy = _scale(*_range(xs), left, left + width), _scale(*_range(ys), top + height, top)
    out = [_svg_open(left + width + 20, height + 50, "Line plot")]
    out += _x_axis(*_range(xs), sx, top + height, p.get("x_label", "")) + _y_axis(*_range(ys), sy, left,
                                                                                  p.get("y_label", ""))
    for i, s in enumerate(p["series"]):
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(s["x"], s["y"]) if x is not None and y is not None)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="1.5"/>')
        if s["name"]:
            out.append(f'<text x="{left + 8}" y="{top + 14 + 14 * i}" class="note" '
                       f'fill="{COLOURS[i % len(COLOURS)]}">{esc(s["name"])}</text>')
    return "".join(out) + "</svg>"


def band(p: dict) -> str:
    """A time series with its 95% CI band, an optional reference line and marked (alerting) points."""
    pts = [(x, y, lo, hi) for x, y, lo, hi in zip(p["x"], p["y"], p["lo"], p["hi"]) if y is not None]
    if not pts:
        return '<p class="muted">no data</p>'
    ys = [v for _, y, lo, hi in pts for v in (y, lo, hi) if v is not None and math.isfinite(v)]
    if p.get("reference") is not None:
        ys.append(p["reference"])
    left, width, top, height = 56, 520, 10, 150
    xa, xb = _range([x for x, *_ in pts])
    sx, sy = _scale(xa, xb, left, left + width), _scale(*_range(ys), top + height, top)
    out = [_svg_open(left + width + 20, height + 50, "Time series with 95% confidence band")]
    out += _x_axis(xa, xb, sx, top + height, p.get("x_label", "")) + _y_axis(*_range(ys), sy, left, "")
    ok = [(x, lo, hi) for x, _, lo, hi in pts if lo is not None and hi is not None and math.isfinite(lo)
          and math.isfinite(hi)]
    if ok:
        poly = [f"{sx(x):.1f},{sy(hi):.1f}" for x, _, hi in ok] + [f"{sx(x):.1f},{sy(lo):.1f}" for x, lo, _ in ok[::-1]]
        out.append(f'<polygon points="{" ".join(poly)}" fill="{COLOURS[0]}" opacity="0.18"/>')
    line_pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _, _ in pts)
    out.append(f'<polyline points="{line_pts}" fill="none" stroke="{COLOURS[0]}" stroke-width="1.5"/>')
    if p.get("reference") is not None:
        y = sy(p["reference"])
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" class="ref"/>')
    marked = set(p.get("marked") or ())
    for i, (x, y, _, _) in enumerate(pts):
        if i in marked:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{COLOURS[1]}"/>')
    return "".join(out) + "</svg>"


def tokens(p: dict) -> str:
    """Token heatmap as spans: red for positive/high weights, blue for negative; exact weight on hover."""
    ws = [w for w in p["weights"] if w is not None]
    peak = max((abs(w) for w in ws), default=0.0) or 1.0
    spans = []
    for tok, w in zip(p["tokens"], p["weights"]):
        a = 0.0 if w is None else min(abs(w) / peak, 1.0) * 0.85
        rgb = "220,38,38" if (w or 0) >= 0 else "37,99,235"
        text = tok.replace("\n", "⏎").replace("Ġ", " ").replace("▁", " ")
        spans.append(f'<span style="background:rgba({rgb},{a:.2f})" title="{esc(_fmt(w))}">{esc(text)}</span>')
    more = p["n_tokens"] - len(p["tokens"])
    tail = f'<span class="muted"> … {more} more tokens</span>' if more > 0 else ""
    return f'<div class="tokens">{"".join(spans)}{tail}</div>'


def graph(p: dict) -> str:
    """Layered drawing of a defect graph: column = longest path from a root; arrows point from cause to effect."""
    depth = _depths(p["nodes"], p["edges"])
    cols: dict[int, list[str]] = {}
    for n in p["nodes"]:
        cols.setdefault(depth[n["id"]], []).append(n["id"])
    bw, bh, gx, gy = 170, 34, 60, 16
    pos = {nid: (10 + d * (bw + gx), 10 + i * (bh + gy)) for d, ids in cols.items() for i, nid in enumerate(ids)}
    width = 20 + (max(cols) + 1) * (bw + gx)
    height = 20 + max(len(v) for v in cols.values()) * (bh + gy)
    out = [_svg_open(width, height, "Defect graph")]
    for e in p["edges"]:
        (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
        out.append(_arrow(x0 + bw, y0 + bh / 2, x1, y1 + bh / 2, e["label"]))
    labels = {n["id"]: n for n in p["nodes"]}
    for nid, (x, y) in pos.items():
        n = labels[nid]
        cls = f"node sev-{n['severity']}" if n["severity"] in ("critical", "high", "medium", "low") else "node"
        out.append(f'<rect x="{x}" y="{y}" width="{bw}" height="{bh}" rx="5" class="{cls}"/>'
                   f'<text x="{x + 6}" y="{y + 21}" class="lbl"><title>{esc(n["label"])}</title>'
                   f'{esc(shorten(n["label"], 26))}</text>')
    return "".join(out) + "</svg>"


def ci_strip(value: float | None, lo: float | None, hi: float | None, a: float = 0.0, b: float = 1.0) -> str:
    """A tiny point-and-whisker for a scorecard row (fixed [a, b] scale)."""
    if value is None:
        return ""
    sx = _scale(a, b, 4, 116)
    parts = [_svg_open(120, 16, "estimate with 95% CI", cls="strip"),
             '<line x1="4" y1="8" x2="116" y2="8" stroke="#e5e7eb"/>']
    if lo is not None and hi is not None:
        parts.append(_whisker(sx(_clip(lo, a, b)), sx(_clip(hi, a, b)), 8, cap=4))
    parts.append(f'<circle cx="{sx(_clip(value, a, b)):.1f}" cy="8" r="3.5" fill="#111827"/>')
    return "".join(parts) + "</svg>"


# -- helpers ---------------------------------------------------------------------------------------
def _svg_open(w: float, h: float, label: str, cls: str = "chart") -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" width="{w:.0f}" height="{h:.0f}" '
            f'viewBox="0 0 {w:.0f} {h:.0f}" role="img" aria-label="{esc(label)}">')


def _scale(a: float, b: float, p0: float, p1: float):
    span = (b - a) or 1.0
    return lambda v: p0 + (float(v) - a) / span * (p1 - p0)


def _range(vals: list[float], include_zero: bool = False) -> tuple[float, float]:
    a, b = min(vals), max(vals)
    if include_zero:
        a, b = min(a, 0.0), max(b, 0.0)
    if 0 <= a and b <= 1 and include_zero:
        return 0.0, 1.0 if b > 0.3 else b * 1.1 or 1.0
    if a == b:
        return a - 1, b + 1
    pad = (b - a) * 0.05
    return (a if include_zero and a == 0 else a - pad), b + pad


def _ticks(a: float, b: float, n: int = 5) -> list[float]:
    raw = (b - a) / n or 1.0
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= m * step)
    start = math.ceil(a / step) * step
    return [start + i * step for i in range(int((b - start) / step + 1e-9) + 1)]


def _x_axis(a: float, b: float, sx, y: float, label: str) -> list[str]:
    out = [f'<line x1="{sx(a):.1f}" y1="{y}" x2="{sx(b):.1f}" y2="{y}" class="axis"/>']
    for t in _ticks(a, b):
        out.append(f'<line x1="{sx(t):.1f}" y1="{y}" x2="{sx(t):.1f}" y2="{y + 4}" class="axis"/>'
                   f'<text x="{sx(t):.1f}" y="{y + 15}" text-anchor="middle" class="tiny">{_fmt(t)}</text>')
    if label:
        out.append(f'<text x="{(sx(a) + sx(b)) / 2:.1f}" y="{y + 28}" text-anchor="middle" class="note">'
                   f"{esc(label)}</text>")
    return out


def _y_axis(a: float, b: float, sy, x: float, label: str) -> list[str]:
    out = [f'<line x1="{x}" y1="{sy(a):.1f}" x2="{x}" y2="{sy(b):.1f}" class="axis"/>']
    for t in _ticks(a, b, 4):
        out.append(f'<text x="{x - 4}" y="{sy(t) + 3:.1f}" text-anchor="end" class="tiny">{_fmt(t)}</text>')
    if label:
        out.append(f'<text x="12" y="{(sy(a) + sy(b)) / 2:.1f}" class="note" text-anchor="middle" '
                   f'transform="rotate(-90 12 {(sy(a) + sy(b)) / 2:.1f})">{esc(label)}</text>')
    return out


def _whisker(x0: float, x1: float, y: float, cap: float = 6) -> str:
    return (f'<path d="M{x0:.1f} {y - cap / 2:.1f}v{cap}M{x0:.1f} {y:.1f}H{x1:.1f}M{x1:.1f} {y - cap / 2:.1f}v{cap}" '
            'stroke="#111827" stroke-width="1.3" fill="none"/>')


def _arrow(x0: float, y0: float, x1: float, y1: float, label: str) -> str:
    ang = math.atan2(y1 - y0, x1 - x0)
    h1 = (x1 - 8 * math.cos(ang - 0.4), y1 - 8 * math.sin(ang - 0.4))
    h2 = (x1 - 8 * math.cos(ang + 0.4), y1 - 8 * math.sin(ang + 0.4))
    text = (f'<text x="{(x0 + x1) / 2:.1f}" y="{(y0 + y1) / 2 - 3:.1f}" text-anchor="middle" class="tiny">'
            f"{esc(shorten(label, 18))}</text>") if label else ""
    return (f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" class="edge"/>'
            f'<polygon points="{x1:.1f},{y1:.1f} {h1[0]:.1f},{h1[1]:.1f} {h2[0]:.1f},{h2[1]:.1f}" fill="#6b7280"/>'
            + text)


def _depths(nodes: list[dict], edges: list[dict]) -> dict[str, int]:
    depth = {n["id"]: 0 for n in nodes}
    for _ in range(len(nodes)):  # longest-path relaxation; cycles stop after |nodes| rounds
        changed = False
        for e in edges:
            if depth[e["target"]] < depth[e["source"]] + 1 and depth[e["source"]] + 1 < len(nodes):
                depth[e["target"]], changed = depth[e["source"]] + 1, True
        if not changed:
            break
    return depth


def _bin_note(b: dict) -> str:
    return (f"confidence {b['low']:.1f}–{b['high']:.1f}: n={b['count']}, accuracy {_fmt(b['accuracy'])}, "
            f"mean confidence {_fmt(b['confidence'])}")


def _clip(v: float, a: float, b: float) -> float:
    return min(max(v, a), b)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    v = float(v)
    if abs(v) < 1e-12:
        return "0"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.2e}"
    if v == int(v) and abs(v) < 1e5:
        return str(int(v))
    return f"{v:.4g}" if abs(v) < 100 else f"{v:.1f}"
