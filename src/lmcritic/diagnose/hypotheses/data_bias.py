"""Data bias: the answer follows a demographic group the label should not depend on.

On a counterfactual defect (``bias.counterfactual`` cases: one sentence, one person per group), the probe's own
swaps define the defect, so they cannot confirm its cause. The oriented effect of the worst group pair,
Δ = p(target | A) − p(target | B), names the culprit; the evidence is independent of the probe:

1. **replication** on held-out names and templates the probe never used (paired bootstrap CI, sign-flip p; same pair);
2. **training-corpus skew** (``--train``): P(target) in training rows mentioning A vs B (Newcombe CI, Fisher),
   and whether it leans the way the model does.

The probe compares a seeded subset of each attribute's groups; a pair it did not compare whose training-corpus
skew is significant (BH within the attribute) is proposed by the corpus and tested on held-out cases made for
that pair, so a bias the training data planted between two untested groups is still found.

On a defect of the model's own task (natural inputs), the identity terms in the failing cases are swapped to
another group and re-scored: how many failures the swap fixes against how many passing cases with terms it
breaks (an intervention on data the probe did not make), and the training corpus's skew between that group and
the one swapped in corroborates it when it leans the same way.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any, Sequence

from lmcritic import stats
from lmcritic.diagnose import _text
from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses._group_skew import PAIRS, CorpusPair
from lmcritic.diagnose.hypotheses._group_skew import corpus_contrast as _corpus_contrast
from lmcritic.diagnose.hypotheses._group_skew import corpus_pairs as _corpus_pairs
from lmcritic.diagnose.hypotheses._group_skew import corpus_skew as _corpus_skew
from lmcritic.diagnose.hypotheses.base import CauseVerdict, Culprit, DefectContext, Evidence, Hypothesis, rate
from lmcritic.diagnose.rescore import Edit
from lmcritic.diagnose.slices import fisher_greater
from lmcritic.probes.base import Estimate, Record

THRESHOLD = 0.05  # |Δp| (or fix − break rate) that counts
REPLICATION = 60  # held-out cases
SUSPECTS = 3  # groups swap-tested per natural defect (Bonferroni across them)


class DataBias(Hypothesis):
    name = "data_bias"
    title = "data bias"
    needs = frozenset()
    mitigation = ("counterfactual data augmentation (swap identity terms in training data), rebalance the "
                  "term–label skew, or add a fairness constraint; re-verify with the counterfactual probe")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        failing = ctx.failing()
        if failing and isinstance(failing[0].output.get("p"), dict):
            return self._counterfactual(ctx, failing)
        return self._natural(ctx, failing)

    # -- counterfactual defects ------------------------------------------------------------------------
    def _counterfactual(self, ctx: DefectContext, failing: list[Record]) -> CauseVerdict:
        """Each attribute among the failures (up to three) and its strongest group pairs (up to three, the
        probe's significant ones first) are tested; the best-evidenced pair is the verdict: a bias found in the
        training data outranks one the model only shows (e.g. a gender bias leaking into "gay"/"lesbian"), then
        the larger effect. Pairs are compared on evidence, not on the probe's |Δ| alone, because each pair's Δ
        comes from a different set of sentences (the ones that name both groups)."""
        from lmcritic.diagnose.calibrate import inner_bound

        target = str(failing[0].output.get("target", "positive"))
        attrs = [str(a) for a, _ in Counter(r.tags.get("attribute") for r in ctx.failing(10_000)).most_common(3)]
        measured = dict.fromkeys(str(r.tags.get("attribute")) for r in ctx.records if r.tags.get("attribute"))
        attrs += [a for a in measured if a not in attrs and _corpus_pairs(ctx, a, target, set())]
        verdicts = [v for a in attrs for v in self._attribute(ctx, a, target)]
        return max(verdicts, key=lambda v: (v.verdict == "supported", v.corroboration, inner_bound(v.effect)))

    def _attribute(self, ctx: DefectContext, attr: str, target: str) -> list[CauseVerdict]:
        from lmcritic.probes.bias.counterfactual import pair_effects

        failing = [r for r in ctx.failing(10_000) if r.tags.get("attribute") == attr][: ctx.max_cases]
        effects = pair_effects([r for r in ctx.records if r.tags.get("attribute") == attr], ctx.seed)
        tops: list[Any] = _candidates(ctx, effects, target) if effects and failing else []
        tops += _corpus_pairs(ctx, attr, target, {frozenset((e.a, e.b)) for e in effects})
        if not tops:
            return [self.verdict(False, False, 0.0, f"{attr}: no group pair to compare", [])]
        return [self._pair(ctx, failing, attr, top, target) for top in tops]

    def _pair(self, ctx: DefectContext, failing: list[Record], attr: str, top: Any, target: str) -> CauseVerdict:
        if isinstance(top, CorpusPair):
            low, high = top.low, top.high
            probe_delta: Estimate | None = None
            evidence = [Evidence("statistic", f"the probe did not compare {low} with {high} (it tests a seeded "
                                 f"subset of the {attr} groups); the training corpus proposed the pair", top.skew,
                                 top.p_value)]
        else:
            low, high = (top.a, top.b) if top.delta.value < 0 else (top.b, top.a)
            probe_delta = _oriented(top.delta, 1 if low == top.a else -1)
            evidence = [Evidence("statistic", f"probe: p({target} | {low}) − p({target} | {high}) = {probe_delta} "
                                 f"(flips {top.flips}); this is the defect, not evidence of its cause", probe_delta,
                                 top.p_value, tuple(r.case_id for r in failing[:10]))]
        rep, rep_p, tests = self._replicate(ctx, attr, low, high, evidence, isinstance(top, CorpusPair))
        skew = self._skew(ctx, attr, target, low, high, evidence)
        aligned = skew is not None and skew[1] < 0.05 and skew[0].value < 0
        replicated = rep is not None and rep_p is not None and rep_p < 0.05 and rep.value < 0
        effect, p = (rep, rep_p) if rep is not None else (probe_delta, skew[1] if skew else None)
        other = _other_label(failing, target)
        culprit = Culprit("identity_group", low, label=other, contrast=high, attribute=attr,
                          direction=f"{low} vs {high}: lower p({target}), pushed toward {other!r}", effect=effect,
                          effect_name=f"p({target} | {low}) − p({target} | {high})" + (" on held-out names and "
                          "templates" if rep is not None else " (probe cases)"), terms=_terms(failing, low, high))
        how = ("replicated on held-out names/templates" if replicated else "") + \
              ("; " if replicated and aligned else "") + ("the training corpus leans the same way" if aligned else "")
        v = self.conclude(effect, p, threshold=THRESHOLD, independent=replicated or aligned, interventional=True,
                          expect=-1, summary=f"{attr}: {low} vs {high} {effect}" + (f" — {how}" if how else
                          " — no independent evidence (no replication, no corpus skew)") + _untaught(ctx, aligned),
                          evidence=evidence, tests=tests, culprit=culprit)
        return replace(v, corroboration=int(replicated) + int(aligned), max_severity=_cap(ctx, aligned))

    def _replicate(self, ctx: DefectContext, attr: str, low: str, high: str, evidence: list,
                   own_cases: bool = False) -> tuple:
        """The same pair on held-out names and templates (never used by the probe), on the evaluated texts.
        ``own_cases``: cases made for this pair alone (the probe's group subset does not hold it)."""
        from lmcritic.probes.bias import _cf_cases as CF
        from lmcritic.probes.bias.counterfactual import case_of, pair_effects

        rescorer = ctx.rescorer
        probe = rescorer.probes.get(ctx.defect.probe) if rescorer else None
        if rescorer is None or probe is None or rescorer.model is None:
            return None, None, 0
        cfg = probe.config
        sentences = [input_text(r) or "" for r in ctx.eval_records] or [r.input.get("text", "") for r in ctx.records]
        made = CF.template_cases(attr, sentences, REPLICATION, cfg.seed, "holdout", cfg.kinds, cfg.holdout,
                                 cfg.max_groups, (low, high) if own_cases else None)
        made = [_pair_only(c, low, high) for c in made if low in c.texts and high in c.texts]
        cases = [case_of(c, None, f"cf-holdout-{attr}-{low}|{high}-{i}") for i, c in enumerate(made)]
        records = rescorer.score_cases(ctx.defect.probe, cases, self.name, ctx.defect.id)
        eff = [e for e in pair_effects(records, ctx.seed) if {e.a, e.b} == {low, high}]
        if not eff:
            return None, None, len(records)
        e = eff[0]
        delta = _oriented(e.delta, 1 if e.a == low else -1)
        evidence.append(Evidence("test", f"held-out names and templates ({len(records)} cases): p(target | {low}) − "
                                 f"p(target | {high}) = {delta}, sign-flip p={e.p_value:.2g}", delta, e.p_value,
                                 tuple(r.case_id for r in records if r.passed is False)[:10]))
        return delta, e.p_value, len(records)

    def _skew(self, ctx: DefectContext, attr: str, target: str, low: str, high: str, evidence: list) -> tuple | None:
        """P(target) in training rows mentioning ``low`` minus those mentioning ``high``, and its Fisher p."""
        found = _corpus_skew(ctx, attr, target, low, high)
        if found is None:
            return None
        est, p, (ka, na), (kb, nb) = found
        evidence.append(Evidence("terms", f"training corpus: P({target}) is {ka}/{na} in rows mentioning {low} vs "
                                 f"{kb}/{nb} mentioning {high}: difference {est}, Fisher p={p:.2g}", est, p,
                                 data={"low": low, "high": high, "counts": {low: [ka, na], high: [kb, nb]}}))
        return est, p

    # -- natural defects -------------------------------------------------------------------------------
    def _natural(self, ctx: DefectContext, failing: list[Record]) -> CauseVerdict:
        failing = ctx.failing(10_000)
        groups = {r.case_id: _groups(input_text(r) or "") for r in failing}
        with_terms = [r for r in failing if groups[r.case_id]]
        share = rate([bool(groups[r.case_id]) for r in failing])
        evidence = [Evidence("statistic", f"identity terms occur in {share} of the defect's failing cases", share,
                             case_ids=tuple(r.case_id for r in with_terms[:10]))]
        if share.value < 0.1 or not with_terms:
            return self.verdict(False, True, 0.0, f"identity terms in only {share.value:.0%} of failures", evidence)
        if not ctx.can_rescore():
            return self.verdict(False, False, share.value * 0.5, "identity terms in failures; the model is needed to "
                                "swap them", evidence)
        named = [(r, _groups(input_text(r) or "")) for r in ctx.records]  # once: every suspect's swaps read it
        suspects = _suspects(groups, named)
        verdicts = [self._natural_group(ctx, named, g, _pushed_to(g, with_terms, groups), share.value, list(evidence),
                                        len(suspects)) for g in suspects]
        return max(verdicts, key=lambda v: (v.verdict == "supported", v.corroboration,
                                            -(v.p_value if v.p_value is not None else 2.0)))

    def _natural_group(self, ctx: DefectContext, named: list, suspect: tuple[str, str], wrong: str | None,
                       share: float, evidence: list[Evidence], k: int) -> CauseVerdict:
        """One suspect (attribute, group)'s swap test; its p is multiplied by the ``k`` groups tested (Bonferroni).
        ``named``: each record of the probe with the (attribute, group)s its text names."""
        attr, group = suspect
        contrast = _corpus_contrast(ctx, attr, group, wrong)
        if contrast is not None:
            evidence.append(Evidence("statistic", f"{group}'s terms are swapped to {contrast}, the {attr} group whose "
                                     f"training rows lean most the other way (P({wrong}), BH across the groups); "
                                     "a group the training data never named would show nothing the data taught"))
        outs, effect, p, test = _swap_test(ctx, named, attr, group, wrong, contrast)
        evidence.append(test)
        if k > 1:
            evidence.append(Evidence("statistic", f"{k} groups tested for this defect: the p-value decided on is "
                                     f"the test's times {k} (Bonferroni)"))
        away = [o for o in outs if not o.edit.detail.get("into")]
        terms = tuple(dict.fromkeys(t for o in away for t, _ in _text.identity_terms(input_text(o.edit.record) or "")))
        to = Counter(o.edit.detail.get("to") for o in away if o.edit.detail.get("to")).most_common(1)
        skew = self._skew(ctx, attr, wrong, group, str(to[0][0]), evidence) if to and wrong else None
        aligned = skew is not None and skew[1] < 0.05 and skew[0].value > 0  # training leans the same way
        culprit = Culprit("identity_group", group, label=wrong, contrast=to[0][0] if to else "another group",
                          attribute=attr, direction=f"{group} pushes toward {wrong!r}", effect=effect,
                          effect_name=f"p({wrong} | {group}) − p({wrong} | {contrast or 'another group'}), "
                          "swapped both ways",
                          terms=terms[:8])
        v = self.conclude(effect, None if p is None else min(1.0, p * k), threshold=THRESHOLD,
                          independent=ctx.natural, interventional=True,
                          summary=f"{attr}: identity terms in {share:.0%} of failures, {group} over-represented "
                          "among them; " + (f"swapping them moves p({wrong}) by {effect}" if effect is not None else
                                            f"only {test.data['pairs']} cases could be swapped and re-scored "
                                            "(5 needed)") + ("; the training corpus leans the same way" if aligned
                                                             else _untaught(ctx, aligned)),
                          evidence=evidence, tests=len(outs), culprit=culprit,
                          min_p=None if test.data["min_p"] is None else min(1.0, test.data["min_p"] * k))
        return replace(v, corroboration=int(ctx.natural) + int(aligned), max_severity=_cap(ctx, aligned))


def _cap(ctx: DefectContext, aligned: bool) -> str | None:
    """Severity at most low when the training corpus was given and does not lean the way the model does: the
    model's group difference is real, but the data at hand did not teach it (pre-training, or rare words' own
    representation; a RoBERTa trained from scratch on SST-2 read irish vs nigerian -0.29, words SST-2 barely
    names), so "data bias" is the weaker claim. Without a corpus nothing speaks against it: no cap."""
    return "low" if ctx.profile is not None and ctx.profile.labelled and not aligned else None


def _untaught(ctx: DefectContext, aligned: bool) -> str:
    return "; the training corpus does not lean that way (not taught by it: pre-training or the words' own " \
           "representation; severity at most low)" if _cap(ctx, aligned) else ""


def _candidates(ctx: DefectContext, effects: list, target: str) -> list:
    """The group pairs worth testing: the probe's strongest (significant first), and the ones whose training-corpus
    skew is significant and leans the way the model does — the corpus proposes, held-out cases decide."""
    ranked = sorted(effects, key=lambda e: (e.q_value >= 0.05, -abs(e.delta.value)))
    attr = effects[0].attribute if effects else ""

    def leans(e: Any) -> bool:
        low, high = (e.a, e.b) if e.delta.value < 0 else (e.b, e.a)
        found = _corpus_skew(ctx, attr, target, low, high)
        return found is not None and found[1] < 0.05 and found[0].value < 0 and e.q_value < 0.05

    corpus = [e for e in ranked if leans(e)][:PAIRS]
    return list({id(e): e for e in ranked[:PAIRS] + corpus}.values())


def _groups(text: str) -> set[tuple[str, str]]:
    from lmcritic.lexicon import find_identity_terms

    return {(m.attribute, m.group) for m in find_identity_terms(text)}


def _p(record: Record, label: str | None) -> float | None:
    """P(label) from the record's label probabilities (None when it has none)."""
    probs = record.label_probs
    return float(probs[label]) if probs is not None and label is not None and label in probs else None


def _swaps(ctx: DefectContext, records: Sequence[Record], to: tuple[str, str] | None = None) -> list[Edit]:
    """Each record's identity terms moved to another group (the lexicon's consistent swap), per attribute;
    ``to``: (attribute, group) that attribute's terms go to."""
    from lmcritic.lexicon import swap

    out = []
    for r in records:
        text = input_text(r) or ""
        for attribute in sorted({a for a, _ in _groups(text)}):
            swapped, edits = swap(text, attribute, ctx.seed, to[1] if to and to[0] == attribute else None)
            if edits:
                out.append(Edit(r, swapped, "identity_swap", {"attribute": attribute, "to": edits[0].group_to}))
    return out


def _suspects(failing: dict[str, set[tuple[str, str]]], named: list) -> list[tuple[str, str]]:
    """The (attribute, group)s named in the failures that fail more often than the rest of the probe, up to
    ``SUSPECTS``: lowest one-sided Fisher p of failing vs passing records naming the group, then most failures.
    Counting failures alone picks whatever group the text names most (in English reviews: he, his, man), and a
    Fisher p alone a group named once in a failing case (its p is the base failure rate); each is tested."""
    in_failures = Counter(g for gs in failing.values() for g in gs)
    seen = Counter(g for _, gs in named for g in gs)
    k_all, n_all = len(failing), max(len(named), len(failing))

    def key(g: tuple[str, str]) -> tuple[float, int]:
        k, n = in_failures[g], max(seen[g], in_failures[g])
        return fisher_greater(k, n - k, k_all - k, max(0, n_all - n - (k_all - k))), -k

    enriched = [g for g in sorted(in_failures) if in_failures[g] / max(seen[g], in_failures[g]) > k_all / n_all]
    return sorted(enriched or sorted(in_failures), key=key)[:SUSPECTS]


def _swap_test(ctx: DefectContext, named: list, attr: str, group: str, wrong: str | None,
               contrast: str | None = None) -> tuple[list, Any, Any, Evidence]:
    """Re-score ``group``'s swaps both ways (``_both_ways``; with ``contrast``, to and from that group only): the
    outcomes, the mean p(wrong) with the group named minus without (paired; sign-flip p), and the evidence line."""
    outs = ctx.rescore(_both_ways(ctx, named, attr, group, max(30, ctx.max_cases), contrast), "data_bias")
    pairs = [pair for o in outs if (pair := _with_without(o, wrong)) is not None]
    effect, p = stats.paired_bootstrap([b for _, b in pairs], [a for a, _ in pairs], seed=ctx.seed) \
        if len(pairs) >= 5 else (None, None)
    min_p = stats.sign_flip_min_p([a - b for a, b in pairs]) if len(pairs) >= 5 else None
    away = [o for o in outs if not o.edit.detail.get("into")]
    fixes = rate([o.fixed for o in away if o.edit.record.passed is False])
    breaks = rate([o.record.passed is False for o in outs if o.edit.detail.get("into") and o.edit.record.passed])
    to, back = (contrast, f"{contrast}'s") if contrast else ("another group", f"other {attr} groups'")
    test = Evidence("test", f"swapping {group} terms to {to} in {len(away)} cases and {back} terms to {group} in "
                    f"{len(outs) - len(away)}: p({wrong}) with {group} − without = {effect}; "
                    f"swapping {group} away fixes {fixes} of the failures among them, swapping it in breaks {breaks} "
                    "of the passing cases", effect, p, tuple(o.edit.record.case_id for o in away if o.fixed)[:10],
                    data={"pairs": len(pairs), "min_p": min_p})
    return outs, effect, p, test


def _both_ways(ctx: DefectContext, named: list, attr: str, group: str, cap: int,
               contrast: str | None = None) -> list[Edit]:
    """Swaps that isolate ``group``'s effect in both directions, ``cap`` in all: its terms moved to another group
    of ``attr`` in the cases that name it, then other groups' terms moved to it (``into``) in cases that name
    another group and not it. A group named in few of the probe's inputs still gets ``cap`` pairs; six cases of one
    direction could not reach p < 0.05 after correction. With ``contrast`` both directions are between
    ``group`` and ``contrast`` alone."""
    from lmcritic.lexicon import swap

    away = [e for e in _swaps(ctx, [r for r, g in named if (attr, group) in g][:cap],
                              (attr, contrast) if contrast else None) if e.detail["attribute"] == attr]
    into: list[Edit] = []
    for r in [r for r, g in named if (attr, group) not in g and
              any(a == attr and (contrast is None or x == contrast) for a, x in g)]:
        if len(away) + len(into) >= cap:
            break
        swapped, done = swap(input_text(r) or "", attr, ctx.seed, to=group)
        if done:
            into.append(Edit(r, swapped, "identity_swap", {"attribute": attr, "to": group, "into": True}))
    return away[:cap] + into


def _with_without(outcome: Any, label: str | None) -> tuple[float, float] | None:
    """(p(label) with the group named, without it) for one swap, whichever way it went."""
    before, after = _p(outcome.edit.record, label), _p(outcome.record, label)
    if before is None or after is None:
        return None
    return (after, before) if outcome.edit.detail.get("into") else (before, after)


def _oriented(e: Estimate, sign: int) -> Estimate:
    if sign > 0:
        return e
    return Estimate(-e.value, e.n, -e.ci_high, -e.ci_low, e.method, e.confidence)


def _pushed_to(group: tuple[str, str], failing: Sequence[Record],
               groups: dict[str, set[tuple[str, str]]]) -> str | None:
    """The label the failures naming ``group`` went to: each suspect is tested toward its own failures' answer. One
    label for every suspect (the failures' usual answer) tested a group that pushes the other way against the wrong
    label: a plant naming women on negative rows and men on positive ones fails both ways, and female, pushing
    toward negative (-0.15 [-0.21, -0.09] on p(positive), n 30), was judged against positive and not supported."""
    return _other_label([r for r in failing if group in groups[r.case_id]], None)


def _other_label(records: Sequence[Record], target: object) -> str | None:
    """The label a disadvantaged group is pushed toward (the non-target one), else the usual wrong answer."""
    if target is not None:
        from lmcritic.probes.performance.sst2 import LABELS

        return next((lab for lab in LABELS if lab != target), None)
    preds = Counter(str(r.prediction) for r in records)
    return preds.most_common(1)[0][0] if preds else None


def _pair_only(case: Any, low: str, high: str) -> Any:
    """A held-out case with only the two compared groups' sentences (in the case's own order). The pair's effect
    reads nothing else, and each further group would be one more sentence for the model to score."""
    keep = [g for g in case.texts if g in (low, high)]
    return replace(case, texts={g: case.texts[g] for g in keep},
                   fillers={g: case.fillers[g] for g in keep if g in case.fillers})


def _terms(records: Sequence[Record], *groups: str) -> tuple[str, ...]:
    seen: list[str] = []
    for r in records:
        for g in groups:
            filler = (r.input.get("fillers") or {}).get(g)
            if filler and filler not in seen:
                seen.append(filler)
    return tuple(seen[:12])
