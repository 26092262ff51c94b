"""Plot data found in findings and records, checked and normalised (rendering lives in ``_svg``).

Any probe gets plots without the report knowing it: ``details["plot"]`` / ``details["plots"]`` use the shared
schema (bars, reliability, line, tokens, graph); per-token arrays in records (``tokens`` + ``logprobs`` from the
perplexity probe, ``tokens`` + ``weights``/``attributions`` from explanations) become token heatmaps.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

KINDS = ("bars", "reliability", "line", "tokens", "graph")
MAX_TOKENS = 400
_WEIGHT_KEYS = ("weights", "attributions", "attribution", "scores", "saliency")


def finding_plots(details: dict) -> list[dict[str, Any]]:
    raw: list = []
    if isinstance(details.get("plot"), dict):
        raw.append(details["plot"])
    if isinstance(details.get("plots"), list):
        raw += [p for p in details["plots"] if isinstance(p, dict)]
    if not any(p.get("kind") == "reliability" for p in raw) and _is_bins(details.get("reliability")):
        raw.append({"kind": "reliability", "title": "Reliability diagram", "bins": details["reliability"]})
    if isinstance(details.get("graph"), dict):
        raw.append({"kind": "graph", "title": "Defect graph", **details["graph"]})
    return [normalise(p) for p in raw]


def record_plots(records: Sequence, max_plots: int = 3) -> list[dict[str, Any]]:
    """Token heatmaps (and one surprisal line) from per-token arrays of the given records."""
    out: list[dict[str, Any]] = []
    for r in records:
        out += [normalise({**p, "case_id": r.case_id}) for p in _own_plots(r.output)]
        tokens = _token_texts(r)
        if _seq(tokens) and _seq(r.output.get("logprobs")) and len(r.output["logprobs"]) == len(tokens):
            surprisal = [-float(x) for x in r.output["logprobs"]]
            if not out:
                out.append(normalise({"kind": "line", "title": f"Surprisal per token position — {r.case_id}",
                                      "x": list(range(len(surprisal))), "y": surprisal, "case_id": r.case_id,
                                      "x_label": "token position", "y_label": "surprisal (nats)"}))
            out.append(normalise({"kind": "tokens", "title": f"Surprisal per token — {r.case_id} (nats; darker = "
                                  "more surprising)", "tokens": tokens, "weights": surprisal, "case_id": r.case_id}))
        else:
            key = next((k for k in _WEIGHT_KEYS if _seq(r.output.get(k)) and _seq(tokens)
                        and len(r.output[k]) == len(tokens)), None)
            if key:
                out.append(normalise({"kind": "tokens", "title": f"{key.capitalize()} per token — {r.case_id}",
                                      "tokens": tokens, "weights": r.output[key], "case_id": r.case_id}))
        if _is_graph(r.output):
            out.append(normalise({"kind": "graph", "title": f"Defect graph — {r.case_id}", **_graph_of(r.output)}))
    return out[: max_plots * 2]


def normalise(p: dict) -> dict[str, Any]:
    """A plot dict with finite numbers and equal-length lists, or ``{"kind": "invalid", ...}`` saying why."""
    kind = p.get("kind")
    try:
        fn = _NORMALISERS[kind]
    except KeyError:
        return _invalid(p, f"unknown plot kind {kind!r} (known: {', '.join(KINDS)})")
    try:
        return {"kind": kind, "title": str(p.get("title") or kind), **fn(p),
                **({"case_id": p["case_id"]} if "case_id" in p else {})}
    except (TypeError, ValueError, KeyError) as err:
        return _invalid(p, f"malformed {kind} plot: {err}")


def _bars(p: dict) -> dict:
    labels = [str(x) for x in p["labels"]]
    values = _nums(p["values"], len(labels), "values")
    lo = _nums(p.get("ci_low"), len(labels), "ci_low", optional=True)
    hi = _nums(p.get("ci_high"), len(labels), "ci_high", optional=True)
    n = p.get("n") or [None] * len(labels)
    if len(n) != len(labels):
        raise ValueError("n has another length than labels")
    return {"labels": labels, "values": values, "ci_low": lo, "ci_high": hi, "n": list(n),
            "x_label": str(p.get("x_label") or p.get("value_label") or ""), "reference": _num(p.get("reference"))}


def _reliability(p: dict) -> dict:
    bins = [b for b in p["bins"] if isinstance(b, dict)]
    if not bins:
        raise ValueError("no bins")
    out = [{"low": float(b["low"]), "high": float(b["high"]), "count": int(b.get("count") or 0),
            "confidence": _num(b.get("confidence")), "accuracy": _num(b.get("accuracy"))} for b in bins]
    return {"bins": out}


def _line(p: dict) -> dict:
    series = p.get("series") or [{"name": p.get("name") or "", "x": p["x"], "y": p["y"]}]
    clean = []
    for s in series:
        x = _nums(s["x"], None, "x")
        y = _nums(s["y"], len(x), "y")
        clean.append({"name": str(s.get("name") or ""), "x": x, "y": y})
    return {"series": clean, "x_label": str(p.get("x_label") or ""), "y_label": str(p.get("y_label") or "")}


def _tokens(p: dict) -> dict:
    tokens = [str(t) for t in p["tokens"]]
    weights = _nums(p["weights"], len(tokens), "weights")
    shown = min(len(tokens), MAX_TOKENS)
    return {"tokens": tokens[:shown], "weights": weights[:shown], "n_tokens": len(tokens)}


def _graph(p: dict) -> dict:
    nodes = []
    for n in p["nodes"]:
        n = n if isinstance(n, dict) else {"id": n}
        nodes.append({"id": str(n["id"]), "label": str(n.get("label") or n["id"]),
                      "severity": str(n.get("severity") or n.get("kind") or "")})
    ids = {n["id"] for n in nodes}
    edges = []
    for e in p.get("edges") or []:
        e = e if isinstance(e, dict) else {"source": e[0], "target": e[1]}
        src, dst = str(e.get("source", e.get("from"))), str(e.get("target", e.get("to")))
        if src in ids and dst in ids:
            edges.append({"source": src, "target": dst, "label": str(e.get("label") or "")})
    return {"nodes": nodes[:60], "edges": edges[:200]}


_NORMALISERS = {"bars": _bars, "reliability": _reliability, "line": _line, "tokens": _tokens, "graph": _graph}


# -- helpers ---------------------------------------------------------------------------------------
def _token_texts(r) -> list | None:
    """Token strings cut from the input text by their character offsets (with the whitespace before each), so
    byte-level BPE pieces (``Ġ``, mojibake of UTF-8 bytes) read as the text did; else the stored tokens."""
    tokens, offsets, text = r.output.get("tokens"), r.output.get("offsets"), r.input.get("text")
    if not (_seq(tokens) and _seq(offsets) and isinstance(text, str) and len(offsets) == len(tokens)):
        return tokens
    out, prev = [], 0
    for start, end in offsets:
        out.append(text[min(prev, start):end] if end > start else "")
        prev = max(prev, end)
    return out


def _own_plots(output: dict) -> list[dict]:
    own = [output["plot"]] if isinstance(output.get("plot"), dict) else []
    return own + [p for p in output.get("plots") or [] if isinstance(p, dict)]


def _is_graph(d: dict) -> bool:
    g = d.get("graph") if isinstance(d.get("graph"), dict) else d
    return isinstance(g.get("nodes"), list) and isinstance(g.get("edges"), list) and bool(g["nodes"])


def _graph_of(d: dict) -> dict:
    g = d.get("graph") if isinstance(d.get("graph"), dict) else d
    return {"nodes": g["nodes"], "edges": g["edges"]}


def _is_bins(x: Any) -> bool:
    return isinstance(x, list) and bool(x) and all(isinstance(b, dict) and "low" in b and "high" in b for b in x)


def _seq(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and len(x) > 0


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


def _invalid(p: dict, why: str) -> dict[str, Any]:
    return {"kind": "invalid", "title": str(p.get("title") or "plot"), "message": why}
