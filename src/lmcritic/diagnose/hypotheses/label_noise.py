"""Label noise: the training labels of one phenomenon (negation, contrast, a word, ...) are inconsistent.

The phenomenon is the defect's text predicate (``negation=yes``, ``word:but=yes``), else each text feature on
which the probe's failures are more frequent and each word confirmed as a shortcut token that recurs in them
(:mod:`._phenomena`), tested in turn (Bonferroni over them) and the best-evidenced kept: where failures
concentrate most is not always where the labels are noisy. Noisy labels are the ones a model
cannot fit (the idea behind confident learning): the model is asked about a sample of its own training rows,
with and without the phenomenon, and its disagreement with their labels is compared with its error on held-out
evaluated texts of the same two kinds. Clean labels are fit better than unseen data is predicted, even on a hard
phenomenon; noisy labels are not. The effect is the difference in differences

    (disagree_train[P] − error_eval[P]) − (disagree_train[¬P] − error_eval[¬P])

with a bootstrap CI (resampling each of the four groups) and a one-sided p-value. That statistic has a positive
baseline on a clean but under-fitted model (easy rows are fitted better than held-out data, hard ones are not),
so it only corroborates. The test is on the training labels themselves: the same difference in differences for
a cross-fitted corpus model (:mod:`lmcritic.diagnose.crossfit`), whose out-of-fold disagreement and held-out
error are both honest held-out estimates of one learner. A learner with error e on the phenomenon disagrees with
labels flipped at rate η on e + η(1 − 2e) of them, so the effect reported is the excess flip rate
η = difference in differences / (1 − 2 e_phenomenon) with a bootstrap CI (same resamples) and the one-sided p of
the difference in differences; training-corpus evidence, independent of the probe. Texts with conflicting labels
in the corpus are listed alongside. The culprit names the phenomenon and the training lines whose labels the
model contradicts (candidates to relabel).
"""
from __future__ import annotations

import random
from dataclasses import replace
from typing import Callable, Sequence

from lmcritic import stats
from lmcritic._serde import to_jsonable
from lmcritic.diagnose.crossfit import cached_fit, crossfit
from lmcritic.diagnose.defects import Defect
from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses import _class_noise, _content_check, _global_noise, _implied_prior, _label_mix
from lmcritic.diagnose.hypotheses._did import diff_in_diff as _did
from lmcritic.diagnose.hypotheses._did import rates as _rates
from lmcritic.diagnose.hypotheses._phenomena import Phenomenon, holds_any, other_cues
from lmcritic.diagnose.hypotheses._phenomena import outside as _outside
from lmcritic.diagnose.hypotheses._phenomena import phenomena as _phenomena
from lmcritic.diagnose.hypotheses.base import CauseVerdict, Culprit, DefectContext, Evidence, Hypothesis
from lmcritic.diagnose.rescore import Edit
from lmcritic.probes.base import Estimate, Record

SAMPLE = 200  # training rows asked about, per side
MIN_ASKED = 20  # answered training rows per side below which the model-side test is not run
THRESHOLD = 0.05


class LabelNoise(Hypothesis):
    name = "label_noise"
    budget_rank = 1  # reads training rows with the model (hundreds of re-scored cases): after the cheaper tests
    title = "label noise"
    needs = frozenset({"rescore", "train"})
    mitigation = ("relabel (or drop) the training rows of the phenomenon whose labels the model contradicts, "
                  "then retrain; use a noise-robust loss; re-verify on held-out examples of the phenomenon")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        if ctx.profile is None or not ctx.profile.labelled or not ctx.eval_records or ctx.eval_key is None:
            return self.verdict(False, False, 0.0, "needs a labelled training corpus and the model's own task", [])
        candidates = _phenomena(ctx)
        if not candidates:
            return self.verdict(False, True, 0.0, "no text phenomenon on which the failures are more frequent", [])
        verdicts = [self._phenomenon_test(ctx, ph, len(candidates)) for ph in candidates]
        return max(verdicts, key=lambda v: (v.verdict == "supported", v.corroboration,
                                            -(v.p_value if v.p_value is not None else 2.0)))

    def corpus_test(self, ctx: DefectContext) -> CauseVerdict:
        """Labels flipped anywhere in the corpus, not on one phenomenon: at random (:mod:`._global_noise`) or from
        one class into another (:mod:`._class_noise` where the evaluated texts sample the corpus,
        :mod:`._implied_prior` where they need not). A property of the corpus, not of one defect: the diagnosis
        runs it once and makes it a defect of its own when it shows (:func:`noise_defect`), counted once among the
        diagnosis's tests; the smallest p of its tests decides, Bonferroni over them."""
        mine = _global_noise.model_gaps(ctx)
        if not isinstance(mine, str):
            _global_noise.check_labels_match(mine[0][0], mine[1][0], {x for x in ctx.profile.labels if x})
        tests = [] if isinstance(mine, str) else [_global_noise.gap_test("the model", mine[0], mine[1], ctx.seed)]
        corpus = _global_noise.corpus_gaps(ctx)
        tests += [] if isinstance(corpus, str) else [corpus]
        evidence = [Evidence("test", _global_noise.describe(t), t.rate or t.did, t.p, data={"rates": t.rates})
                    for t in tests]
        evidence += [Evidence("statistic", f"no {who} test: {why}") for who, why in
                     (("model", mine), ("corpus-model", corpus)) if isinstance(why, str)]
        evidence += _left_out(ctx)
        by_class = [(what, f(ctx)) for what, f in (("class-conditional", _class_noise.class_test),
                                                    ("label-share", _implied_prior.prior_test))]
        evidence += [Evidence("statistic", f"no {what} test: {t}") if isinstance(t, str) else
                     Evidence("test", t.describe(), t.rate or t.did, t.p, data=t.data)
                     for what, t in by_class]
        classes = [t for _, t in by_class if not isinstance(t, str)]
        if not tests and not classes:
            return self.verdict(False, False, 0.0, "whole corpus: no test possible", evidence)
        m = len(tests) + len(classes)
        evidence.append(Evidence("statistic", f"{m} tests of the whole corpus's labels: the smallest p decides, "
                                 f"times {m} (Bonferroni)"))
        best = _global_noise.primary(tests)[0] if tests else None
        by_p = min(classes, key=lambda t: t.p, default=None)
        if by_p is not None and (best is None or by_p.p < best.p):
            return self._class_verdict(ctx, by_p, m, evidence, 0 if isinstance(mine, str) else mine[3])
        assert best is not None  # no gap test and no class test returned above
        p = min(1.0, best.p * m)
        lines = () if isinstance(mine, str) else tuple(mine[2])
        culprit = Culprit("label_noise", "corpus", contrast="the evaluated texts' gold labels",
                          effect=best.rate or best.did, direction="training labels flipped across the corpus",
                          effect_name="implied share of flipped training labels" if best.rate else
                          "underconfidence on gold labels − on training labels", train_lines=lines)
        summary = f"training labels across the corpus: {_global_noise.describe(best)}"
        evidence.append(Evidence("statistic", f"decided on {best.who}'s test ({_global_noise.WHY_PRIMARY})"))
        v = self.conclude(best.rate or best.did, p, threshold=THRESHOLD, independent=True, interventional=False,
                          summary=summary, evidence=evidence, tests=0 if isinstance(mine, str) else mine[3],
                          culprit=culprit)
        return replace(v, corroboration=int(any(t is not best and t.p < 0.05 and t.did.value > 0 for t in tests)))

    def _class_verdict(self, ctx: DefectContext, t: _class_noise.ClassTest | _implied_prior.PriorTest, m: int,
                       evidence: list[Evidence], tests: int) -> CauseVerdict:
        """A per-label test decided: the culprit is the label whose rows hold other classes' texts."""
        line_of = {text: line for text, line, lab in zip(ctx.profile.corpus.texts, ctx.profile.corpus.lines,
                                                         ctx.profile.labels) if lab == t.label}
        lines = tuple(dict.fromkeys(line_of[x] for x in t.texts if x in line_of))
        culprit = Culprit("label_noise", "corpus", label=t.label, contrast="the evaluated texts' gold labels",
                          effect=t.rate or t.did, direction=f"training rows labelled {t.label!r} hold texts of "
                          "other labels", effect_name=t.effect_name, train_lines=lines)
        summary = f"training labels across the corpus: {t.describe()}"
        return self.conclude(t.rate or t.did, min(1.0, t.p * m), threshold=THRESHOLD, independent=True,
                             interventional=False, summary=summary, evidence=evidence, tests=tests, culprit=culprit)

    def _phenomenon_test(self, ctx: DefectContext, ph: Phenomenon, k: int) -> CauseVerdict:
        """One phenomenon's test; its p-value is multiplied by ``k``, the number of phenomena tested."""
        name, has = ph.name, ph.has
        cues = other_cues(ctx, ph)
        cue = holds_any(cues)
        train = _train_sample(ctx, has, cue)
        if min(len(train[True]), len(train[False])) < 20:
            return self.verdict(False, False, 0.0, f"too few training rows with/without {name}", [])
        disagree, tests, suspects = self._ask(ctx, train)
        texts = [(r, input_text(r) or "") for r in ctx.eval_records]
        held = {k: [r.passed is False for r, t in texts if has(t) == k and not cue(t)] for k in (True, False)}
        if min(len(held[True]), len(held[False])) < 5:
            return self.verdict(False, False, 0.0, f"too few evaluated texts with/without {name}", [], tests)
        evidence = [Evidence("statistic", f"training rows and evaluated texts holding a confirmed shortcut token "
                             f"({', '.join(cues)}) are left out of the two difference-in-differences tests: they "
                             "fail for that reason")] if cues else []
        model = self._model_side(name, disagree, held, suspects, ctx.seed, evidence)
        evidence += self._conflicts(ctx, has)
        noise = self._corpus_model(ctx, name, has, evidence, cues)
        model_ok = not isinstance(model, str) and model[1] < 0.05 and model[0].value > 0
        mix = self._mix(ctx, name, has, evidence, cues)
        if mix is not None and noise[0] is not None:  # two tests of the labels: the smaller p decides, doubled
            evidence.append(Evidence("statistic", "two tests of the training labels (the corpus model's flip rate, "
                                     "the label mix): the smaller p decides, doubled (Bonferroni)"))
            k *= 2
        if mix is not None and (noise[0] is None or mix.p < noise[1]):
            check = _content_check.read_labels(ctx, ph.word, ph.name, evidence) if ph.word else None
            if check is not None and not check.mislabelled:  # the rows were selected, their labels are right
                return self.verdict(False, check.reads_right, 1.0 - check.effect.ci_high,
                                    _content_check.selected(name, _label_mix.describe(name, mix), check), evidence,
                                    tests)
            return self._mix_verdict(ph, mix, k, evidence, tests, suspects, cues, check)
        if k > 1:
            evidence.append(Evidence("statistic", f"{k} tests for this defect (phenomena × tests): p decided on is "
                                     f"the test's times {k} (Bonferroni)"))
        summary = f"training labels with {name}: " + (
            f"a cross-fitted corpus model puts the excess flip rate at {noise[0]}; " if noise[0] else
            f"no corpus test ({noise[2]}); ") + (f"no model-side test ({model})" if isinstance(model, str) else
                                                 f"the model contradicts {model[2]['train']:.0%} of them (held-out "
                                                 f"error {model[2]['held-out']:.0%}), difference in differences "
                                                 f"{model[0]}")
        if noise[0] is None:  # no evidence in the labels themselves: the model's fit alone cannot support it
            if isinstance(model, str):
                return self.verdict(False, False, 0.0, summary, evidence, tests)
            return self.conclude(model[0], min(1.0, model[1] * k), threshold=THRESHOLD, independent=False,
                                 interventional=False, summary=summary, evidence=evidence, tests=tests,
                                 culprit=_culprit(ph, model[0], False, suspects))
        v = self.conclude(noise[0], min(1.0, noise[1] * k), threshold=THRESHOLD, independent=True, interventional=False,
                          summary=summary, evidence=evidence, tests=tests,
                          culprit=_culprit(ph, noise[0], True, suspects))
        return replace(v, corroboration=int(model_ok))

    @staticmethod
    def _model_side(name: str, disagree: dict[bool, list[bool]], held: dict[bool, list[bool]], suspects: list[int],
                    seed: int, evidence: list[Evidence]) -> tuple[Estimate, float, dict[str, float]] | str:
        """The evaluated model's own difference in differences (corroboration only), its evidence appended; a
        reason when too few training rows were answered (a spent re-scoring budget used to give NaN rates and,
        from the empty resamples, p = 0.0005)."""
        if min(len(disagree[True]), len(disagree[False])) < MIN_ASKED:
            why = (f"the model answered {len(disagree[True])} training rows with {name} and {len(disagree[False])} "
                   f"without, fewer than {MIN_ASKED}: the re-scoring budget was spent or the backend failed")
            evidence.append(Evidence("statistic", f"{name}: no model-side test: {why}"))
            return why
        effect, p = _did(disagree, held, seed)
        rates = _rates(disagree, held)
        evidence.append(Evidence("test", f"{name}: the model contradicts {rates['train']:.0%} of its training labels "
                                 f"with {name} vs {rates['train (without)']:.0%} without; it errs on "
                                 f"{rates['held-out']:.0%} of held-out texts with {name} vs "
                                 f"{rates['held-out (without)']:.0%} without: difference in differences {effect}, "
                                 f"p={p:.2g}", effect, p, data={"rates": rates, "suspect_lines": list(suspects[:50])}))
        return effect, p, rates

    def _mix(self, ctx: DefectContext, name: str, has: Callable[[str], bool], evidence: list[Evidence],
             cues: tuple[str, ...] = ()) -> _label_mix.MixTest | None:
        """The label-mix test of consistent noise (:mod:`._label_mix`), its evidence appended; None when it cannot
        run (said in the evidence). Rows and texts holding another confirmed shortcut cue are left out, as in the
        difference-in-differences tests: a selected word's rows lean one way and would tilt the phenomenon's mix."""
        key = f"label_noise.mix:{name}:{','.join(cues)}"  # the same for every defect that tests this phenomenon
        if key not in ctx.profile._cache:
            ctx.profile._cache[key] = _label_mix.mix_test(ctx.profile, has, holds_any(cues) if cues else None)
        mix = ctx.profile._cache[key]
        if isinstance(mix, str):
            evidence.append(Evidence("statistic", f"{name}: no label-mix test: {mix}"))
            return None
        evidence.append(Evidence("test", _label_mix.describe(name, mix), mix.effect, mix.p,
                                 data={"shares": mix.shares, "counts": mix.counts}))
        return mix

    def _mix_verdict(self, ph: Phenomenon, mix: _label_mix.MixTest, k: int, evidence: list[Evidence], tests: int,
                     suspects: list[int], cues: tuple[str, ...] = (),
                     check: _content_check.ContentCheck | None = None) -> CauseVerdict:
        s, name = mix.shares, ph.name
        share = _content_check.lean_explained(check, mix.effect.value) if check is not None else None
        if share is not None:
            evidence.append(Evidence("statistic", _content_check.describe_explained(share), share))
        culprit = Culprit("label_noise", name, label=mix.label, contrast=f"the evaluated gold labels of {name} texts",
                          effect=mix.effect, direction=f"training labels of {name} rows lean '{mix.label}': "
                          f"{s['train'][mix.label]:.0%} vs {s['evaluated'][mix.label]:.0%} of the gold labels",
                          effect_name=f"training − evaluated share of '{mix.label}' with {name}, beyond the rest",
                          train_lines=tuple(suspects),
                          data={"label_mix": {"phenomenon": name, "train": s["train"], "evaluated": s["evaluated"],
                                              "left_out": list(cues),  # rows the mix was read without
                                              **({"explained": to_jsonable(share)} if share is not None else {})},
                                "phenomenon": ph.data})
        summary = f"training labels with {name} lean one way (consistent noise): {_label_mix.describe(name, mix)}"
        if k > 1:
            evidence.append(Evidence("statistic", f"{k} tests for this defect: the p-value decided on is the "
                                     f"test's times {k} (Bonferroni)"))
        return self.conclude(mix.effect, min(1.0, mix.p * k), threshold=THRESHOLD, independent=True,
                             interventional=False, summary=summary, evidence=evidence, tests=tests, culprit=culprit)

    def _corpus_model(self, ctx: DefectContext, name: str, has: Callable[[str], bool], evidence: list[Evidence],
                      cues: tuple[str, ...] = ()) -> tuple[Estimate | None, float, str]:
        """The cross-fitted corpus model's excess flip rate on the phenomenon, without the rows and texts holding
        one of ``cues`` (:func:`other_cues`): (estimate, p, why none)."""
        cue = holds_any(cues)
        cf = cached_fit(ctx.profile, f"label_noise.crossfit:{name}:{ctx.seed}:{','.join(cues)}",
                        lambda train, evaluated, vectors: crossfit([r for r in train if not cue(r[0])],
                                                                   [r for r in evaluated if not cue(r[0])], has,
                                                                   ctx.seed, vectors=vectors))
        if isinstance(cf, str):
            evidence.append(Evidence("statistic", f"no cross-fitted corpus test: {cf}"))
            return None, 1.0, cf
        did, p, rate = _did(cf.train_wrong, cf.eval_wrong, ctx.seed, flip_rate=True,
                            classes=len(ctx.profile.label_shares()))
        rates = _rates(cf.train_wrong, cf.eval_wrong)
        evidence.append(Evidence("test", f"{name}: a cross-fitted corpus model ({cf.learner}) disagrees with "
                                 f"{rates['train']:.0%} of the training labels with {name} vs "
                                 f"{rates['train (without)']:.0%} without (out of fold); it errs on "
                                 f"{rates['held-out']:.0%} of evaluated texts with {name} vs "
                                 f"{rates['held-out (without)']:.0%} without: difference in differences {did}, "
                                 f"p={p:.2g}; excess flip rate {rate}", rate or did, p, data={"rates": rates}))
        if rate is None:
            return None, 1.0, f"the corpus model errs on {rates['held-out']:.0%} of evaluated texts with {name}"
        return rate, p, ""

    def _ask(self, ctx: DefectContext, train: dict) -> tuple[dict[bool, list[bool]], int, list[int]]:
        """The model's answers on sampled training rows (as edits of an evaluated case, scored like it)."""
        base = ctx.eval_records[0]
        rows = [(k, line, text, label) for k, rs in train.items() for line, text, label in rs]
        edits = [Edit(base, text, "train_row", {"line": line}) for _, line, text, _ in rows]
        outs = ctx.rescorer.run(ctx.eval_key, edits, self.name, ctx.defect.id) \
            if ctx.rescorer and ctx.eval_key else []
        disagree: dict[bool, list[bool]] = {True: [], False: []}
        suspects = []
        for (k, line, _, label), o in zip(rows, outs):
            wrong = str(o.prediction) != label
            disagree[k].append(wrong)
            if k and wrong:
                suspects.append(line)
        return disagree, len(outs), suspects

    def _conflicts(self, ctx: DefectContext, has: Callable[[str], bool]) -> list[Evidence]:
        _, conflicts = ctx.profile.duplicates
        mine = [c for c in conflicts if has(c.text)]
        if not mine:
            return []
        return [Evidence("cases", f"{len(mine)} texts of this kind appear in training with conflicting labels",
                         data={"examples": [{"text": c.text, "labels": c.labels, "lines": list(c.lines)}
                                            for c in mine[:5]]})]


def _left_out(ctx: DefectContext) -> list[Evidence]:
    """What the whole-corpus tests left out: the rows of phenomena whose label noise is a cause of its own."""
    left = tuple(getattr(ctx, "left_out", ()))  # a bare context (tests, plug-ins) leaves nothing out
    if not left:
        return []
    names = ", ".join(ph.name for ph in left)
    rows = sum(not _outside(ctx, t) for t in ctx.profile.corpus.texts)
    texts = sum(not _outside(ctx, t) for t in ctx.profile.eval_texts)
    return [Evidence("statistic", f"tested without the rows of {names} ({rows} training rows, {texts} evaluated "
                     "texts): their label noise is a cause of its own, and this one claims labels flipped beyond it")]


def _culprit(ph: Phenomenon, effect: Estimate, corpus: bool, suspects: list[int]) -> Culprit:
    name = ph.name
    return Culprit("label_noise", name, contrast=f"training rows without {name}", effect=effect,
                   direction=f"training labels of {name} rows are inconsistent",
                   effect_name="excess share of flipped training labels with the phenomenon (cross-fitted corpus "
                   "model)" if corpus else "(train disagreement − held-out error) with − without",
                   train_lines=tuple(suspects), data={"phenomenon": ph.data})


def noise_defect(eval_key: str, records: Sequence[Record], defect_id: str) -> Defect:
    """The corpus-wide label-noise test as a defect: the model's own task, its failing evaluated cases."""
    judged = [r for r in records if r.passed is not None]
    return Defect(defect_id, "train corpus", eval_key, "training labels against the evaluated gold labels", (),
                  tuple(r.case_id for r in judged if r.passed is False), tuple(r.case_id for r in judged),
                  stats.proportion([r.passed is False for r in judged]))


def _train_sample(ctx: DefectContext, has: Callable[[str], bool],
                  skip: Callable[[str], bool]) -> dict[bool, list[tuple[int, str, str]]]:
    corpus, labels = ctx.profile.corpus, ctx.profile.labels
    out: dict[bool, list[tuple[int, str, str]]] = {True: [], False: []}
    for line, text, label in zip(corpus.lines, corpus.texts, labels):
        if label is not None and not skip(text):
            out[has(text)].append((line, text, label))
    rng = random.Random(ctx.seed)
    return {k: rng.sample(v, min(SAMPLE, len(v))) for k, v in out.items()}
