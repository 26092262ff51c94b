"""The hypothesis plug-in API: each candidate cause tests itself on one defect and returns a verdict.

A hypothesis declares what it needs (``needs``: "rescore" — the model, to run edited cases; "train" —
a training corpus; "reference" — a reference corpus; or a backend capability), runs its own tests through
the run's :class:`~lmcritic.diagnose.rescore.Rescorer`, and returns a :class:`CauseVerdict`. Confidence
is on one scale for all causes so they can be ranked: interventional evidence (an edit that fixes the
failure) can reach 0.95, correlational evidence (failures concentrate somewhere) at most 0.8.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from lmcritic import stats
from lmcritic.diagnose.defects import Defect
from lmcritic.diagnose.features import FeatureTable
from lmcritic.diagnose.rescore import Rescorer
from lmcritic.probes.base import Estimate, Record

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence a reviewer can check: a statistic, the cases behind it, a slice or neighbours."""

    kind: str  # "test" | "slice" | "terms" | "neighbours" | "cases" | "statistic"
    summary: str
    estimate: Estimate | None = None
    p_value: float | None = None
    case_ids: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CauseVerdict:
    """One hypothesis tested on one defect."""

    cause: str
    verdict: str  # supported | not supported | inconclusive
    confidence: float  # 0..1, comparable across causes (ranking key)
    summary: str
    evidence: tuple[Evidence, ...] = ()
    mitigation: str = ""
    tests_run: int = 0  # model calls made for it


@dataclass
class DefectContext:
    """Everything a hypothesis may look at for one defect."""

    defect: Defect
    records: Sequence[Record]  # every record of the defect's probe
    table: FeatureTable  # features of those records
    rescorer: Rescorer | None = None
    train: Any = None  # diagnose.corpus.Corpus
    reference: Any = None
    explanations: Sequence[Record] = ()
    max_cases: int = 24
    seed: int = 0

    def by_id(self) -> dict[str, Record]:
        return {r.case_id: r for r in self.records}

    def failing(self, cap: int | None = None) -> list[Record]:
        """The defect's failing records (a deterministic sample of ``cap``, default ``max_cases``)."""
        index = self.by_id()
        recs = [index[c] for c in self.defect.case_ids if c in index]
        return _sample(recs, cap or self.max_cases, self.seed)

    def controls(self, cap: int | None = None) -> list[Record]:
        """Passing records of the same slice (else of the probe): what an edit must not break."""
        index = self.by_id()
        recs = [index[c] for c in self.defect.slice_case_ids if c in index and index[c].passed]
        if len(recs) < 4:
            recs = [r for r in self.records if r.passed]
        return _sample(recs, cap or max(4, self.max_cases // 2), self.seed + 1)

    def rescore(self, edits: Sequence, hypothesis: str) -> list:
        if self.rescorer is None:
            return []
        return self.rescorer.run(self.defect.probe, edits, hypothesis, self.defect.id)

    def can_rescore(self) -> bool:
        recs = self.failing(1)
        return self.rescorer is not None and bool(recs) and self.rescorer.can_rescore(self.defect.probe, recs[0])


class Hypothesis(ABC):
    """A candidate cause. Subclasses set ``name``, ``needs``, ``mitigation`` and implement ``test``."""

    name: ClassVar[str] = "cause"
    title: ClassVar[str] = "cause"
    needs: ClassVar[frozenset[str]] = frozenset()
    mitigation: ClassVar[str] = ""

    def missing(self, ctx: DefectContext) -> str | None:
        """What this hypothesis needs and the context lacks, or None."""
        if "rescore" in self.needs and not ctx.can_rescore():
            return "needs the model to re-score edited cases (the probe's records carry no text, or no model)"
        if "train" in self.needs and ctx.train is None:
            return "needs a training corpus (--train PATH)"
        if "reference" in self.needs and ctx.reference is None and ctx.train is None:
            return "needs a reference corpus (--reference PATH)"
        return None

    def evaluate(self, ctx: DefectContext) -> CauseVerdict:
        reason = self.missing(ctx)
        if reason:
            return CauseVerdict(self.name, INCONCLUSIVE, 0.2, f"not tested: {reason}", mitigation=self.mitigation)
        return self.test(ctx)

    @abstractmethod
    def test(self, ctx: DefectContext) -> CauseVerdict:
        """Run the tests this cause needs on the defect's cases and weigh the evidence."""

    def verdict(self, supported: bool, refuted: bool, strength: float, summary: str,
                evidence: Sequence[Evidence], tests: int = 0, interventional: bool = True) -> CauseVerdict:
        """Map a decision and a strength in [0, 1] to the shared confidence scale."""
        s = min(1.0, max(0.0, strength))
        if supported:
            verdict, conf = SUPPORTED, 0.5 + (0.45 if interventional else 0.3) * s
        elif refuted:
            verdict, conf = NOT_SUPPORTED, 0.2 * s
        else:
            verdict, conf = INCONCLUSIVE, 0.2 + 0.25 * s
        return CauseVerdict(self.name, verdict, round(conf, 4), summary, tuple(evidence), self.mitigation, tests)


def rate(flags: Sequence[bool]) -> Estimate:
    return stats.proportion(list(flags))


def _sample(recs: list[Record], cap: int, seed: int) -> list[Record]:
    if len(recs) <= cap:
        return recs
    import random

    idx = sorted(random.Random(seed).sample(range(len(recs)), cap))
    return [recs[i] for i in idx]
