"""Explain a run's worst failures and store the explanations with the run.

``explain_worst(model, store, run_id, k=5)`` picks the k failed records across the run's probes that the
model got wrong most confidently, explains each with a gradient method and a black-box one (two black-box
ones for API models), scores faithfulness, and stores one record per case under the pseudo-probe
``interpret.explanations`` with findings (faithfulness vs random, spurious share, agreement) that the report
and diagnosis read like any probe's.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic._serde import to_jsonable
from lmcritic.errors import LmcriticError
from lmcritic.interpret.cases import CaseExplanation, explain_record, targets_of
from lmcritic.probes.base import Record
from lmcritic.stages import EXPLANATIONS_KEY

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend
    from lmcritic.interpret.base import Attributor
    from lmcritic.store.runs import RunStore

CONFIDENCE_KEYS = ("confidence", "p_pred", "margin", "severity")


def default_methods(model: Backend) -> list[Attributor]:
    """A gradient method plus a black-box one on white-box models; leave-one-out and 3-word occlusion else.

    Gradient × input, not integrated gradients, by default: on SmolLM2 on a CPU, IG costs 30-100 forward and
    backward passes per case and still often misses its convergence tolerance (see benchmarks), so it is
    opt-in (``methods=[IntegratedGradients()]``, or ``lmcritic explain --method integrated_gradients``).
    """
    from lmcritic.interpret.gradients import GradientXInput
    from lmcritic.interpret.occlusion import LeaveOneOut, Occlusion
    from lmcritic.requests import Capability

    if model.supports(Capability.GRADIENTS):
        return [GradientXInput(), LeaveOneOut()]
    return [LeaveOneOut(), Occlusion(window=3)]


def worst_failures(store: RunStore, run_id: str, k: int) -> list[tuple[str, Record]]:
    """(probe key, record) of the k most confident failures that carry an explanation target."""
    found = []
    for probe in store.probe_runs(run_id, kind="probe"):
        for rec in store.records(run_id, probe.probe_key):
            if rec.passed is not False:
                continue
            try:
                targets_of(rec)
            except LmcriticError:
                continue
            found.append((probe.probe_key, rec))
    found.sort(key=lambda x: -_confidence(x[1]))
    return found[:k]


def _confidence(record: Record) -> float:
    for key in CONFIDENCE_KEYS:
        value = record.scores.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return 0.0


def explain_worst(model: Backend, store: RunStore, run_id: str, k: int = 5, methods: Sequence[Any] | None = None, *,
                  triggers: Sequence[str] = (), faithfulness: bool = True, save: bool = True) -> list[CaseExplanation]:
    """Explain the run's k worst failures (see the module docstring); returns the explanations."""
    methods = list(methods) if methods is not None else default_methods(model)
    picked = worst_failures(store, run_id, k)
    t0 = time.perf_counter()
    if save:
        store.start_probe(run_id, EXPLANATIONS_KEY, EXPLANATIONS_KEY, len(picked), kind="stage")
    out = []
    for key, rec in picked:
        ce = explain_record(model, rec, methods, probe_key=key, faithfulness=faithfulness, triggers=triggers)
        out.append(ce)
        if save:
            store.add_records(run_id, EXPLANATIONS_KEY, [as_record(ce, rec)])
    if save:
        from lmcritic.interpret.findings import summarize

        findings = summarize(store.records(run_id, EXPLANATIONS_KEY))
        store.add_findings(run_id, EXPLANATIONS_KEY, [replace(f, probe=EXPLANATIONS_KEY) for f in findings])
        store.finish_probe(run_id, EXPLANATIONS_KEY, elapsed_s=time.perf_counter() - t0)
    return out


def as_record(ce: CaseExplanation, source: Record) -> Record:
    """A stored case of the pseudo-probe: the full explanation as output, headline numbers as scores."""
    side = ce.original
    scores: dict[str, float] = {"source_confidence": _confidence(source)}
    for f in side.faithfulness:
        scores[f"comprehensiveness.{f.method}"] = f.comprehensiveness
        scores[f"sufficiency.{f.method}"] = f.sufficiency
        scores[f"random_comprehensiveness.{f.method}"] = f.random_comprehensiveness
    for method, sp in side.spurious.items():
        scores[f"spurious_share.{method}"] = float(sp["share"])
    if "spearman" in side.agreement and side.agreement["spearman"] == side.agreement["spearman"]:
        scores["agreement_spearman"] = float(side.agreement["spearman"])
    tags = {**{k: v for k, v in source.tags.items() if v is None or isinstance(v, (str, int, float, bool))},
            "probe": ce.probe_key, "case": ce.case_id, "target_kind": side.target.kind, "pair": ce.variant is not None}
    inp = {"probe": ce.probe_key, "case": ce.case_id}
    return Record(case_id=f"{ce.probe_key}/{ce.case_id}", input=inp, output=to_jsonable(ce), scores=scores,
                  tags=tags, passed=None, text=side.target.text, explain=side.target.as_explain())
