"""Memorization: the model repeats its training data instead of reading the input.

Classification: a failing input occurs verbatim (normalised) in the labelled corpus under the wrong label the
model gave — a memorised, noisy training row. The test compares failing and passing cases of the probe (Fisher):
how often each is "in training under the model's answer, which is not the gold one"; the effect is the
difference of those rates (Newcombe CI). Generation: the share of failing outputs whose word 6-grams are found
verbatim in the reference corpus, against passing outputs. The corpus is ``--reference``, else ``--train``; it
is independent of how the probe made its cases.
"""
from __future__ import annotations

from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses.base import CauseVerdict, Culprit, DefectContext, Evidence, Hypothesis, rate
from lmcritic.diagnose.slices import fisher_greater, fisher_min_p, risk_difference
from lmcritic.probes.base import Estimate

OUTPUT_KEYS = ("text", "generation", "completion", "output", "continuation", "response")
VERBATIM = 0.5  # share of 6-grams found verbatim
THRESHOLD = 0.05


class Memorization(Hypothesis):
    name = "memorization"
    title = "memorization"
    needs = frozenset({"reference"})
    mitigation = ("deduplicate the training data and remove or relabel the memorised rows (or canaries); train "
                  "with differential privacy or fewer epochs; re-verify on those inputs")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        corpus = ctx.reference if ctx.reference is not None else ctx.train
        failing = ctx.failing(cap=10_000)
        passing = [r for r in ctx.records if r.passed]
        if any(_output(r) for r in failing):
            return self._generation(corpus, failing, passing)
        return self._labels(corpus, failing, passing)

    def _generation(self, corpus, failing, passing) -> CauseVerdict:
        f_hits = [corpus.overlap(_output(r)) >= VERBATIM for r in failing if _output(r)]
        p_hits = [corpus.overlap(_output(r)) >= VERBATIM for r in passing if _output(r)]
        ids = tuple(r.case_id for r in failing if _output(r) and corpus.overlap(_output(r)) >= VERBATIM)
        effect, p = _difference(f_hits, p_hits)
        evidence = [Evidence("test", f"{rate(f_hits)} of failing outputs are verbatim (>= {VERBATIM:.0%} of 6-grams) "
                             f"in {corpus.path.name}; passing: {sum(p_hits)}/{len(p_hits)} (Fisher p={p:.2g})",
                             effect, p, ids[:10])]
        culprit = Culprit("memorized_rows", f"{len(ids)} outputs", effect=effect,
                          effect_name="verbatim share, failing − passing outputs")
        return self.conclude(effect, p, threshold=THRESHOLD, independent=True, interventional=False,
                             summary=f"{rate(f_hits)} of failing outputs copy the reference corpus", evidence=evidence,
                             culprit=culprit)

    def _labels(self, corpus, failing, passing) -> CauseVerdict:
        f_hits, lines = _copied(corpus, failing)
        p_hits, _ = _copied(corpus, passing)
        effect, p = _difference(f_hits, p_hits)
        ids = tuple(r.case_id for r, h in zip(failing, f_hits) if h)
        evidence = [Evidence("test", f"{rate(f_hits)} of failing inputs occur verbatim in {corpus.path.name} under the "
                             f"wrong label the model gave; passing inputs: {rate(p_hits)} (Fisher p={p:.2g})",
                             effect, p, ids[:10], {"train_lines": list(lines[:50])})]
        culprit = Culprit("memorized_rows", f"{len(ids)} rows", direction="inputs seen in training under the label "
                          "the model repeats", effect=effect, effect_name="share in training under the model's wrong "
                          "answer: failing − passing inputs", train_lines=tuple(lines))
        return self.conclude(effect, p, threshold=THRESHOLD, independent=True, interventional=False,
                             summary=f"{rate(f_hits)} of failures repeat a wrong label seen verbatim in the corpus "
                             f"({len(lines)} training rows)", evidence=evidence, culprit=culprit,
                             refuted=not any(f_hits) or None, min_p=_min_p(f_hits, p_hits))


def _copied(corpus, records) -> tuple[list[bool], list[int]]:
    """Per record: in the corpus under its predicted label, which is not the gold one; and those corpus lines."""
    hits, lines = [], []
    for r in records:
        pred, gold = str(r.prediction), str(r.target)
        idx = [i for i in corpus.exact(input_text(r) or "") if corpus.label(i) == pred != gold]
        hits.append(bool(idx))
        lines += [corpus.lines[i] for i in idx]
    return hits, lines


def _difference(a: list[bool], b: list[bool]) -> tuple[Estimate | None, float | None]:
    if not a:
        return None, None
    if not b:
        b = [False]
    d, (lo, hi) = risk_difference(sum(a), len(a), sum(b), len(b))
    p = fisher_greater(sum(a), len(a) - sum(a), sum(b), len(b) - sum(b))
    return Estimate(d, len(a) + len(b), lo, hi, "newcombe"), p


def _min_p(a: list[bool], b: list[bool]) -> float | None:
    """The smallest p :func:`_difference`'s Fisher test could give at these margins (None when it has no test)."""
    return fisher_min_p(sum(a), len(a), sum(b), len(b or [False])) if a else None


def _output(record) -> str:
    for key in OUTPUT_KEYS:
        value = record.output.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""
