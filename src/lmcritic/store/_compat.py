"""Reading runs stored by older lmcritic versions: the one place that knows their shapes.

Before schema version 2, a record's text, expected answer, prediction, label probabilities, group and
explanation targets lived inside its free-form ``input``/``output``/``tags`` under probe-chosen keys, and
each consumer guessed among them. :func:`legacy_fields` makes those guesses once, when an old row is read,
so every consumer reads the typed :class:`~lmcritic.probes.base.Record` fields whatever the run's age.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from lmcritic.probes.base import ExplainTarget

_TEXT_KEYS = ("text", "sentence", "prompt_text")
_TARGET_SOURCES = (("tags", "expected"), ("input", "expected"), ("output", "reference"), ("output", "gold"))
_VARIANT_SPAN_KEYS = ("variant_text", "perturbed", "adversarial")
SST2_LABELS = ("negative", "positive")


def legacy_fields(inp: Mapping[str, Any], out: Mapping[str, Any], tags: Mapping[str, Any],
                  config: Mapping[str, Any] | None = None,
                  labels: Callable[[], Sequence[str] | None] | None = None) -> dict[str, Any]:
    """The typed record fields of a row stored before they existed.

    Args:
        inp, out, tags: the stored ``input``, ``output`` and ``tags`` mappings.
        config: the probe's stored config (label words let label-word prompting rows from before
            ``input["explain"]`` existed get an explanation target).
        labels: gives the probe's declared label set, asked only for ``output["probs"]`` stored as a bare list.

    Returns:
        Keyword arguments for :class:`~lmcritic.probes.base.Record` (only fields that could be derived).
    """
    inp, out, tags = inp if isinstance(inp, Mapping) else {}, out or {}, tags or {}
    text = inp.get("text") if isinstance(inp.get("text"), str) else None
    explain = _explain(inp.get("explain"), text)
    sources = {"input": inp, "output": out, "tags": tags}
    fields = {
        "text": _text(inp),
        "target": _str(next((sources[s][k] for s, k in _TARGET_SOURCES if sources[s].get(k) is not None), None)),
        "prediction": _str(out.get("prediction")),
        "label_probs": _label_probs(out, labels),
        "group": _str(tags.get("group")),
        "explain": explain if explain is not None else _sst2_style(inp, out, tags, config or {}),
        "explain_variant": _explain(inp.get("explain_variant"),
                                    next((inp[k] for k in _VARIANT_SPAN_KEYS if isinstance(inp.get(k), str)), None)),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _text(inp: Mapping[str, Any]) -> str | None:
    """``input.text`` (or ``sentence``/``prompt_text``), else the context being explained, else the prompt."""
    for key in _TEXT_KEYS:
        if isinstance(inp.get(key), str):
            return str(inp[key])
    explain = inp.get("explain")
    if isinstance(explain, Mapping) and isinstance(explain.get("context"), str):
        return str(explain["context"])
    return str(inp["prompt"]) if isinstance(inp.get("prompt"), str) else None


def _explain(data: object, span: str | None) -> ExplainTarget | None:
    """``{"context", "target", "foil"}`` (a continuation) or ``{"text", "label"}`` (a classifier label)."""
    if not isinstance(data, Mapping):
        return None
    if "context" in data and "target" in data:
        context, target, kind = data["context"], data["target"], "continuation"
    elif "text" in data and "label" in data:
        context, target, kind = data["text"], data["label"], "label"
    else:
        return None
    if not isinstance(context, str) or target is None:
        return None
    foil = data.get("foil")
    return ExplainTarget(context, str(target), None if foil is None else str(foil), kind, span)


def _sst2_style(inp: Mapping[str, Any], out: Mapping[str, Any], tags: Mapping[str, Any],
                config: Mapping[str, Any]) -> ExplainTarget | None:
    """Label-word prompting rows stored before ``input["explain"]`` existed: the model's prediction against
    the expected label (for a failure: why the wrong word won)."""
    words, pred, expected = config.get("label_words"), out.get("prediction"), tags.get("expected")
    if not (isinstance(inp.get("prompt"), str) and isinstance(words, (list, tuple)) and len(words) == 2
            and pred in SST2_LABELS and expected in SST2_LABELS):
        return None
    foil = words[SST2_LABELS.index(expected)] if expected != pred else words[1 - SST2_LABELS.index(pred)]
    span = inp.get("text") if isinstance(inp.get("text"), str) else None
    return ExplainTarget(inp["prompt"], words[SST2_LABELS.index(pred)], foil, "continuation", span)


def _label_probs(out: Mapping[str, Any], labels: Callable[[], Sequence[str] | None] | None) -> dict[str, float] | None:
    probs = out.get("probs")
    if isinstance(probs, Mapping):
        return {str(k): float(v) for k, v in sorted(probs.items())}
    if not isinstance(probs, list):
        return None
    names = out.get("labels") or (labels() if labels is not None else None)
    if isinstance(probs, list) and names and len(names) == len(probs) and all(p is not None for p in probs):
        return {str(k): float(v) for k, v in zip(names, probs)}
    return None


def _str(value: object) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


def legacy_details(details: object) -> Any:
    """A finding's details in the current plot schema: before typed plot specs, a finding could hold one plot
    in ``details["plot"]``, reliability bins in ``details["reliability"]`` and a node/edge graph in
    ``details["graph"]``, and plots used shorthands (a line's bare ``x``/``y``, ``value_label``, edges as pairs
    or ``from``/``to``). Current details pass through unchanged."""
    if not isinstance(details, Mapping):
        return details
    listed = [p for p in details.get("plots") or [] if isinstance(p, Mapping)]
    # some wrote the first of their plots twice, as "plot" and in "plots": keep it once
    single = [details["plot"]] if isinstance(details.get("plot"), Mapping) and details["plot"] not in listed else []
    plots = [_legacy_plot(p) for p in single + listed]
    bins = details.get("reliability")
    if not any(p.get("kind") == "reliability" for p in plots) and _is_bins(bins):
        plots.append({"kind": "reliability", "title": "Reliability diagram", "bins": bins})
    graph = details.get("graph")
    if isinstance(graph, Mapping) and isinstance(graph.get("nodes"), list) and graph["nodes"]:
        plots.append(_legacy_plot({"kind": "graph", "title": "Defect graph", **graph}))
    if "plot" not in details and plots == list(details.get("plots") or []):
        return dict(details)
    return {**{k: v for k, v in details.items() if k != "plot"}, "plots": plots}


def _legacy_plot(p: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(p)
    if out.get("kind") == "line" and "series" not in out and "x" in out:
        out["series"] = [{"name": out.pop("name", "") or "", "x": out.pop("x"), "y": out.pop("y", [])}]
    if out.get("kind") == "bars" and "value_label" in out:
        out["x_label"] = out.get("x_label") or out.pop("value_label")
        out.pop("value_label", None)
    if out.get("kind") == "graph":
        out["nodes"] = [_legacy_node(n) for n in out.get("nodes") or []]
        out["edges"] = [_legacy_edge(e) for e in out.get("edges") or []]
    return out


def _legacy_node(n: object) -> Any:
    if not isinstance(n, Mapping):
        return {"id": str(n)}
    node = {k: v for k, v in n.items() if k != "kind"}
    return {**node, "severity": n.get("severity") or n.get("kind") or ""}


def _legacy_edge(e: object) -> Any:
    if isinstance(e, (list, tuple)) and len(e) >= 2:
        return {"source": e[0], "target": e[1]}
    if isinstance(e, Mapping) and "source" not in e:
        return {"source": e.get("from"), "target": e.get("to"), "label": e.get("label") or ""}
    return e


def _is_bins(x: object) -> bool:
    return isinstance(x, list) and bool(x) and all(isinstance(b, Mapping) and "low" in b and "high" in b for b in x)
