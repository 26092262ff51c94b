"""The defect graph: defect → ranked causes (with culprits) → evidence → mitigation, as frozen dataclasses, and
the diagnosis-wide ranking of causes ("what is wrong with this model", most severe first).

Stored in the run as findings of the pseudo-probe ``diagnose`` (one per defect, the node as JSON in
``details["node"]``) so every report shows it, and rebuilt from there by :func:`load_graph`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from lmcritic._serde import from_jsonable, to_jsonable
from lmcritic.diagnose.corpus import Neighbour
from lmcritic.diagnose.defects import Defect
from lmcritic.diagnose.hypotheses.base import SUPPORTED, CauseVerdict, Culprit
from lmcritic.diagnose.slices import SliceStats
from lmcritic.stages import DIAGNOSIS_KEY

PROBE_KEY = DIAGNOSIS_KEY  # where the defect graph is stored (a stage output)


@dataclass(frozen=True)
class DefectNode:
    defect: Defect
    causes: tuple[CauseVerdict, ...]  # best first
    neighbours: tuple[Neighbour, ...] = ()  # nearest training examples to the failing cases

    @property
    def top(self) -> CauseVerdict | None:
        return self.causes[0] if self.causes else None


@dataclass(frozen=True)
class RankedCause:
    """One cause (with its culprit) across the diagnosis: its best verdict and the defects it explains."""

    cause: str
    verdict: str
    severity: str
    confidence: float
    culprit: Culprit | None
    defects: tuple[str, ...]
    summary: str
    q_value: float | None = None
    corroboration: int = 0
    expect: int = 1  # the sign its test predicts (CauseVerdict.expect)
    explained_by: str = ""  # the root cause it is a consequence of (CauseVerdict.explained_by)


@dataclass(frozen=True)
class DefectGraph:
    run_id: str
    model: str
    defects: tuple[DefectNode, ...]
    slices: dict[str, tuple[SliceStats, ...]] = field(default_factory=dict)  # probe → top slices
    settings: dict[str, Any] = field(default_factory=dict)
    tests_run: int = 0
    notes: tuple[str, ...] = ()
    ranking: tuple[RankedCause, ...] = ()  # causes across defects, most severe first

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DefectGraph":
        return from_jsonable(cls, data)


def ranking(nodes: tuple[DefectNode, ...]) -> tuple[RankedCause, ...]:
    """Supported and inconclusive causes across defects, one entry per (cause, culprit), best instance first."""
    from lmcritic.diagnose.calibrate import sort_key

    best: dict[tuple, RankedCause] = {}
    for node in nodes:
        for c in node.causes:
            if c.verdict == "not supported":
                continue
            key = (c.cause, _culprit_key(c.culprit))
            seen = best.get(key)
            defects = (seen.defects if seen else ()) + (node.defect.id,)
            if seen is None or sort_key(c) < sort_key(seen):
                best[key] = RankedCause(c.cause, c.verdict, c.severity, c.confidence, c.culprit, defects, c.summary,
                                        c.q_value, c.corroboration, c.expect, c.explained_by)
            else:
                best[key] = replace(seen, defects=defects)
    return tuple(sorted(best.values(), key=sort_key))


def _culprit_key(c: Culprit | None) -> tuple:
    return () if c is None else (c.kind, c.attribute, c.value, c.contrast, c.label)


def render_text(graph: DefectGraph, markdown: bool = False) -> str:
    """Plain text or Markdown; model text (case ids, tokens, examples) is escaped for Markdown."""
    esc = _md if markdown else (lambda s: s)
    h = "## " if markdown else ""
    out = [f"{'# ' if markdown else ''}Diagnosis of run {graph.run_id} (model {esc(graph.model)})", ""]
    if not graph.defects:
        out.append("No defects: no probe of this run has enough failing cases.")
    out += _ranking_lines(graph, esc)
    for node in graph.defects:
        out += _node_lines(node, esc, h)
    if graph.notes:
        out += [f"note: {esc(n)}" for n in graph.notes]
    out.append(f"{graph.tests_run} extra model calls made by the hypotheses' tests.")
    return "\n".join(out)


def _ranking_lines(graph: DefectGraph, esc) -> list[str]:
    ranked = [r for r in graph.ranking if r.verdict == SUPPORTED]
    if not graph.defects:
        return []
    if not ranked:
        return ["Causes: none supported (every tested cause is inconclusive or refuted; see the defects below).", ""]
    out = ["Causes, most severe first (supported: BH q < 0.05, effect CI beyond its threshold, independent evidence):"]
    for i, r in enumerate(ranked, 1):
        root = f" — a consequence of {esc(r.explained_by)}" if r.explained_by else ""
        out.append(f"  {i}. {r.cause} [{r.severity}] {esc(culprit_text(r.culprit))} — defects {', '.join(r.defects)}"
                   + root)
    return out + [""]


def culprit_text(c: Culprit | None) -> str:
    """One line: the culprit, its direction and its effect with CI."""
    if c is None:
        return ""
    what = f"{c.attribute}: {c.value} vs {c.contrast}" if c.kind == "identity_group" else f"{c.kind} {c.value!r}"
    effect = f"; {c.effect_name} = {c.effect}" if c.effect is not None else ""
    toward = f" → {c.label}" if c.label and c.kind != "identity_group" else ""
    return f"{what}{toward}{effect}"


def _node_lines(node: DefectNode, esc, h: str) -> list[str]:
    d = node.defect
    out = [f"{h}{d.id} {esc(d.probe)} — {esc(d.slice)}: {d.n_failures} failures, failure rate {d.failure_rate}"]
    if d.slice_stats is not None:
        s = d.slice_stats
        out.append(f"   slice: RR {s.risk_ratio:.2f} [{s.rr_ci[0]:.2f}, {s.rr_ci[1]:.2f}], RD {s.risk_difference:+.2f}"
                   f" [{s.rd_ci[0]:+.2f}, {s.rd_ci[1]:+.2f}], Fisher q={s.q_value:.2g}")
    for i, c in enumerate(node.causes, 1):
        sev = f" [{c.severity}]" if c.verdict == SUPPORTED else ""
        q = f", q={c.q_value:.2g}" if c.q_value is not None else ""
        if c.min_p is not None and c.min_p >= 0.05:
            q += f", smallest possible p {c.min_p:.2g}: too few cases to reach 0.05"
        out.append(f"   {i}. {c.cause} — {c.verdict}{sev} (confidence {c.confidence:.2f}{q}): {esc(c.summary)}")
        if c.culprit is not None and (i == 1 or c.verdict == SUPPORTED):
            out.append(f"      culprit: {esc(culprit_text(c.culprit))}")
        if c.explained_by:
            out.append(f"      a consequence of {esc(c.explained_by)}, supported in this diagnosis: fix that first")
        if i == 1 or c.verdict == SUPPORTED:
            out += [f"      - {esc(e.summary)}" + (f" [cases: {esc(', '.join(e.case_ids[:5]))}]" if e.case_ids else "")
                    for e in c.evidence]
            if c.verdict == SUPPORTED and c.mitigation:
                out.append(f"      mitigation: {c.mitigation}")
    if node.neighbours:
        out.append("   nearest training examples:")
        out += [f"      {esc(n.case_id)} ~ line {n.line} [{n.label}] cos {n.cosine:.2f}: {esc(_short(n.text))}"
                for n in node.neighbours[:5]]
    return out + [""]


def _short(text: str, n: int = 100) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _md(text: str) -> str:
    from lmcritic.report._escape import md

    return md(text, limit=None)
