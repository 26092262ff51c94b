"""Plot data for the report, checked and normalised (rendering lives in ``_svg``).

Findings carry typed plot specs in ``details["plots"]`` (:mod:`lmcritic.plots`); records give token heatmaps
from a rolling log-prob result (``tokens``/``logprobs``/``offsets`` in ``Record.output``, as the perplexity
probes store it) and from stored explanations (:class:`~lmcritic.interpret.cases.CaseExplanation`).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from lmcritic import plots
from lmcritic.probes.base import Record

KINDS = tuple(plots.KINDS)
MAX_TOKENS = 400


def finding_plots(details: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The finding's plots, each normalised or marked invalid (with the reason)."""
    raw = details.get(plots.PLOTS_KEY)
    return [normalise(p) for p in raw] if isinstance(raw, list) else []


def record_plots(records: Sequence[Record], max_plots: int = 3) -> list[dict[str, Any]]:
    """Token heatmaps (and one surprisal line) from the per-token log-probs of the given records."""
    out: list[dict[str, Any]] = []
    for r in records:
        tokens, logprobs = _token_texts(r), r.output.get("logprobs")
        if not tokens or not isinstance(logprobs, list) or len(logprobs) != len(tokens):
            continue
        surprisal = [-float(x) for x in logprobs]
        if not out:
            out.append(_with_case(plots.line(f"Surprisal per token position — {r.case_id}", range(len(surprisal)),
                                             surprisal, "token position", "surprisal (nats)"), r.case_id))
        out.append(_with_case(plots.Tokens(f"Surprisal per token — {r.case_id} (nats; darker = more surprising)",
                                           tuple(tokens), tuple(surprisal)), r.case_id))
    return out[: max_plots * 2]


def explanation_plots(record: Record, max_plots: int = 4) -> list[dict[str, Any]]:
    """Word heatmaps of a stored explanation record (one per method, both sides of a pair)."""
    from lmcritic._serde import from_jsonable
    from lmcritic.interpret.cases import CaseExplanation
    from lmcritic.interpret.html import tokens_plot

    try:
        ce = from_jsonable(CaseExplanation, record.output)
    except (TypeError, ValueError, KeyError):
        return [_invalid({"title": record.case_id}, "not a stored explanation")]
    sides = [s for s in (ce.original, ce.variant) if s is not None]
    return [_with_case(tokens_plot(ex), record.case_id) for s in sides for ex in s.explanations][:max_plots]


def normalise(p: Any) -> dict[str, Any]:
    """A plot dict with finite numbers and equal-length lists, or ``{"kind": "invalid", ...}`` saying why."""
    try:
        spec = plots.parse({k: v for k, v in p.items() if k != "case_id"} if isinstance(p, Mapping) else p)
    except plots.PlotError as err:
        return _invalid(p if isinstance(p, Mapping) else {}, str(err))
    try:
        body = _NORMALISERS[spec.kind](spec)
    except (TypeError, ValueError) as err:
        return _invalid(p, f"malformed {spec.kind} plot: {err}")
    extra = {"case_id": p["case_id"]} if "case_id" in p else {}
    return {"kind": spec.kind, "title": str(spec.title or spec.kind), **body, **extra}


def _bars(p: plots.Bars) -> dict:
    labels = [str(x) for x in p.labels]
    n = list(p.n) if p.n else [None] * len(labels)
    if len(n) != len(labels):
        raise ValueError("n has another length than labels")
    return {"labels": labels, "values": _nums(p.values, len(labels), "values"),
            "ci_low": _nums(p.ci_low, len(labels), "ci_low", optional=True),
            "ci_high": _nums(p.ci_high, len(labels), "ci_high", optional=True), "n": n,
            "x_label": str(p.x_label or ""), "reference": _num(p.reference)}


def _reliability(p: plots.Reliability) -> dict:
    if not p.bins:
        raise ValueError("no bins")
    return {"bins": [{"low": float(b.low), "high": float(b.high), "count": int(b.count or 0),
                      "confidence": _num(b.confidence), "accuracy": _num(b.accuracy)} for b in p.bins]}


def _line(p: plots.Line) -> dict:
    series = []
    for s in p.series:
        x = _nums(s.x, None, "x")
        series.append({"name": str(s.name or ""), "x": x, "y": _nums(s.y, len(x or ()), "y")})
    return {"series": series, "x_label": str(p.x_label or ""), "y_label": str(p.y_label or "")}


def _tokens(p: plots.Tokens) -> dict:
    tokens = [str(t) for t in p.tokens]
    weights = _nums(p.weights, len(tokens), "weights") or []
    shown = min(len(tokens), MAX_TOKENS)
    return {"tokens": tokens[:shown], "weights": weights[:shown], "n_tokens": len(tokens)}


def _graph(p: plots.Graph) -> dict:
    nodes = [{"id": str(n.id), "label": str(n.label or n.id), "severity": str(n.severity or "")} for n in p.nodes]
    ids = {n["id"] for n in nodes}
    edges = [{"source": str(e.source), "target": str(e.target), "label": str(e.label or "")} for e in p.edges
             if str(e.source) in ids and str(e.target) in ids]
    return {"nodes": nodes[:60], "edges": edges[:200]}


_NORMALISERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "bars": _bars, "reliability": _reliability, "line": _line, "tokens": _tokens, "graph": _graph}


# -- helpers ---------------------------------------------------------------------------------------
def _token_texts(r: Record) -> list[str] | None:
    """Token strings cut from the record's text by their character offsets (with the whitespace before each), so
    byte-level BPE pieces (``Ġ``, mojibake of UTF-8 bytes) read as the text did; else the stored tokens."""
    tokens, offsets, text = r.output.get("tokens"), r.output.get("offsets"), r.text
    if not isinstance(tokens, list) or not tokens:
        return None
    if not (isinstance(offsets, list) and isinstance(text, str) and len(offsets) == len(tokens)):
        return [str(t) for t in tokens]
    out, prev = [], 0
    for start, end in offsets:
        out.append(text[min(prev, start):end] if end > start else "")
        prev = max(prev, end)
    return out


def _with_case(plot: plots.Plot, case_id: str) -> dict[str, Any]:
    return normalise({**plots.to_json(plot), "case_id": case_id})


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _nums(xs: Any, length: int | None, name: str, optional: bool = False) -> list[float | None] | None:
    if xs is None and optional:
        return None
    vals = [_num(x) for x in xs]
    if length is not None and len(vals) != length:
        raise ValueError(f"{name} has {len(vals)} entries, expected {length}")
    return vals


def _invalid(p: Mapping[str, Any], why: str) -> dict[str, Any]:
    return {"kind": "invalid", "title": str(p.get("title") or "plot"), "message": why}
