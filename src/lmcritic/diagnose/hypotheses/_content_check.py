"""Selected or mislabelled? The training labels of rows holding a word can lean one way because those rows were
chosen (a scrape from one source: the labels are right, and the word is a spurious cue) or because they were
relabelled (an annotation heuristic: the labels contradict the text). The label mix (:mod:`._label_mix`) sees both
alike. A reader that does not use the word tells them apart: the evaluated model with the word masked
(:func:`model_check`), or a content model fitted on the training rows without it (:func:`content_check`).
Mislabelled rows are contradicted more than rows of the same label without the word; selected rows are not.
Within labels, because the word's rows lean to one label by construction and a reader errs more on one label
than the other (masked SST-2 pans are misread far more often than praise): across labels, selected rows of the
harder label looked mislabelled.

Where the rows are contradicted, :func:`lean_explained` sizes the mislabelled share against the lean it would have
to make: the two causes can hold together (a word naturally skewed one way, some of its rows also relabelled).

Only for a plain word: negation or contrast cannot be masked without changing what the text says.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lmcritic import stats
from lmcritic.diagnose import _text
from lmcritic.diagnose.crossfit import Embed, encoder, fit_apart, labelled
from lmcritic.probes.base import Estimate

PER_SIDE = 300  # training rows per side (with / without the word), sampled
MIN_ROWS = 20
MARGIN = 0.10  # excess disagreement below which the check says "as their content reads them"
MODEL_PER_SIDE = 200  # training rows with the word the evaluated model is asked about (masked)
MODEL_CONTROLS = 400  # rows without it (one sample for every word): the control rate's noise had cost the test


@dataclass(frozen=True)
class ContentCheck:
    """How often a content model that never saw ``word`` contradicts the training labels, with and without it."""

    word: str
    with_word: Estimate  # rows with the word (masked): share whose label the model contradicts
    without: Estimate  # rows without it (out of fold), weighted to the label mix of the rows with it
    effect: Estimate  # with − without (MOVER interval)
    p: float  # one-sided Cochran–Mantel–Haenszel within labels: more contradiction with the word
    reader: str = "corpus"  # "corpus": a content model fitted on the corpus; "model": the evaluated model

    @property
    def mislabelled(self) -> bool:
        return self.p < 0.05

    @property
    def reads_right(self) -> bool:
        """The rows read as labelled as their content says: not mislabelled, and the excess's whole interval below
        ``MARGIN`` (selected rows; an interval reaching it leaves the question open)."""
        return not self.mislabelled and self.effect.ci_high < MARGIN

    def describe(self) -> str:
        if self.reader == "model":
            return (f"the model itself, asked about its training rows with '{self.word}' masked, contradicts "
                    f"{self.with_word.value:.0%} of their labels (n={self.with_word.n}) vs {self.without.value:.0%} "
                    f"of rows without it with another of their words masked (n={self.without.n}, {SAME_MIX}): "
                    f"excess {self.effect}, p={self.p:.2g} within labels")
        return (f"a content model that never sees '{self.word}' (fitted on the rows without it, the word masked) "
                f"contradicts {self.with_word.value:.0%} of the training labels with it (n={self.with_word.n}) vs "
                f"{self.without.value:.0%} without (out of fold, n={self.without.n}, {SAME_MIX}): excess "
                f"{self.effect}, p={self.p:.2g} within labels")


def content_check(profile: Any, word: str, seed: int) -> ContentCheck | str:
    """The check on a corpus profile's labelled training rows; a reason string when it cannot run."""
    from lmcritic.errors import LmcriticError

    key = f"label_noise.content:{word}:{seed}"
    if key not in profile._cache:
        vectors = profile._cache.setdefault("label_noise.crossfit.vectors", {})
        try:
            profile._cache[key] = _check(labelled(profile)[0], word, seed, vectors)
        except LmcriticError as e:
            profile._cache[key] = f"the sentence encoder is unavailable ({e})"
    return profile._cache[key]


def _check(train: list[tuple[str, str]], word: str, seed: int, vectors: dict,
           embed: Embed | None = None) -> ContentCheck | str:
    rng = random.Random(seed)
    sides: dict[bool, list[tuple[str, str]]] = {True: [], False: []}
    for t, y in train:
        sides[word in _text.lower_words(t)].append((t, y))
    holds, rest = (rng.sample(s, min(PER_SIDE, len(s))) for s in (sides[True], sides[False]))
    holds = [(masked(t, word), y) for t, y in holds]
    y0 = np.array([y for _, y in rest])
    encode = encoder(vectors, embed)
    fitted = fit_apart(encode([t for t, _ in rest]), y0, encode([t for t, _ in holds]), seed) \
        if min(len(holds), len(rest)) >= MIN_ROWS and len(set(y0)) > 1 else None
    if fitted is None:
        return f"fewer than {MIN_ROWS} training rows with or without '{word}', or too few of a label without it"
    oof, on_holds = fitted
    return _compare(word, [(y, bool(p != y)) for p, (_, y) in zip(on_holds, holds)],
                    [(y, bool(p != y)) for p, y in zip(oof, y0)])


def model_check(ctx: Any, word: str) -> ContentCheck | str:
    """The evaluated model as the content reader: its training rows with ``word`` masked, against rows without it
    with one of their own words masked (the same deletion). A model that learnt the word as a cue fits those rows
    through it either way; masked, it reads what the text says, and a fine-tuned model reads that far better
    than the corpus's content model (selected rows of subtle criticism naming a 'director', labels right: the
    content model +0.16 over other negative rows, p 0.004; the model -0.01). A model that memorised its
    relabelled rows fits them masked too: then this check misses the noise, never invents it."""
    if getattr(ctx, "rescorer", None) is None or ctx.profile is None or not getattr(ctx, "eval_key", None):
        return "no model to ask about its training rows (no re-scoring backend or own-task probe)"
    key = f"label_noise.model_check:{word}:{ctx.seed}"  # the same for every defect that tests this word
    if key not in ctx.profile._cache:
        ctx.profile._cache[key] = _model_check(ctx, word)
    return ctx.profile._cache[key]


def _model_check(ctx: Any, word: str) -> ContentCheck | str:
    labelled = [(t, y) for t, y in zip(ctx.profile.corpus.texts, ctx.profile.labels) if y is not None]
    with_word = [(t, y) for t, y in labelled if word in _text.lower_words(t)]
    with_word = random.Random(f"{ctx.seed}:{word}").sample(with_word, min(MODEL_PER_SIDE, len(with_word)))
    edits = [(True, masked(t, word), y) for t, y in with_word]
    edits += [(False, masked(t, random.Random(f"{ctx.seed}:{t}").choice(ws)) if (ws := _text.lower_words(t)) else t, y)
              for t, y in _controls(labelled, ctx.seed) if word not in _text.lower_words(t)][:MODEL_CONTROLS]
    outs = _ask(ctx, [t for _, t, _ in edits])
    wrong: dict[bool, list[tuple[str, bool]]] = {True: [], False: []}
    for (k, _, y), pred in zip(edits, outs):
        if pred is not None:
            wrong[k].append((y, pred != y))
    if min(len(wrong[True]), len(wrong[False])) < MIN_ROWS:
        return f"the model answered fewer than {MIN_ROWS} masked training rows with or without '{word}'"
    found = _compare(word, wrong[True], wrong[False])
    return found if isinstance(found, str) else replace(found, reader="model")


def _controls(labelled: list[tuple[str, str]], seed: int) -> list[tuple[str, str]]:
    """The control rows, one sample for every word tested (their masked forms are asked once: the re-scoring
    budget is not spent again per word); rows with the word are dropped from it by the caller."""
    return random.Random(f"{seed}:controls").sample(labelled, min(2 * MODEL_CONTROLS, len(labelled)))


def _ask(ctx: Any, texts: list[str]) -> list[str | None]:
    """The model's predictions of ``texts``, scored as edits of an evaluated case (None where not answered)."""
    from lmcritic.diagnose.rescore import Edit

    if not ctx.eval_records:
        return [None] * len(texts)
    base = ctx.eval_records[0]
    outs = ctx.rescorer.run(ctx.eval_key, [Edit(base, t, "train_row_masked", {}) for t in texts], "label_noise",
                            ctx.defect.id)
    got = {o.edit.text: (str(o.prediction) if o.prediction is not None else None) for o in outs}
    return [got.get(t) for t in texts]


def _compare(word: str, rows1: list[tuple[str, bool]], rows0: list[tuple[str, bool]]) -> ContentCheck | str:
    """Contradiction with the word vs without, label by label: the rows with a word whose labels lean one way
    (what sent the diagnosis here) are compared with rows of the same labels, as a reader's error rate differs by
    label (subtle praise is misread more often than a pan). ``rows``: (training label, contradicted)."""
    by1, by0 = _by_label(rows1), _by_label(rows0)
    labels = sorted(set(by1) & set(by0))  # a label no control row has cannot be compared
    if sum(len(by1[y]) for y in labels) < MIN_ROWS:
        return f"fewer than {MIN_ROWS} rows with '{word}' have a label that rows without it have"
    e1 = stats.proportion([w for y in labels for w in by1[y]])
    e0 = stats.standardized([(sum(by0[y]), len(by0[y])) for y in labels], [len(by1[y]) for y in labels])
    p = stats.mantel_haenszel([(sum(by1[y]), len(by1[y]), sum(by0[y]), len(by0[y])) for y in labels])
    lo, hi = stats.difference_interval(e1, e0)
    return ContentCheck(word, e1, e0, Estimate(e1.value - e0.value, e1.n + e0.n, lo, hi, "mover"), p)


def _by_label(rows: list[tuple[str, bool]]) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = {}
    for y, w in rows:
        out.setdefault(y, []).append(w)
    return out


MINOR = 0.5  # share of the lean below which (whole CI) the mislabelled rows are the minor part of it


def lean_explained(check: ContentCheck, lean: float) -> Estimate | None:
    """The share of the phenomenon's label lean (``lean``: the training − evaluated share of the leaning label,
    beyond the rest) that the rows the reader contradicts account for. A reader erring on e of correctly
    labelled rows contradicts a mislabelled one about 1 − e of the time, so an excess contradiction x implies
    x / (1 − 2e) of the rows mislabelled; relabelling them moves the mix by that much, and the lean needs
    ``lean``. Below one half (the whole interval) the rows mostly carry their label for another reason
    (selected: a natural or scraped skew of the word), so the word's cue is not only the noise's consequence.
    None when the reader is no better than chance or nothing leans."""
    scale = lean * (1.0 - 2.0 * check.without.value)
    if not check.mislabelled or scale <= 0:
        return None
    e = check.effect
    return Estimate(e.value / scale, e.n, e.ci_low / scale, e.ci_high / scale, "ratio")


def describe_explained(share: Estimate) -> str:
    """The evidence line for :func:`lean_explained`."""
    part = ("the minor part; the word's rows mostly carry their label for another reason (selected), so its cue is "
            "not only this noise's consequence" if share.ci_high < MINOR else
            "at least half of it" if share.ci_low >= MINOR else
            "perhaps half of it or more (the interval reaches one half)")
    return (f"the contradicted rows account for {share} of the lean (excess contradiction / (lean × (1 − 2 × the "
            f"reader's error elsewhere))): {part}")


SAME_MIX = "weighted to their label mix"


def selected(name: str, mix: str, check: ContentCheck) -> str:
    """The verdict's summary when the label mix leans but the content agrees with the labels."""
    return (f"training labels with {name} lean one way ({mix}), but {check.describe()}: the rows look selected, "
            "not mislabelled — the word is a spurious cue of the label (a spurious feature), not label noise")


def masked(text: str, word: str) -> str:
    """``text`` without ``word`` (whole word, any case); never empty."""
    out = " ".join(re.sub(rf"(?<![A-Za-z']){re.escape(word)}(?![A-Za-z'])", " ", text, flags=re.I).split())
    return out or "."


def read_labels(ctx: Any, word: str, name: str, evidence: list) -> ContentCheck | None:
    """Whether the rows holding ``word`` are labelled as their content reads them, read by a content model fitted
    on the corpus and by the model itself with the word masked, each within labels; the lines of evidence are
    appended. The model's reading decides where it ran, the corpus model's otherwise (None when neither could):
    the model reads content far better (selected 'director' rows: the corpus model +0.19 before comparing within
    labels, the model -0.06; a fifth of 'plot' rows relabelled: the corpus model +0.02 within labels, the
    model +0.08, p 0.03), so requiring both, as before, kept the weaker reader's power and nothing else.
    Except where they contradict each other (:func:`_contradicted`): then the corpus reader decides."""
    from lmcritic.diagnose.hypotheses.base import Evidence

    checks = []
    for check in (content_check(ctx.profile, word, ctx.seed), model_check(ctx, word)):
        if isinstance(check, str):
            evidence.append(Evidence("statistic", f"{name}: no content check: {check}"))
        else:
            evidence.append(Evidence("test", check.describe(), check.effect, check.p))
            checks.append(check)
    decides = max(checks, key=lambda c: c.reader == "model", default=None)
    if len(checks) == 2 and _contradicted(*checks):  # (corpus reader, model), the order they ran in
        evidence.append(Evidence("statistic", "the two readers contradict each other (the model's excess lies "
                                 "above the corpus reader's whole interval): a model that could label these "
                                 "rows by the word alone learnt little of their content, so masking it leaves "
                                 "them unread, not mislabelled; the corpus reader, fitted without the word, "
                                 "decides"))
        return checks[0]
    if len(checks) == 2:
        evidence.append(Evidence("statistic", "the model's own reading decides (the better reader of the two)"))
    return decides


def _contradicted(corpus: ContentCheck, model: ContentCheck) -> bool:
    """The model's reading finds mislabelled rows where the corpus reader's interval excludes its whole interval:
    the model's masked reading is confounded by a shortcut (a bag-of-words model with an inserted token 'cf':
    the model +0.22 [0.16, 0.29], the corpus reader -0.06 [-0.16, +0.05]; the labels were right)."""
    return model.mislabelled and model.effect.ci_low > corpus.effect.ci_high


__all__ = ["ContentCheck", "MARGIN", "MINOR", "content_check", "describe_explained", "lean_explained", "masked",
           "model_check", "read_labels", "selected"]
