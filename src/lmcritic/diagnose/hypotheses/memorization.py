"""Memorization: the failing answer is a verbatim copy of the reference (or training) corpus.

Tests: for generation records, the share of the model's output word 6-grams found verbatim in the
reference corpus, failing vs passing cases (Fisher); for classification records, whether the failing
input occurs verbatim in a labelled corpus with the label the model (wrongly) gave — a memorised, noisy
training label. The reference corpus is ``--reference``, else the training corpus.
"""
from __future__ import annotations

from lmcritic.diagnose.corpus import label_name
from lmcritic.diagnose.hypotheses.base import CauseVerdict, DefectContext, Evidence, Hypothesis, rate
from lmcritic.diagnose.slices import fisher_greater

OUTPUT_KEYS = ("text", "generation", "completion", "output", "continuation", "response")
VERBATIM = 0.5  # share of 6-grams found verbatim


class Memorization(Hypothesis):
    name = "memorization"
    title = "memorization"
    needs = frozenset({"reference"})
    mitigation = ("deduplicate the training data and remove the memorised sequences (or canaries); train "
                  "with differential privacy or fewer epochs; re-verify with the memorization probe")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        corpus = ctx.reference if ctx.reference is not None else ctx.train
        failing = ctx.failing()
        passing = ctx.controls()
        if any(_output(r) for r in failing):
            return self._generation(ctx, corpus, failing, passing)
        return self._labels(corpus, failing)

    def _generation(self, ctx, corpus, failing, passing) -> CauseVerdict:
        f_hits = [corpus.overlap(_output(r)) >= VERBATIM for r in failing if _output(r)]
        p_hits = [corpus.overlap(_output(r)) >= VERBATIM for r in passing if _output(r)]
        share = rate(f_hits)
        p = fisher_greater(sum(f_hits), len(f_hits) - sum(f_hits), sum(p_hits), len(p_hits) - sum(p_hits)) \
            if p_hits else 1.0
        ids = tuple(r.case_id for r in failing if _output(r) and corpus.overlap(_output(r)) >= VERBATIM)
        evidence = [Evidence("test", f"{share} of failing outputs are verbatim (>= {VERBATIM:.0%} of 6-grams) in "
                             f"{corpus.path.name}; passing: {sum(p_hits)}/{len(p_hits)} (Fisher p={p:.2g})",
                             share, p_value=p, case_ids=ids[:10])]
        supported = share.ci_low > 0.1 and (not p_hits or p < 0.05 or sum(p_hits) == 0)
        return self.verdict(supported, share.ci_high < 0.1, share.value,
                            f"{share} of failing outputs copy the reference corpus", evidence)

    def _labels(self, corpus, failing) -> CauseVerdict:
        hits, agree = [], []
        for r in failing:
            idx = corpus.exact(r.text or "")
            hits.append(bool(idx))
            pred = str(r.prediction)
            agree.append(any(label_name(corpus.labels[i]) == pred for i in idx))
        found, copied = rate(hits), rate(agree)
        ids = tuple(r.case_id for r, a in zip(failing, agree) if a)
        evidence = [Evidence("test", f"{found} of failing inputs occur verbatim in {corpus.path.name}; "
                             f"{copied} carry there the wrong label the model gave", copied, case_ids=ids[:10],
                             data={"verbatim_share": found.value})]
        supported = copied.ci_low > 0.1
        return self.verdict(supported, copied.ci_high < 0.1 or found.value == 0, copied.value,
                            f"{copied} of failures repeat a (wrong) label seen verbatim in the corpus", evidence)


def _output(record) -> str:
    for key in OUTPUT_KEYS:
        value = record.output.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""
