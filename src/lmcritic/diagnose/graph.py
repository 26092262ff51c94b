"""The defect graph: defect → ranked causes → evidence → mitigation, as frozen dataclasses.

Stored in the run as findings of the pseudo-probe ``diagnose`` (one per defect, the node as JSON in
``details["node"]``) so every report shows it, and rebuilt from there by :func:`load_graph`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lmcritic._serde import from_jsonable, to_jsonable
from lmcritic.diagnose.corpus import Neighbour
from lmcritic.diagnose.defects import Defect
from lmcritic.diagnose.hypotheses.base import SUPPORTED, CauseVerdict
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
class DefectGraph:
    run_id: str
    model: str
    defects: tuple[DefectNode, ...]
    slices: dict[str, tuple[SliceStats, ...]] = field(default_factory=dict)  # probe → top slices
    settings: dict[str, Any] = field(default_factory=dict)
    tests_run: int = 0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DefectGraph":
        return from_jsonable(cls, data)


def rank(causes: list[CauseVerdict]) -> tuple[CauseVerdict, ...]:
    order = {SUPPORTED: 0, "inconclusive": 1, "not supported": 2}
    return tuple(sorted(causes, key=lambda c: (order.get(c.verdict, 3), -c.confidence, c.cause)))


def render_text(graph: DefectGraph, markdown: bool = False) -> str:
    """Plain text or Markdown; model text (case ids, tokens, examples) is escaped for Markdown."""
    esc = _md if markdown else (lambda s: s)
    h = "## " if markdown else ""
    out = [f"{'# ' if markdown else ''}Diagnosis of run {graph.run_id} (model {esc(graph.model)})", ""]
    if not graph.defects:
        out.append("No defects: no probe of this run has enough failing cases.")
    for node in graph.defects:
        d = node.defect
        out.append(f"{h}{d.id} {esc(d.probe)} — {esc(d.slice)}: {d.n_failures} failures, failure rate "
                   f"{d.failure_rate}")
        if d.slice_stats is not None:
            s = d.slice_stats
            out.append(f"   slice: RR {s.risk_ratio:.2f} [{s.rr_ci[0]:.2f}, {s.rr_ci[1]:.2f}], "
                       f"RD {s.risk_difference:+.2f} [{s.rd_ci[0]:+.2f}, {s.rd_ci[1]:+.2f}], Fisher q={s.q_value:.2g}")
        for i, c in enumerate(node.causes, 1):
            out.append(f"   {i}. {c.cause} — {c.verdict} (confidence {c.confidence:.2f}): {esc(c.summary)}")
            if i == 1 or c.verdict == SUPPORTED:
                out += [f"      - {esc(e.summary)}"
                        + (f" [cases: {esc(', '.join(e.case_ids[:5]))}]" if e.case_ids else "") for e in c.evidence]
                if c.verdict == SUPPORTED and c.mitigation:
                    out.append(f"      mitigation: {c.mitigation}")
        if node.neighbours:
            out.append("   nearest training examples:")
            out += [f"      {esc(n.case_id)} ~ line {n.line} [{n.label}] cos {n.cosine:.2f}: {esc(_short(n.text))}"
                    for n in node.neighbours[:5]]
        out.append("")
    if graph.notes:
        out += [f"note: {esc(n)}" for n in graph.notes]
    out.append(f"{graph.tests_run} extra model calls made by the hypotheses' tests.")
    return "\n".join(out)


def _short(text: str, n: int = 100) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _md(text: str) -> str:
    from lmcritic.report._escape import md

    return md(text, limit=None)
