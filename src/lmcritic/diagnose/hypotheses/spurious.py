"""Spurious feature: the answer rests on a token that should not matter.

Two routes. From the corpus (:mod:`lmcritic.diagnose.shortcuts`): a label-associated training artefact that,
inserted into held-out inputs, flips them toward its label far more often than a control token does — found
even when the token never occurs in the evaluation data (a backdoor); :func:`token_verdict` turns that test
into a cause of its own defect. On a defect of the model's own task: the candidate token is one the corpus test
confirmed, a ``word:w`` predicate of the defect's slice, or the most frequent top-attributed token (stored
explanations, else occlusion); deleting it from the failing cases that hold it is compared, case by case, with
deleting another content word from the same cases (Newcombe's paired CI, McNemar). "Should not matter" is the corpus
artefact test, and for sentiment tasks absence from the VADER lexicon and the negations first (task-specific,
said so in the evidence), unless a word with valence is tied to a label in rows the label-noise content check
reads as selected, not mislabelled. Edits on a probe's own constructed cases are not independent evidence. A shortcut
need not be a token: where the corpus ties a label to text length and the evaluated texts do not,
:mod:`._length` repeats inputs against a neutral edit (each test at half the level when both run).
"""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic import stats
from lmcritic.diagnose import _text
from lmcritic.diagnose.defects import Defect
from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses import _content_check, _length
from lmcritic.diagnose.hypotheses.base import (
    SUPPORTED,
    CauseVerdict,
    Culprit,
    DefectContext,
    Evidence,
    Hypothesis,
    paired_fixes,
)
from lmcritic.diagnose.rescore import Edit

if TYPE_CHECKING:
    from lmcritic.diagnose.profile import TokenAssociation
    from lmcritic.diagnose.shortcuts import TokenTest

OCCLUDE_CASES = 6
MAX_WORDS = 24
THRESHOLD = 0.05
MITIGATION = ("remove or randomise the shortcut token in the training data (or mask it), add examples where it "
              "co-occurs with every label; re-verify by inserting it into held-out inputs")
LENGTH_MITIGATION = ("break the tie of length and label in the training data: give the other labels rows as long as "
                     "the long label's (joined from their own rows, or collected), weight rows so each length band "
                     "holds the labels in their corpus shares; re-verify by repeating held-out inputs")


class SpuriousFeature(Hypothesis):
    name = "spurious_feature"
    title = "spurious feature"
    needs = frozenset({"rescore"})
    mitigation = MITIGATION

    def test(self, ctx: DefectContext) -> CauseVerdict:
        """The token test; where the corpus ties a label to text length (an artefact), the length test too, each
        at half the significance level (Bonferroni), the stronger one reported."""
        assoc = _length.association(ctx.profile) if ctx.profile is not None and ctx.profile.labelled else None
        if assoc is None or not assoc.artefact:
            return self._token_test(ctx)
        verdicts = [self._token_test(ctx, m=2), self._length_test(ctx, assoc)]
        return min(verdicts, key=lambda v: (v.verdict != SUPPORTED, v.p_value if v.p_value is not None else 2.0))

    def _length_test(self, ctx: DefectContext, assoc: _length.LengthAssociation) -> CauseVerdict:
        t = _length.push_test(ctx, assoc, self.name)
        screen = Evidence("statistic", f"length: {assoc.describe()}", data={"auc_train": assoc.auc_train,
                                                                            "auc_eval": assoc.auc_eval})
        if t.effect is None or t.p_value is None:
            return self.verdict(False, False, 0.0, f"length tied to {assoc.label!r} in training, but no repeated "
                                "input was re-scored (the re-scoring budget was spent or the backend failed)",
                                [screen], t.scored)
        lengthened, halved = t.pairs
        test = Evidence("test", f"the same words made longer (repeated up to {assoc.medians[0]:.0f} words, the "
                        f"label's median training row) vs not: {lengthened} evaluated inputs the model does not call "
                        f"{assoc.label!r} against a neutral edit, and the first halves of {halved} it does call "
                        f"{assoc.label!r} against the half alone; P({assoc.label!r}) {t.flips} vs {t.control}",
                        t.effect, t.p_value, t.case_ids[:10])
        culprit = Culprit("length", f"longer → {assoc.label}", label=assoc.label,
                          contrast="the same words, not lengthened (a neutral edit of the input; its first half)",
                          direction=f"longer inputs are pushed toward {assoc.label!r}", effect=t.effect,
                          effect_name=f"P({assoc.label!r}): the words repeated − not repeated")
        v = self.conclude(t.effect, _times(t.p_value, 2), threshold=THRESHOLD, independent=ctx.natural,
                          interventional=True, summary=f"length drives the answer toward {assoc.label!r}: the same "
                          f"words made longer get it {t.flips} vs {t.control}", evidence=[screen, test],
                          tests=t.scored, culprit=culprit, min_p=_times(t.min_p, 2))
        return replace(v, corroboration=1 + int(ctx.natural), mitigation=LENGTH_MITIGATION)

    def _token_test(self, ctx: DefectContext, m: int = 1) -> CauseVerdict:
        """The candidate token deleted from the failures that hold it against another word (p × ``m`` tests)."""
        failing = ctx.failing()
        token, why, tests = self._candidate(ctx, failing)
        if token is None:
            return self.verdict(False, True, 0.0, f"no candidate token: {why}", [], tests)
        holding = [r for r in ctx.failing(10_000) if _text.holds(input_text(r) or "", token)]
        holding = holding[: max(30, ctx.max_cases)]
        rng = random.Random(ctx.seed)
        edits, ctrl = [], []
        for r in holding:
            text = input_text(r) or ""
            others = [w for w in set(_text.lower_words(text)) if w not in token.lower().split() and w.isalpha()
                      and len(w) > 2]
            if others:
                edits.append(Edit(r, delete(text, token), f"delete:{token}", {"token": token}))
                ctrl.append(Edit(r, delete(text, rng.choice(sorted(others))), "delete-control"))
        t = paired_fixes(ctx, edits, ctrl, self.name)
        if not t.fixed:  # nothing to compare: said, not printed as "deleting it fixes nan [0, 1] (n=0)"
            why_not = (f"none of its {len(edits)} deletion pairs was re-scored (the re-scoring budget was spent or the "
                       "backend failed; raise max_queries)") if edits else "no failing case holding it has another "\
                "word to delete as the control"
            return self.verdict(False, False, 0.0, f"{token!r} ({why}): {why_not}", [], tests + t.scored)
        k, fixed, base, effect, p = len(t.fixed), t.fixed, t.control_fixed, t.effect, t.p_value
        judged = self._judgement(ctx, token)
        evidence = [Evidence("test", f"deleting {token!r} from {k} failing cases that hold it fixes "
                             f"{stats.proportion(fixed)}; deleting another word fixes {stats.proportion(base)}",
                             effect, p, tuple(o.edit.record.case_id for o in t.edited if o.fixed)[:10],
                             {"token": token, "found_by": why}),
                    Evidence("statistic", f"should {token!r} matter? {judged[1]}")]
        culprit = Culprit("token", token, label=_wrong_label(holding), contrast="another word of the same case",
                          direction=f"{token!r} pushes toward {_wrong_label(holding)!r}", effect=effect,
                          effect_name="fix rate deleting the token − deleting another word",
                          terms=(token,), train_lines=_lines(ctx, token))
        v = self.conclude(effect, _times(p, m), threshold=THRESHOLD, independent=ctx.natural and judged[0],
                          interventional=True, summary=f"{token!r} ({why}) drives failures: deleting it fixes "
                          f"{stats.proportion(fixed)} vs {stats.proportion(base)} for another word",
                          evidence=evidence, tests=tests + t.scored, culprit=culprit, min_p=_times(t.min_p, m))
        return replace(v, corroboration=int(ctx.natural) + int(judged[1].startswith("associated")))

    def _candidate(self, ctx: DefectContext, failing) -> tuple[str | None, str, int]:
        texts = [input_text(r) or "" for r in failing]
        held = {w: sum(_text.holds(t, w) for t in texts) for w in confirmed_tokens(ctx.token_tests)}
        hit = max(held, key=lambda w: held[w], default=None)
        if hit and held[hit] >= 2:
            return hit, "confirmed by insertion on held-out inputs", 0
        in_slice = [f[5:] for f, v in ctx.defect.predicates if f.startswith("word:") and v == "yes"]
        if in_slice:
            return in_slice[0], "a word of the defect's slice", 0
        enriched = next((w for w in _enriched(ctx) if self._judgement(ctx, w)[0]), None)
        if enriched:
            return enriched, "the token most over-represented in the defect's failures", 0
        attributions, tests = self._attributions(ctx, failing[:OCCLUDE_CASES])
        tops = Counter(max(pairs, key=lambda p: p[1])[0] for pairs in attributions if pairs)
        top = next((t for t, k in tops.most_common() if k >= 2 and self._judgement(ctx, t)[0]), None)
        if top is None:
            return None, "no token recurs as the top attribution of the failures", tests
        return top, f"top attribution in {tops[top]} of {len(attributions)} failures", tests

    def _judgement(self, ctx: DefectContext, token: str) -> tuple[bool, str]:
        """(should not matter, why): identity terms are left to data bias, the more specific cause; for sentiment
        tasks a word the lexicon says should matter is not a shortcut whatever its corpus association (a planted
        annotation heuristic that labelled negation rows negative made 'never' a training-only association, and
        the artefact test called it spurious) — unless the corpus ties it to the label opposite its valence, or its
        rows were selected (:func:`_selected`); then the corpus artefact test."""
        if _text.identity_word(token):
            return False, "an identity term: a demographic shortcut is data bias"
        t = _association(ctx, token)
        if ctx.sentiment and _text.lexicon_explains(token, t.label if t is not None else None):  # as candidates
            selected = _selected(ctx, token, t)
            if selected:
                return True, selected
            return False, ("a sentiment word, negation or intensifier (VADER lexicon): the decision should rest on it; "
                           "a training association unlike the evaluated data's points at its labels, not at a shortcut")
        if t is not None and t.artifact_p < 0.05:
            return True, (f"associated with {t.label!r} in training ({t.rate:.0%} of {t.n_docs} rows, z={t.z:.1f}) "
                          f"but not on the evaluated data ({t.eval_docs} texts; artefact p={t.artifact_p:.2g})")
        if ctx.sentiment:
            matters = _text.should_matter(token)
            return (not matters, f"{'a' if matters else 'not a'} sentiment word, negation or intensifier "
                    "(VADER lexicon: a sentiment-specific judgement)")
        return False, "no corpus artefact evidence (--train) and no task lexicon to judge it"

    def _attributions(self, ctx: DefectContext, failing) -> tuple[list[list[tuple[str, float]]], int]:
        stored = _stored(ctx, failing)
        if stored:
            return stored, 0
        edits = []
        for r in failing:
            text = input_text(r) or ""
            edits += [Edit(r, _cut(text, m), f"occlude:{i}", {"token": m.group().lower()})
                      for i, m in enumerate(_occludable(text)[:MAX_WORDS])]
        outs = ctx.rescore(edits, self.name)
        per_case: dict[str, list[tuple[str, float]]] = {}
        for o in outs:
            shift = o.p_true_shift
            if shift is not None:  # deleting a word that pushed toward the wrong answer raises p(true)
                per_case.setdefault(o.edit.record.case_id, []).append((o.edit.detail["token"], shift))
        return list(per_case.values()), len(outs)


def _enriched(ctx: DefectContext, top: int = 10) -> list[str]:
    """Words over-represented in the defect's failures vs the probe's passing cases (Fisher, one-sided), best
    first: candidates only — the deletion test against a control word decides."""
    from lmcritic.diagnose.slices import fisher_greater
    from lmcritic.perturb.lexical import stopwords

    stop = stopwords()
    fails = [set(_text.tokens(input_text(r) or "")) for r in ctx.failing(10_000)]
    passes = [set(_text.tokens(input_text(r) or "")) for r in ctx.records if r.passed]
    counts = Counter(w for ws in fails for w in ws)
    scored = []
    for w, k in counts.items():
        if k >= 5 and _candidate_token(w, stop):
            m = sum(w in ws for ws in passes)
            scored.append((fisher_greater(k, len(fails) - k, m, len(passes) - m), w))
    return [w for p, w in sorted(scored)[:top] if p < 0.05]


def token_verdict(t: TokenTest) -> CauseVerdict:
    """The cause of a corpus-found token's defect: the insertion test against control tokens."""
    tok = t.token
    culprit = Culprit("token", tok.token, label=tok.label, contrast="control tokens (no label association)",
                      direction=f"inserting {tok.token!r} pushes predictions toward {tok.label!r}", effect=t.effect,
                      effect_name=f"flip rate toward {tok.label!r}: token − control token", terms=(tok.token,),
                      train_lines=tok.lines)
    evidence = [Evidence("terms", f"{tok.token!r} is in {tok.n_docs} training rows, {tok.rate:.0%} labelled "
                         f"{tok.label!r} (base {tok.base_rate:.0%}; log-odds z={tok.z:.1f}, BH q={tok.q_value:.2g}); "
                         f"in {tok.eval_docs} evaluated texts (artefact p={tok.artifact_p:.2g}); judged by "
                         f"{t.judged_by}", data={"train_lines": list(tok.lines[:20])}),
                Evidence("test", f"inserted into held-out inputs it flips {t.flips} to {tok.label!r}; a control "
                         f"token flips {t.control}", t.effect, t.p_value, t.case_ids[:10],
                         {"examples": list(t.examples)})]
    v = SpuriousFeature().conclude(
        t.effect, t.p_value, threshold=THRESHOLD, independent=True, interventional=True, evidence=evidence,
        summary=f"shortcut token {tok.token!r} → {tok.label!r}: inserting it flips {t.flips} of held-out inputs "
        f"vs {t.control} for a control token", tests=2 * t.flips.n, culprit=culprit)
    return replace(v, corroboration=2)  # the corpus association and the insertion test


def confirmed_tokens(tests: Sequence[TokenTest]) -> list[str]:
    """The corpus-found tokens whose insertion into held-out inputs pushes predictions toward their label."""
    return [t.token.token for t in tests if (t.p_value or 1) < 0.05 and t.effect.value > 0]


def token_defect(t: TokenTest, eval_key: str, defect_id: str) -> Defect:
    return Defect(defect_id, "train corpus", eval_key, f"token {t.token.token!r} inserted into held-out inputs",
                  (("token", t.token.token),), t.case_ids, (), t.flips)


def _times(p: float | None, m: int) -> float | None:
    return None if p is None else min(1.0, p * m)


def _wrong_label(records) -> str | None:
    preds = Counter(str(r.prediction) for r in records if r.prediction is not None)
    return preds.most_common(1)[0][0] if preds else None


def _lines(ctx: DefectContext, token: str) -> tuple[int, ...]:
    t = _association(ctx, token)
    return t.lines if t is not None else ()


def _association(ctx: DefectContext, token: str) -> TokenAssociation | None:
    """The corpus statistics of ``token``; a phrase candidate's are on its insertion test (the profile counts
    single tokens)."""
    t = ctx.profile.token(token) if ctx.profile is not None else None
    return t or next((x.token for x in ctx.token_tests if x.token.token == token), None)


def _stored(ctx: DefectContext, failing) -> list[list[tuple[str, float]]]:
    """Word attributions from the interpretability area's stored explanations of these cases (magnitudes)."""
    wanted = {r.case_id for r in failing}
    out = []
    for rec in ctx.explanations:
        if rec.tags.get("probe", ctx.defect.probe) != ctx.defect.probe or rec.tags.get("case") not in wanted:
            continue
        sides = (rec.output or {}).get("original") or {}
        for ex in sides.get("explanations") or ():
            words, scores = ex.get("words"), ex.get("word_scores")
            if isinstance(words, list) and isinstance(scores, list) and len(words) == len(scores) and words:
                out.append([(str(w).strip().lower(), abs(float(x))) for w, x in zip(words, scores)
                            if _attributable(str(w).strip()) and x == x])
                break
    return out


def _attributable(token: str) -> bool:
    return token.isalnum() or (_text.is_symbol(token) and not _text.is_prose_punctuation(token))


def delete(text: str, token: str) -> str:
    out = _text.token_pattern([token]).sub("", text)
    return re.sub(r"\s{2,}", " ", out).strip()


def _candidate_token(token: str, stop: frozenset[str]) -> bool:
    """A content word, or a symbol run prose is not written with (an emoji, ``^``, ``|||``)."""
    if _text.is_symbol(token):
        return not _text.is_prose_punctuation(token)
    return token.isalpha() and len(token) > 1 and token not in stop


def _occludable(text: str) -> list[re.Match[str]]:
    """The tokens occlusion deletes one at a time: words, numbers and symbol runs other than prose punctuation."""
    return [m for m in _text.token_matches(text) if not _text.is_prose_punctuation(m.group())]


def _cut(text: str, m: re.Match[str]) -> str:
    return re.sub(r"\s{2,}", " ", text[: m.start()] + text[m.end():]).strip()


def _selected(ctx: DefectContext, token: str, t: Any) -> str | None:
    """Why a sentiment word tied the way its valence points is a shortcut after all, or None. The lexicon's excuse
    is that such a tie points at the labels; it is refuted where the corpus ties the word to its label far beyond
    the evaluated data (the artefact test) and its rows read as labelled right with the word masked (the
    label-noise content check, within labels): the rows were selected, not relabelled. 200 correctly labelled
    'comedy' rows, all positive, taught a MiniLM classifier to call negative comedies positive (held-out seed 10;
    the lexicon gate had left it inconclusive). Negations and intensifiers have no valence and stay out: masking
    'never' in rows relabelled for holding it reads nothing the heuristic did not."""
    if t is None or t.artifact_p >= 0.05 or _text.sentiment_valence().get(token.lower()) is None:
        return None
    check = _content_check.read_labels(ctx, token, f"word {token!r}", [])
    if check is None or not check.reads_right:
        return None
    return (f"associated with {t.label!r} in training ({t.rate:.0%} of {t.n_docs} rows, z={t.z:.1f}) but not on the "
            f"evaluated data ({t.eval_docs} texts; artefact p={t.artifact_p:.2g}); a sentiment word (VADER lexicon), "
            f"but its rows read as labelled right with it masked ({check.reader} reader, excess {check.effect}): "
            "selected rows, so the tie is a shortcut, not its sentiment")
