"""Re-verification: replay the run's spec on the mitigated model and compare the two runs case by case.

The replay is a new run (the original is never changed) through the same runner and call cache. The cache is
keyed by model fingerprint, so every answer of the mitigated model is computed afresh; an attack probe attacks
the mitigated model itself (adaptive), never a cached attack on the old one. Per defect, on the defect's cases
(same case ids in both runs): the failure rate before → after with Wilson CIs, the paired change with
Newcombe's paired CI, McNemar's exact test, BH-corrected over the defects, and a verdict:

* ``closed`` — significantly lower (BH p < alpha) and at least 50% lower relative to before;
* ``reduced`` — significantly lower, by less than half;
* ``worse`` — significantly higher;
* ``unchanged`` — no significant change.

Every other metric of the run that got significantly worse (the ``diff`` machinery: McNemar / paired bootstrap,
BH over all metrics) and every finding that newly fails is listed: a fix that breaks something else says so;
the metrics that got significantly better are listed too (a fix for one defect often moves another probe).
The verification is stored in the new run as findings of the pseudo-probe ``mitigate`` (the report's Mitigation
section, with before/after plots).

On request (``--control``) a training-time fix is also judged against its control arm: the same fine-tune on
the unedited corpus, replayed the same way. Retraining alone moves a model (a fresh start from the base, more
steps on the run's weights); the control separates what the edit of the corpus did from what the retrain did.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from lmcritic import stats
from lmcritic.findings import finding_name, make_finding
from lmcritic.mitigate.base import TRAINING, Cost, Culprit, MitigatedModel, Target
from lmcritic.plots import bars, to_details
from lmcritic.probes.base import Estimate, Finding, Record, Severity

if TYPE_CHECKING:
    from lmcritic.store.runs import RunStore

PROBE_KEY = "mitigate"
CLOSED, REDUCED, UNCHANGED, WORSE = "closed", "reduced", "unchanged", "worse"
MAX_TAG_VALUES = 6
NOT_REPLAYED = ("none of its cases is in both runs (cases the diagnosis made, e.g. a token inserted into held-out "
                "inputs, are not replayed)")


@dataclass(frozen=True)
class Outcome:
    """One defect (or slice) before and after, on the same cases."""

    id: str
    probe: str
    slice: str
    cause: str | None
    targeted: bool
    before: Estimate  # failure rate
    after: Estimate
    change: Estimate  # after − before, Newcombe's paired CI
    relative: float | None  # 1 − after / before
    p_value: float  # McNemar exact, two-sided
    p_adjusted: float
    fixed: int  # failed before, pass after
    broken: int  # passed before, fail after
    verdict: str = UNCHANGED


@dataclass(frozen=True)
class Regression:
    probe: str
    metric: str
    before: float
    after: float
    change: Estimate
    p_adjusted: float
    test: str
    n_paired: int


@dataclass(frozen=True)
class ControlComparison:
    """The fix against its control arm: the same fine-tune on the unedited corpus (training-time fixes, on request).

    ``retrain_alone`` is before → control: what retraining by itself did to each defect. ``versus_control`` is
    control → mitigated on the same cases: what the edit of the corpus did beyond it (the verdicts read the same,
    with the control as "before"). ``regressions``/``improvements``: metrics of the run significantly worse /
    better on the mitigated model than on the control (BH over every metric)."""

    run_control: str
    steps: int
    retrain_alone: tuple[Outcome, ...]
    versus_control: tuple[Outcome, ...]
    regressions: tuple[Regression, ...] = ()
    improvements: tuple[Regression, ...] = ()

    @property
    def targeted(self) -> Outcome | None:
        return next((o for o in self.versus_control if o.targeted), None)


@dataclass(frozen=True)
class Verification:
    run_before: str
    run_after: str
    method: str
    target: str
    outcomes: tuple[Outcome, ...]  # every defect of the diagnosis (or the targeted probe)
    breakdown: tuple[Outcome, ...] = ()  # the targeted probe by tag value (e.g. harmful vs benign requests)
    regressions: tuple[Regression, ...] = ()
    appeared: tuple[str, ...] = ()  # findings failing only after
    costs: tuple[Cost, ...] = ()
    alpha: float = 0.05
    notes: tuple[str, ...] = field(default_factory=tuple)
    improvements: tuple[Regression, ...] = ()  # other metrics significantly better (same tests, same correction)
    control: ControlComparison | None = None  # against the same fine-tune on the unedited corpus (--control)

    @property
    def targeted(self) -> Outcome | None:
        return next((o for o in self.outcomes if o.targeted), None)


def replay(store: RunStore, run_id: str, model_spec: dict[str, Any], method: str, *,
           cache_path: str | Path | None = None, progress: bool = True, probes: Sequence[str] | None = None,
           keep_stages: bool = False, name: str | None = None) -> str:
    """Run the stored spec of ``run_id`` again with ``model_spec`` as the model; returns the new run's id."""
    from lmcritic.errors import LmcriticError
    from lmcritic.runner import Runner
    from lmcritic.spec import RunSpec

    spec = dict(store.get_run(run_id).spec)
    spec["model"] = model_spec
    spec["name"] = f"{spec.get('name') or run_id} {name or 'mitigated by ' + method}"
    if not keep_stages:
        spec["stages"] = []
    if probes:
        spec["probes"] = [p for p in spec.get("probes") or () if (p.get("key") or p.get("name")) in probes]
    runner = Runner(store_path=store.path, cache_path=cache_path, progress=progress)
    outcome = runner.run(RunSpec.from_dict(spec, source=f"replay of run {run_id}"))
    if outcome.status != "done":
        raise LmcriticError(f"the re-verification run {outcome.run_id} stopped: {outcome.message}",
                            f"continue it with `lmcritic run --resume {outcome.run_id}`")
    return outcome.run_id


def verify(store: RunStore, run_id: str, new_run: str, targets: Sequence[Target], targeted: Target,
           mitigated: MitigatedModel, alpha: float = 0.05,
           control: ControlComparison | None = None) -> Verification:
    """Compare ``new_run`` with ``run_id`` on every target's cases; store and return the verification."""
    outcomes = defects(store, run_id, new_run, targets, targeted, alpha)
    before, after = _by_id(store, run_id, targeted.probe), _by_id(store, new_run, targeted.probe)
    breakdown = _judged(culprit_slices(targeted, before, after) + tag_slices(targeted, before, after), alpha)
    worse, better, appeared = moved(store, run_id, new_run, alpha)
    notes = (*mitigated.notes, *restart_hint(mitigated, outcomes), _fresh_calls(store, new_run))
    ver = Verification(run_id, new_run, mitigated.method, targeted.id, outcomes, breakdown, worse, appeared,
                       mitigated.costs, alpha, notes,
                       improvements=better, control=control)
    from lmcritic.mitigate.storage import save_verification

    save_verification(store, ver, mitigated)
    return ver


def restart_hint(mitigated: MitigatedModel, outcomes: Sequence[Outcome]) -> list[str]:
    """A training fix that continued from the run's own weights and did not close its defect: those weights keep
    what they learnt (a row removed from the corpus is not unlearnt; cross-entropy on an added copy stops once the
    copy is right), and a restart from the pretrained checkpoint is the next thing to try, else more steps (a
    fully fine-tuned MiniLM's gender bias: 200 steps 0.38 -> 0.30 of its affected cases, 600 steps -> 0.24); said
    once, unless a note of the fix already says it."""
    training = mitigated.details.get("training") or {}
    said = any("--set base=" in n for n in mitigated.notes)
    if mitigated.kind != TRAINING or training.get("init") != "model" or said:
        return []
    target = next((o for o in outcomes if o.targeted), None)
    if target is None or not target.before.n or target.verdict == CLOSED:
        return []
    steps = training.get("steps")
    longer = f"; without one, a longer fine-tune (it ran {steps} steps: --set steps=N)" if steps else ""
    return [f"the defect is {target.verdict}, and the fine-tune continued from the run's own weights, which keep "
            "what they learnt; --set base=PATH (the checkpoint the run's model was fine-tuned from) retrains from "
            f"there on the edited corpus{mitigated.details.get('base_hint') or ''} (--set from_scratch=true for a "
            f"model trained from scratch, with its own learning rate and epochs){longer}"]


def against_control(store: RunStore, run_id: str, control_run: str, new_run: str, targets: Sequence[Target],
                    targeted: Target, steps: int, alpha: float = 0.05) -> ControlComparison:
    """Before → control and control → mitigated on every target's cases, and the metrics that differ between the
    mitigated model and the control."""
    worse, better, _ = moved(store, control_run, new_run, alpha)
    return ControlComparison(control_run, steps, defects(store, run_id, control_run, targets, targeted, alpha),
                             defects(store, control_run, new_run, targets, targeted, alpha), worse, better)


def defects(store: RunStore, run_a: str, run_b: str, targets: Sequence[Target], targeted: Target,
            alpha: float) -> tuple[Outcome, ...]:
    """Every target's failure rate in run a → run b on its cases, paired, BH over the targets, with verdicts."""
    records = {t.probe: (_by_id(store, run_a, t.probe), _by_id(store, run_b, t.probe)) for t in targets}
    return _judged([paired(t.id, t.probe, t.slice, t.cause, t.id == targeted.id, t.case_ids, *records[t.probe])
                    for t in targets], alpha)


def moved(store: RunStore, run_a: str, run_b: str,
          alpha: float) -> tuple[tuple[Regression, ...], tuple[Regression, ...], tuple[str, ...]]:
    """Metrics significantly worse and better in run b than in run a (``diff``'s paired tests, BH over all
    metrics), and the findings that fail only in run b."""
    from lmcritic.report.compare import compare_runs

    comp = compare_runs(store, run_a, run_b)
    found = [(Regression(m.probe, m.metric, m.mean_a, m.mean_b, m.delta, m.p_adjusted, m.test, m.n_paired),
              m.regression or 0) for m in comp.metrics if m.significant(alpha) and m.probe != PROBE_KEY]
    appeared = tuple(f"{f.probe}:{f.name}" for f in comp.findings if f.change == "appeared" and f.probe != PROBE_KEY)
    return (tuple(r for r, w in found if w > 0), tuple(r for r, w in found if w < 0), appeared)


def paired(id_: str, probe: str, slice_: str, cause: str | None, targeted: bool, case_ids: Sequence[str],
           before: dict[str, Record], after: dict[str, Record]) -> Outcome:
    """Failure rates of the same cases before and after, the paired change, McNemar's test."""
    common = [c for c in case_ids if c in before and c in after and before[c].passed is not None
              and after[c].passed is not None]
    fail_a = [before[c].passed is False for c in common]
    fail_b = [after[c].passed is False for c in common]
    a, b = stats.proportion(fail_a), stats.proportion(fail_b)
    change, p = stats.paired_proportions(fail_a, fail_b)  # McNemar exact: the same on failures as on passes
    relative = 1 - b.value / a.value if common and a.value > 0 else None
    fixed = sum(x and not y for x, y in zip(fail_a, fail_b))
    broken = sum(y and not x for x, y in zip(fail_a, fail_b))
    return Outcome(id_, probe, slice_, cause, targeted, a, b, change, relative,
                   p, p, fixed, broken)


def verdict_of(o: Outcome, alpha: float) -> str:
    if not o.before.n or o.p_adjusted >= alpha or o.after.value == o.before.value:
        return UNCHANGED
    if o.after.value > o.before.value:
        return WORSE
    return CLOSED if o.relative is not None and o.relative >= 0.5 else REDUCED


def tag_slices(target: Target, before: dict[str, Record], after: dict[str, Record]) -> list[Outcome]:
    """The targeted cases split by each tag with 2..6 values (each with >= 5 cases): e.g. harmful vs benign."""
    cases = [c for c in target.case_ids if c in before]
    out = []
    for tag in sorted({k for c in cases for k in before[c].tags}):
        values: dict[str, list[str]] = {}
        for c in cases:
            values.setdefault(str(before[c].tags.get(tag)), []).append(c)
        if not 2 <= len(values) <= MAX_TAG_VALUES or min(map(len, values.values())) < 5:
            continue
        out += [paired(f"{target.id}[{tag}={v}]", target.probe, f"{tag}={v}", target.cause, False, ids, before, after)
                for v, ids in sorted(values.items())]
    return out


def culprit_slices(target: Target, before: dict[str, Record], after: dict[str, Record]) -> list[Outcome]:
    """The targeted cases with and without the culprit (a mention of its identity attribute, its token, its
    label-noise phenomenon), each side with >= 5 cases: a defect over every case dilutes what the fix acted on."""
    has, what = culprit_test(target.culprit)
    cases = [c for c in target.case_ids if c in before and before[c].text is not None]
    if has is None or not cases:
        return []
    sides: dict[bool, list[str]] = {True: [], False: []}
    for c in cases:
        sides[has(str(before[c].text))].append(c)
    if min(len(sides[True]), len(sides[False])) < 5:
        return []
    return [paired(f"{target.id}[{'with' if yes else 'without'} {what}]", target.probe,
                   f"{'with' if yes else 'without'} {what}", target.cause, False, sides[yes], before, after)
            for yes in (True, False)]


def culprit_test(culprit: Culprit | None) -> tuple[Callable[[str], bool] | None, str]:
    """Whether an input holds the culprit, and what that is called; (None, "") for culprits not in the text."""
    if culprit is None:
        return None, ""
    if culprit.kind == "identity_group" and culprit.attribute:
        from lmcritic.lexicon import find_identity_terms

        attribute = culprit.attribute
        return (lambda t: bool(find_identity_terms(t, attribute))), f"a {attribute} mention"
    if culprit.kind == "token" and culprit.value:
        from lmcritic.diagnose.hypotheses._phenomena import holds_any

        return holds_any((culprit.value.lower(),)), f"{culprit.value!r}"
    if culprit.kind == "label_noise":
        from lmcritic.mitigate.cleaning import culprit_predicate

        return culprit_predicate(culprit), str(culprit.value)
    return None, ""


def _judged(outcomes: list[Outcome], alpha: float) -> tuple[Outcome, ...]:
    adjusted = stats.benjamini_hochberg([o.p_value for o in outcomes]) if outcomes else []
    judged = [replace(o, p_adjusted=q) for o, q in zip(outcomes, adjusted)]
    return tuple(replace(o, verdict=verdict_of(o, alpha)) for o in judged)


def _fresh_calls(store: RunStore, run_id: str) -> str:
    """How much of the re-run the mitigated model answered itself (the cache is keyed by its fingerprint)."""
    cache = (store.get_run(run_id).timings or {}).get("cache") or {}
    return (f"the re-run computed {cache.get('queries', 0)} answers of the mitigated model afresh and took "
            f"{cache.get('hits', 0)} from its own cache (keyed by its fingerprint: no answer of the original model is "
            "reused, though a wrapper's unchanged inner model answers identical requests from its cache)")


def _by_id(store: RunStore, run_id: str, probe: str) -> dict[str, Record]:
    if probe not in {p.probe_key for p in store.probe_runs(run_id)}:
        return {}
    return {r.case_id: r for r in store.records(run_id, probe)}


def finding_of(o: Outcome) -> Finding:
    """A defect's before/after as a finding: passes when fixed (targeted) or not worse (the others)."""
    if not o.before.n:
        return make_finding(PROBE_KEY, finding_name(o.id, o.probe, o.slice), failed=None,
                            summary=f"not compared: {NOT_REPLAYED}", details={"outcome": _jsonable(o)})
    ok = o.verdict == CLOSED if o.targeted else o.verdict != WORSE
    severity = Severity.INFO if ok else Severity.HIGH if o.verdict == WORSE else Severity.MEDIUM
    rel = f", {relative_text(o.relative)}" if o.relative is not None else ""
    plot = bars(f"{o.id}: failure rate before vs after (95% CI)", ["before", "after"], [o.before, o.after])
    return make_finding(
        PROBE_KEY, finding_name(o.id, o.probe, o.slice, *(("targeted",) if o.targeted else ())),
        failed=not ok, severity=severity, estimate=o.after,
        summary=f"{o.verdict}: failure rate {o.before} → {o.after}; change {o.change.value:+.3f} "
                f"[{o.change.ci_low:+.3f}, {o.change.ci_high:+.3f}]{rel}; McNemar p={o.p_value:.3g} "
                f"(BH {o.p_adjusted:.3g}); {o.fixed} fixed, {o.broken} broken",
        details={"outcome": _jsonable(o), "plots": to_details(plot)})


def _jsonable(x: object) -> Any:
    from lmcritic._serde import to_jsonable

    return to_jsonable(x)


def relative_text(relative: float) -> str:
    """``1 − after/before`` in words: printed as "+19% relative" it read as a rise for a drop, "-67%" for a rise."""
    if round(relative, 2) == 0:
        return "no relative change"
    return f"{abs(relative):.0%} {'lower' if relative > 0 else 'higher'}"


__all__ = ["CLOSED", "PROBE_KEY", "REDUCED", "UNCHANGED", "WORSE", "ControlComparison", "Outcome", "Regression",
           "Verification", "against_control", "culprit_slices", "culprit_test", "defects", "finding_of", "moved",
           "paired", "relative_text", "replay", "restart_hint", "tag_slices", "verdict_of", "verify"]
