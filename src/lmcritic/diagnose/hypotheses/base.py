"""The hypothesis plug-in API: each candidate cause tests itself on one defect and returns a verdict.

A hypothesis declares what it needs (``needs``: "rescore" — the model, to run edited cases; "train" —
a training corpus; "reference" — a reference corpus; or a backend capability), runs its own tests through
the run's :class:`~lmcritic.diagnose.rescore.Rescorer`, and reports its primary test with :meth:`conclude`:
a signed effect with a 95% CI against a control or null, a p-value, the smallest effect that matters, whether
the evidence is interventional, and whether it is *independent* of how the probe produced its cases (a bias
probe's swap cannot confirm itself; corpus skew or a replication on held-out names can). The culprit — group
and direction, token, register, length band, noisy phenomenon, memorised rows — is a typed :class:`Culprit`.

A verdict is provisional until :func:`lmcritic.diagnose.calibrate.finalize` has Benjamini–Hochberg-corrected
the p-values of every hypothesis on every defect: "supported" needs q < 0.05, an effect whose CI clears the
threshold, and independent evidence. Severity comes from the CI bound nearest zero (how large the effect is at
least), confidence from the kind of evidence: interventional up to 0.95, correlational up to 0.8.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

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
class Culprit:
    """What exactly causes the defect, typed so a mitigation can act on it without parsing prose.

    ``kind``: identity_group | token | register | length | label_noise | memorized_rows | typos | prior.
    ``effect`` is signed and oriented as ``effect_name`` says (for an identity group: p(target | value) −
    p(target | contrast)); ``label`` is the label the culprit pushes predictions toward."""

    kind: str
    value: str  # the group, token, register, length band, phenomenon, "N rows", "typos", the favoured label
    label: str | None = None
    contrast: str | None = None  # what it is compared with: the other group, control tokens, the formal register
    attribute: str | None = None  # identity attribute (gender, religion, ...)
    direction: str = ""  # one readable line
    effect: Estimate | None = None
    effect_name: str = ""
    terms: tuple[str, ...] = ()  # the concrete words behind it (names, phrases, slang, typo'd words)
    train_lines: tuple[int, ...] = ()  # training-corpus file lines implicated (noisy or memorised rows, token rows)
    data: dict[str, Any] = field(default_factory=dict)  # what a mitigation needs beyond these (label mixes, ...)


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
    culprit: Culprit | None = None
    severity: str = "none"  # none | low | medium | high (supported causes): the effect's CI bound nearest zero
    effect: Estimate | None = None  # the primary test's effect (signed), against its control or null
    p_value: float | None = None  # the primary test's p-value
    q_value: float | None = None  # BH-adjusted across every hypothesis × defect of the diagnosis
    threshold: float = 0.0  # the smallest |effect| that counts
    interventional: bool = False
    independent: bool = False  # evidence independent of how the probe produced its cases
    corroboration: int = 0  # independent lines of evidence that agree (e.g. replication and training-corpus skew)
    expect: int = 1  # the effect's sign if the cause is real (+1 or -1); 0: either sign counts
    min_p: float | None = None  # the smallest p its discrete test could give at this size (None: not discrete)
    explained_by: str = ""  # a supported cause of this diagnosis that this one is a consequence of (ranks first)
    max_severity: str | None = None  # a cap on the severity the effect would give (evidence against the cause)


NATURAL_PROBES = ("performance.",)  # probes whose cases are the user's data as given, not made by an edit


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
    probe_name: str = ""  # the registry name of the defect's probe (its key may differ)
    profile: Any = None  # diagnose.profile.CorpusProfile: the training corpus against the evaluated data
    eval_key: str | None = None  # the probe that measured the model's own task (held-out inputs for tests)
    eval_records: Sequence[Record] = ()
    sentiment: bool = False  # the task's labels are negative/positive (sentiment-specific judgements apply)
    token_tests: Sequence[Any] = ()  # diagnose.shortcuts.TokenTest results of this diagnosis
    left_out: Sequence[Any] = ()  # _phenomena.Phenomenon: whose rows the whole-corpus label-noise tests leave out

    @property
    def natural(self) -> bool:
        """The probe's cases are the user's data as given (an edit there is an intervention, not a replay)."""
        return (self.probe_name or self.defect.probe).startswith(NATURAL_PROBES)

    def by_id(self) -> dict[str, Record]:
        return {r.case_id: r for r in self.records}

    def failing(self, cap: int | None = None) -> list[Record]:
        """The defect's failing records (a deterministic sample of ``cap``, default ``max_cases``)."""
        return self.failing_where(lambda r: True, cap)

    def failing_where(self, keep: Callable[[Record], bool], cap: int | None = None) -> list[Record]:
        """The failing records ``keep`` holds for, sampled to ``cap`` (default ``max_cases``) after filtering: a
        test that applies to some failures only spends its budget on those, not on a sample of all failures."""
        index = self.by_id()
        recs = [index[c] for c in self.defect.case_ids if c in index and keep(index[c])]
        return _sample(recs, cap or self.max_cases, self.seed)

    def controls(self, cap: int | None = None) -> list[Record]:
        """Passing records of the same slice (else of the probe): what an edit must not break."""
        index = self.by_id()
        recs = [index[c] for c in self.defect.slice_case_ids if c in index and index[c].passed]
        if len(recs) < 4:
            recs = [r for r in self.records if r.passed]
        return _sample(recs, cap or max(4, self.max_cases // 2), self.seed + 1)

    def rescore(self, edits: Sequence, hypothesis: str, optional: bool = False) -> list:
        if self.rescorer is None:
            return []
        return self.rescorer.run(self.defect.probe, edits, hypothesis, self.defect.id, optional)

    def can_rescore(self) -> bool:
        recs = self.failing(1)
        return self.rescorer is not None and bool(recs) and self.rescorer.can_rescore(self.defect.probe, recs[0])


class Hypothesis(ABC):
    """A candidate cause. Subclasses set ``name``, ``needs``, ``mitigation`` and implement ``test``."""

    name: ClassVar[str] = "cause"
    title: ClassVar[str] = "cause"
    needs: ClassVar[frozenset[str]] = frozenset()
    mitigation: ClassVar[str] = ""
    # When it runs on a defect, lowest first: a test that asks the model about hundreds of training rows goes
    # after the defect's cheaper interventional tests, so under a query budget it cannot starve them.
    budget_rank: ClassVar[int] = 0

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
        """A verdict without a primary test: never "supported" (there is nothing to correct or bound)."""
        s = min(1.0, max(0.0, strength))
        verdict, conf = (NOT_SUPPORTED, 0.2 * s) if refuted and not supported else (INCONCLUSIVE, 0.2 + 0.2 * s)
        return CauseVerdict(self.name, verdict, round(conf, 4), summary, tuple(evidence), self.mitigation, tests,
                            interventional=interventional)

    def conclude(self, effect: Estimate | None, p_value: float | None, *, threshold: float, independent: bool,
                 interventional: bool, summary: str, evidence: Sequence[Evidence], tests: int = 0,
                 culprit: Culprit | None = None, refuted: bool | None = None, expect: int = 1,
                 min_p: float | None = None) -> CauseVerdict:
        """The verdict from a primary test (provisional until BH across the diagnosis, see ``calibrate``).

        Supported: p < 0.05, the CI lies beyond ``threshold`` on the side ``expect`` predicts, and independent
        evidence. Not supported (unless ``refuted`` says otherwise): the CI excludes every effect beyond
        ``threshold`` on that side — the test could have seen an effect that matters and did not. Anything else is
        inconclusive."""
        from lmcritic.diagnose.calibrate import provisional

        return provisional(CauseVerdict(self.name, INCONCLUSIVE, 0.0, summary, tuple(evidence), self.mitigation,
                                        tests, culprit, effect=effect, p_value=p_value, threshold=threshold,
                                        interventional=interventional, independent=independent, expect=expect,
                                        min_p=min_p),
                           refuted)


@dataclass(frozen=True)
class PairedFixes:
    """Each case edited two ways — the cause's edit and a control edit of the same case — and re-scored."""

    fixed: list[bool]  # the cause's edit fixes the case
    control_fixed: list[bool]  # the control edit fixes it
    edited: list[Any]  # the cause's outcomes (rescore.Outcome), aligned with ``fixed``
    effect: Estimate | None  # fix rate of the edit − of the control (Newcombe paired CI); None under ``min_pairs``
    p_value: float | None  # exact McNemar on the pairs where one edit fixes and the other does not
    scored: int  # model calls made
    min_p: float | None = None  # the smallest p McNemar could give on these pairs


def paired_fixes(ctx: DefectContext, edits: Sequence[Any], controls: Sequence[Any], hypothesis: str,
                 min_pairs: int = 1) -> PairedFixes:
    """Re-score edit/control pairs (``edits[i]`` and ``controls[i]`` edit the same case) and compare their fix
    rates case by case (:func:`rescore_pairs`)."""
    mine, ctrl, scored = rescore_pairs(ctx, edits, controls, hypothesis)
    fixed, base = [o.fixed for o in mine], [o.fixed for o in ctrl]
    if len(mine) < min_pairs:
        return PairedFixes(fixed, base, mine, None, None, scored)
    effect, p = stats.paired_proportions(base, fixed)
    return PairedFixes(fixed, base, mine, effect, p, scored, stats.mcnemar_min_p(base, fixed))


def rescore_pairs(ctx: DefectContext, edits: Sequence[Any], controls: Sequence[Any],
                  hypothesis: str) -> tuple[list[Any], list[Any], int]:
    """(the edits' outcomes, the controls' outcomes, model calls made): sent interleaved, so a spent budget drops
    whole pairs, never half of one; the two lists stay aligned."""
    outs = ctx.rescore([x for pair in zip(edits, controls) for x in pair], hypothesis)
    mine, ctrl = list(outs[0::2]), list(outs[1::2])
    n = min(len(mine), len(ctrl))
    return mine[:n], ctrl[:n], len(outs)


def rate(flags: Sequence[bool]) -> Estimate:
    return stats.proportion(list(flags))


def _sample(recs: list[Record], cap: int, seed: int) -> list[Record]:
    if len(recs) <= cap:
        return recs
    import random

    idx = sorted(random.Random(seed).sample(range(len(recs)), cap))
    return [recs[i] for i in idx]
