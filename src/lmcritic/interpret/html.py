"""Self-contained HTML fragments: token heatmaps and attention heatmaps (inline CSS, no scripts, no CDN).

Every token and title is escaped (model text is untrusted). Red pushes toward the explained target, blue
against it; the hover title gives the exact score. The report embeds these fragments as they are.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.interpret.types import Explanation

if TYPE_CHECKING:
    from lmcritic.interpret.cases import CaseExplanation
from lmcritic.plots import Tokens
from lmcritic.report._escape import html_text

_BOX = "font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;line-height:2.1"
_CELL = "padding:1px 2px;margin:0 1px;border-radius:3px"


def _clean(token: str) -> str:
    """Readable sub-word: byte-level BPE markers to spaces/newlines, WordPiece's ## dropped."""
    return token.replace("Ġ", " ").replace("Ċ", "⏎").replace("▁", " ").removeprefix("##") or "∅"


def _colour(weight: float, scale: float, signed: bool) -> str:
    a = 0.0 if scale <= 0 or not math.isfinite(weight) else min(1.0, abs(weight) / scale)
    if not signed or weight >= 0:
        return f"rgba(220,38,38,{a:.3f})"
    return f"rgba(37,99,235,{a:.3f})"


def _scale(weights: Sequence[float]) -> float:
    finite = [abs(w) for w in weights if math.isfinite(w)]
    return max(finite, default=0.0)


def token_heatmap_html(tokens: Sequence[str], weights: Sequence[float], title: str | None = None, *,
                       signed: bool = True, clean: bool = True) -> str:
    """An HTML fragment colouring each token by its weight (scaled to the largest |weight|)."""
    if len(tokens) != len(weights):
        from lmcritic.errors import InputError

        raise InputError(f"{len(tokens)} tokens but {len(weights)} weights", "give one weight per token")
    scale = _scale(weights)
    spans = []
    for tok, w in zip(tokens, weights):
        shown = _clean(tok) if clean else tok
        spans.append(f'<span title="{html_text(f"{tok!r}: {w:+.4g}")}" style="{_CELL};background:'
                     f'{_colour(w, scale, signed)}">{html_text(shown)}</span>')
    head = f"<figcaption><strong>{html_text(title)}</strong></figcaption>" if title else ""
    legend = _legend(scale, signed)
    return f'<figure class="lmc-tokens" style="margin:8px 0">{head}<div style="{_BOX}">{"".join(spans)}</div>' \
           f"{legend}</figure>"


def text_heatmap_html(text: str, spans: Sequence[tuple[int, int]], weights: Sequence[float],
                      title: str | None = None, *, signed: bool = True) -> str:
    """Like :func:`token_heatmap_html` but over the original text, its spacing and line breaks kept."""
    scale = _scale(weights)
    parts, last = [], 0
    for (a, b), w in zip(spans, weights):
        parts.append(html_text(text[last:a]).replace("\n", "<br>"))
        parts.append(f'<span title="{html_text(f"{w:+.4g}")}" style="{_CELL};background:'
                     f'{_colour(w, scale, signed)}">{html_text(text[a:b])}</span>')
        last = b
    parts.append(html_text(text[last:]).replace("\n", "<br>"))
    head = f"<figcaption><strong>{html_text(title)}</strong></figcaption>" if title else ""
    return f'<figure class="lmc-tokens" style="margin:8px 0">{head}<div style="{_BOX}">{"".join(parts)}</div>' \
           f"{_legend(scale, signed)}</figure>"


def _legend(scale: float, signed: bool) -> str:
    low = "against the target" if signed else ""
    return (f'<div style="font-size:11px;color:#555"><span style="{_CELL};background:rgba(220,38,38,0.8)">'
            f"&nbsp;&nbsp;</span> toward the target"
            + (f' <span style="{_CELL};background:rgba(37,99,235,0.8)">&nbsp;&nbsp;</span> {low}' if signed else "")
            + f" (full colour = |score| {scale:.3g})</div>")


def attention_heatmap_html(tokens: Sequence[str], matrix: Sequence[Sequence[float]], title: str | None = None,
                           max_tokens: int = 64) -> str:
    """A query × key table shaded by attention weight (rows: attending token; columns: attended token).

    Long inputs keep their last ``max_tokens`` tokens (the ones nearest the prediction) and say so.
    """
    n = len(tokens)
    if len(matrix) != n or any(len(r) != n for r in matrix):
        from lmcritic.errors import InputError

        raise InputError(f"attention matrix must be {n}×{n} for {n} tokens")
    start = max(0, n - max_tokens)
    toks = [_clean(t) for t in tokens[start:]]
    rows = [list(r[start:]) for r in matrix[start:]]
    scale = max((max(r, default=0.0) for r in rows), default=0.0) or 1.0
    cell = "width:14px;height:14px;padding:0;border:0"
    head = "".join(f'<th style="writing-mode:vertical-rl;font-weight:normal;{cell};height:auto">{html_text(t)}</th>'
                   for t in toks)
    body = []
    for t, r in zip(toks, rows):
        tds = "".join(f'<td title="{html_text(f"{w:.3f}")}" style="{cell};background:rgba(17,24,39,'
                      f'{min(1.0, max(0.0, w / scale)):.3f})"></td>' for w in r)
        body.append(f'<tr><th style="text-align:right;font-weight:normal;padding-right:4px">{html_text(t)}</th>'
                    f"{tds}</tr>")
    note = f"<div style='font-size:11px;color:#555'>last {len(toks)} of {n} tokens</div>" if start else ""
    cap = f"<figcaption><strong>{html_text(title)}</strong></figcaption>" if title else ""
    return (f'<figure class="lmc-attention" style="margin:8px 0;overflow-x:auto">{cap}<table style="border-collapse:'
            f'collapse;{_BOX};font-size:11px;line-height:1"><tr><th></th>{head}</tr>{"".join(body)}</table>'
            f"{note}</figure>")


def explanation_html(ex: Explanation, attention: bool = True) -> str:
    """One explanation: its word heatmap over the original text, plus the attention grid when it has one."""
    title = f"{ex.method} → {ex.target.label()}"
    if ex.delta is not None:
        title += f" (IG steps {ex.n_steps}, delta {ex.delta:+.3g})"
    out = text_heatmap_html(ex.target.text, ex.word_offsets, ex.word_scores, title,
                            signed=not ex.method.startswith("attention"))
    if attention and ex.attention is not None:
        out += attention_heatmap_html(ex.tokens, ex.attention, f"{ex.method}: attention (rows attend to columns)")
    return out


def tokens_plot(ex: Explanation, title: str | None = None) -> Tokens:
    """An explanation as a plot spec (a heatmap over its words)."""
    return Tokens(title or f"{ex.method} → {ex.target.label()}", tuple(ex.words),
                  tuple(round(float(w), 6) for w in ex.word_scores))


def case_html(ce: CaseExplanation) -> str:
    """A stored case's explanations (both sides of a pair), as one fragment."""
    parts = [f"<section><h3>{html_text(ce.probe_key)} / {html_text(ce.case_id)}</h3>"]
    for label, side in (("original", ce.original), ("variant", ce.variant)):
        if side is None:
            continue
        if ce.variant is not None:
            parts.append(f"<h4>{label}</h4>")
        faith = {f.method: f for f in side.faithfulness}
        for ex in side.explanations:
            parts.append(explanation_html(ex))
            f = faith.get(ex.method)
            if f is not None:
                parts.append(f"<p style='font-size:12px'>comprehensiveness {f.comprehensiveness:.3f} (random "
                             f"{f.random_comprehensiveness:.3f}), sufficiency {f.sufficiency:.3f} "
                             f"({html_text(f.units)})</p>")
    parts.append("</section>")
    return "".join(parts)


def page_html(cases: Sequence[Any], title: str = "lmcritic explanations") -> str:
    """A complete standalone page (no scripts, no external resources)."""
    body = "".join(case_html(ce) for ce in cases)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html_text(title)}</title></head>"
            f"<body style='font-family:system-ui,sans-serif;max-width:1100px;margin:24px auto'>"
            f"<h1>{html_text(title)}</h1>{body}</body></html>")
