"""The defect graph in the run store: extra test records under ``diagnose.<hypothesis>``, one finding per
defect under ``diagnose`` (the node's JSON in ``details["node"]``), and the graph's metadata on the first."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic._serde import from_jsonable, to_jsonable
from lmcritic.diagnose.graph import PROBE_KEY, DefectGraph, DefectNode
from lmcritic.diagnose.hypotheses.base import SUPPORTED, CauseVerdict
from lmcritic.findings import finding_name, make_finding
from lmcritic.plots import Bars, to_details
from lmcritic.probes.base import Finding, Record, Severity

if TYPE_CHECKING:
    from lmcritic.store.runs import RunStore


def save_graph(store: RunStore, graph: DefectGraph, tests: dict[str, list[Record]], elapsed_s: float) -> None:
    """Replace the run's previous diagnosis (findings) and add this one's test records."""
    for hyp, records in tests.items():
        key = f"{PROBE_KEY}.{hyp}"
        store.start_probe(graph.run_id, key, key, len(records), kind="stage")
        store.add_records(graph.run_id, key, _unique(records))
        store.finish_probe(graph.run_id, key)
    store.start_probe(graph.run_id, PROBE_KEY, PROBE_KEY, sum(len(n.defect.case_ids) for n in graph.defects),
                      kind="stage")
    store.add_findings(graph.run_id, PROBE_KEY, findings(graph))
    store.finish_probe(graph.run_id, PROBE_KEY, elapsed_s=elapsed_s)


def findings(graph: DefectGraph) -> list[Finding]:
    meta = {"model": graph.model, "slices": to_jsonable(graph.slices), "settings": graph.settings,
            "tests_run": graph.tests_run, "notes": list(graph.notes), "ranking": to_jsonable(graph.ranking)}
    if not graph.defects:
        return [make_finding(PROBE_KEY, "no_defects", failed=False, severity=Severity.INFO,
                             summary="no probe of this run has enough failing cases to diagnose",
                             details={"graph": meta})]
    out = [_finding(node) for node in graph.defects]
    out[0] = replace(out[0], details={**out[0].details, "graph": meta})
    return out


def _finding(node: DefectNode) -> Finding:
    d, top = node.defect, node.top
    cause = f"{top.cause} ({top.verdict}{', ' + top.severity if top and top.verdict == SUPPORTED else ''}, " \
            f"confidence {top.confidence:.2f})" if top else "no cause tested"
    supported = top is not None and top.verdict == SUPPORTED
    causes = tuple(c.cause for c in node.causes)
    # The confidence is a ranking score computed from the tests, not an estimate: it has no sampling interval
    # (it was drawn with itself as both CI bounds, and the model calls as its n). The interval and n belong to
    # each cause's primary test, plotted next to it.
    ranking = Bars(f"{d.id}: confidence per cause (ranking score, no interval)", causes,
                   tuple(c.confidence for c in node.causes), x_label="confidence")
    effects = Bars(f"{d.id}: primary test's effect per cause (95% CI, n)", causes,
                   *_effect_columns(node.causes), x_label="effect against its control or null")
    return make_finding(
        probe=PROBE_KEY, name=finding_name(d.id, d.probe, d.slice), failed=True, effect=d.failure_rate.value,
        scale="failure_rate",
        summary=f"{d.n_failures} failures in {d.probe} on {d.slice}; most likely cause: {cause}"
        + (f" — {top.summary}" if supported and top is not None else ""),
        estimate=d.failure_rate, evidence=d.case_ids[:20],
        details={"node": to_jsonable(node), "plots": to_details(ranking, effects)},
    )


def _effect_columns(causes: Sequence[CauseVerdict]) -> tuple[tuple[float | None, ...], tuple[float | None, ...],
                                                              tuple[float | None, ...], tuple[int | None, ...]]:
    """Value, CI and n of each cause's primary test; None where it ran on no case (nothing was estimated)."""
    rows = [(e.value, e.ci_low, e.ci_high, e.n) if e is not None and e.n > 0 else (None, None, None, None)
            for e in (c.effect for c in causes)]
    values, lows, highs, ns = zip(*rows) if rows else ((), (), (), ())
    return tuple(values), tuple(lows), tuple(highs), tuple(ns)


def load_graph(store: RunStore, run_ref: str) -> DefectGraph | None:
    """The run's stored diagnosis, or None if it was never diagnosed."""
    run_id = store.resolve(run_ref)
    found = [f for f in store.findings(run_id) if f.probe == PROBE_KEY]
    if not found:
        return None
    meta: dict[str, Any] = next((f.details["graph"] or {} for f in found if "graph" in f.details), {})
    nodes = tuple(from_jsonable(DefectNode, f.details["node"]) for f in found if "node" in f.details)
    data = {"run_id": run_id, "model": meta.get("model", "?"), "defects": [], "slices": meta.get("slices", {}),
            "settings": meta.get("settings", {}), "tests_run": meta.get("tests_run", 0),
            "notes": meta.get("notes", []), "ranking": meta.get("ranking", [])}
    graph = DefectGraph.from_dict(data)
    return DefectGraph(graph.run_id, graph.model, nodes, graph.slices, graph.settings, graph.tests_run, graph.notes,
                       graph.ranking)


def _unique(records: list[Record]) -> list[Record]:
    return list({r.case_id: r for r in records}.values())
