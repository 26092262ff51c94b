"""What a mitigation targets: a diagnosed defect with its cause and culprit, or a probe's failing cases.

The culprit is read from the cause's typed ``culprit`` when the diagnosis provides one; older diagnoses carry
the same facts in their evidence (the identity terms and how they lean, the shortcut token, the content-free
prior, the register slice, whether spell-correction repaired failures), so those are read as a fallback.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.errors import ConfigError
from lmcritic.mitigate.base import Culprit, Target

if TYPE_CHECKING:
    from lmcritic.diagnose.graph import DefectNode
    from lmcritic.diagnose.hypotheses.base import CauseVerdict
    from lmcritic.store.runs import RunStore

SUPPORTED = "supported"


CORPUS_NODE = "train corpus"  # the probe of defects found in the training corpus (shortcut tokens, label noise)


def diagnosed_nodes(store: RunStore, run_id: str) -> list[DefectNode] | None:
    """The diagnosed defects (graph nodes) of a run, or None when the run was never diagnosed."""
    from lmcritic.diagnose.storage import load_graph

    graph = load_graph(store, run_id)
    return None if graph is None else list(graph.defects)


def target_of(node: DefectNode, cause_name: str | None = None) -> Target:
    """The defect with its leading cause (the first supported one, else the top), or the cause ``cause_name``."""
    d = node.defect
    cause = next((c for c in node.causes if c.cause == cause_name), None) if cause_name else None
    cause = cause or next((c for c in node.causes if c.verdict == SUPPORTED), node.top)
    probe = d.task if d.probe == CORPUS_NODE and d.task else d.probe  # a corpus-level defect's cases: its task's
    return Target(d.id, probe, d.slice, tuple(d.slice_case_ids), tuple(d.case_ids),
                  cause.cause if cause else None, cause.verdict if cause else None,
                  culprit_of(cause) if cause else None, tuple(cause.evidence) if cause else (),
                  tuple((c.cause, c.verdict) for c in node.causes))


def probe_target(store: RunStore, run_id: str, probe: str) -> Target:
    """Every case of ``probe`` in the run; the failing ones are what the mitigation should fix."""
    keys = [p.probe_key for p in store.probe_runs(run_id)]
    if probe not in keys:
        raise ConfigError(f"probe {probe!r} is not in run {run_id}", f"its probes: {', '.join(keys) or 'none'}")
    recs = [r for r in store.records(run_id, probe) if r.passed is not None]
    return Target(probe, probe, "all cases", tuple(r.case_id for r in recs),
                  tuple(r.case_id for r in recs if r.passed is False))


def culprit_of(verdict: CauseVerdict) -> Culprit | None:
    """The cause's typed culprit, else one read from its evidence."""
    typed = getattr(verdict, "culprit", None)
    if typed is not None:
        return _from_typed(typed)
    reader = _READERS.get(verdict.cause)
    return reader(verdict.evidence) if reader else None


def _from_typed(c: object) -> Culprit:
    get = (lambda k, d=None: c.get(k, d)) if isinstance(c, dict) else (lambda k, d=None: getattr(c, k, d))
    effect = get("effect")
    data = {**(get("data", {}) or {}), **({"effect": _estimate(effect)} if effect is not None else {})}
    return Culprit(kind=str(get("kind", "")), value=str(get("value", "") or ""), label=get("label"),
                   attribute=get("attribute"), terms=tuple(get("terms", ()) or ()),
                   train_lines=tuple(get("train_lines", ()) or ()), contrast=get("contrast"), source="diagnosis",
                   data=data)


def _estimate(e: object) -> dict[str, float]:
    """An effect (Estimate or its JSON) as {value, ci_low, ci_high, n}."""
    raw = e if isinstance(e, dict) else {k: getattr(e, k, None) for k in ("value", "ci_low", "ci_high", "n")}
    return {k: float(v) for k, v in raw.items() if k in ("value", "ci_low", "ci_high", "n") and v is not None}


# -- culprits from evidence (diagnoses without typed culprits) -------------------------------------------
def _data_bias(evidence: Sequence[Any]) -> Culprit | None:
    from lmcritic.diagnose import _text

    for e in evidence:
        if e.kind == "terms":
            rows = [t for t in e.data.get("terms", []) if (t.get("q_value") or 1) < 0.05] or e.data.get("terms", [])
            if rows:
                terms = tuple(str(t["term"]) for t in rows)
                attrs = [a for t in terms for _, a in _text.identity_terms(t)]
                return Culprit("identity_group", terms[0], rows[0].get("leaning"), attrs[0] if attrs else None,
                               terms, data={"terms": rows})
    return None


def _spurious(evidence: Sequence[Any]) -> Culprit | None:
    for e in evidence:
        token = e.data.get("token") if isinstance(e.data, dict) else None
        if token:
            return Culprit("token", str(token), terms=(str(token),))
    return None


def _objective(evidence: Sequence[Any]) -> Culprit | None:
    for e in evidence:
        prior = e.data.get("prior") if isinstance(e.data, dict) else None
        if isinstance(prior, dict) and prior:
            top = max(prior, key=lambda k: float(prior[k]))
            return Culprit("prior", str(top), str(top), data={"prior": prior})
    return None


def _fragility(evidence: Sequence[Any]) -> Culprit | None:
    for e in evidence:
        if e.kind == "test" and e.summary.startswith("spell-correct") and e.estimate is not None \
                and e.estimate.ci_low > 0.1:  # spell-correction clearly repaired failures
            return Culprit("typos", "typos", data={"repair_rate": e.estimate.value, "repair_ci_low": e.estimate.ci_low,
                                                   "repair_n": e.estimate.n})
    return None


def _mismatch(evidence: Sequence[Any]) -> Culprit | None:
    for e in evidence:
        q = e.data.get("q_value") if isinstance(e.data, dict) else None
        if e.kind == "slice" and q is not None and q < 0.05:
            feature, _, value = e.summary.split(":", 1)[0].partition("=")
            kind = {"register": "register", "n_words": "length", "length": "length"}.get(feature.strip(), feature)
            return Culprit(kind.strip(), value.strip(), data={"slice": e.summary})
    return None


def _memorization(evidence: Sequence[Any]) -> Culprit | None:
    for e in evidence:
        if e.kind == "test" and e.case_ids:
            return Culprit("memorized_rows", f"{len(e.case_ids)} cases", data={"case_ids": list(e.case_ids)})
    return None


_READERS = {"data_bias": _data_bias, "spurious_feature": _spurious, "objective_conflict": _objective,
            "fragility": _fragility, "generalization_mismatch": _mismatch, "memorization": _memorization}

__all__ = ["culprit_of", "diagnosed_nodes", "probe_target", "target_of"]
