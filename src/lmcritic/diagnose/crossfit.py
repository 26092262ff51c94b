"""A cross-fitted corpus model: label-noise evidence in the training labels themselves.

A logistic regression on frozen sentence embeddings (the offline MiniLM encoder, :mod:`lmcritic._minilm`) is
fitted K-fold on a sample of the training corpus — rows with the phenomenon and rows without, up to
``PER_SIDE`` each. Every sampled training row is predicted by the fold model that never saw it (out of fold),
and every evaluated text by each fold model (its error: the share of them that err). Both are held-out error
estimates of the same learner fitted on the same amount of data (a full-sample model would do better on
data-hungry phenomena and bias the comparison), so with clean labels a phenomenon's out-of-fold disagreement
with its training labels exceeds its error on the evaluated texts only by as much as it does for the other
texts (the corpus and the evaluated data differ). Noisy training labels add disagreement on the training side
only — about the noise rate times (1 − 2 × the learner's error) — which the difference in differences measures.

Unlike the evaluated model's own disagreement with its training labels, this does not depend on how well that
model fitted each kind of row: an under-fitted model fits easy rows better than held-out data and hard ones no
better, which alone gives the model-side statistic a positive baseline on a hard phenomenon.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np

FOLDS = 5
PER_SIDE = 2500  # training rows sampled with / without the phenomenon (the encoder is the cost)
MIN_ROWS = 20

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class CrossFit:
    """Disagreement of a cross-fitted corpus model, split by the phenomenon (True: with it)."""

    train_wrong: dict[bool, list[float]]  # 1.0 where the out-of-fold prediction != the training label
    eval_wrong: dict[bool, list[float]]  # share of the fold models whose prediction != the evaluated text's gold label
    learner: str = "logistic regression on MiniLM sentence embeddings, 5-fold cross-fitted"


def crossfit(train: Sequence[tuple[str, str]], evaluated: Sequence[tuple[str, str]], has: Callable[[str], bool],
             seed: int = 0, embed: Embed | None = None,
             vectors: dict[str, np.ndarray] | None = None) -> CrossFit | str:
    """Cross-fit on (text, label) training rows and score (text, gold label) evaluated rows; a reason string
    when it cannot be done (too few rows per side, one label, gold labels outside the training labels).
    ``vectors``: embeddings by text, filled here and reused (each phenomenon tested re-samples the same corpus)."""
    sample = _sample(train, has, seed)
    labels = sorted({y for _, y in sample})
    gold = [(t, y) for t, y in evaluated if y in labels]
    if len(labels) < 2:
        return "the sampled training rows carry a single label"
    if min(sum(has(t) == k for t, _ in sample) for k in (True, False)) < MIN_ROWS:
        return f"fewer than {MIN_ROWS} training rows with or without the phenomenon"
    if min(sum(has(t) == k for t, _ in gold) for k in (True, False)) < 5:
        return "fewer than 5 evaluated texts with a known gold label with or without the phenomenon"
    encode = _memo(embed or _minilm_encode, {} if vectors is None else vectors)
    x_train = encode([t for t, _ in sample])
    x_eval = encode([t for t, _ in gold])
    y = np.array([y for _, y in sample])
    oof, on_eval = _out_of_fold(x_train, y, x_eval, seed)
    gold_y = np.array([y for _, y in gold])
    eval_err = (on_eval != gold_y[None, :]).mean(0) if len(on_eval) else np.ones(len(gold))
    train_wrong: dict[bool, list[float]] = {True: [], False: []}
    eval_wrong: dict[bool, list[float]] = {True: [], False: []}
    for (t, label), p in zip(sample, oof):
        train_wrong[has(t)].append(float(p != label))
    for (t, _), e in zip(gold, eval_err):
        eval_wrong[has(t)].append(float(e))
    return CrossFit(train_wrong, eval_wrong)


@dataclass(frozen=True)
class CorpusFit:
    """A cross-fitted corpus model on the whole corpus: (right, confidence) per training row (out of fold, against
    its label) and per evaluated text (averaged over the fold models, against its gold label)."""

    train: tuple[np.ndarray, np.ndarray]
    evaluated: tuple[np.ndarray, np.ndarray]
    learner: str = "logistic regression on MiniLM sentence embeddings, 5-fold cross-fitted"
    labels: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: (np.array([]), np.array([])))
    texts: tuple[str, ...] = ()  # the sampled training rows' texts (to name their lines)
    eval_texts: tuple[str, ...] = ()  # the gold-labelled evaluated texts, in the order of ``evaluated``
    predicted: np.ndarray = field(default_factory=lambda: np.array([]))  # each training row's out-of-fold label
    domain: tuple[float, float] | None = None  # (AUC, p) of telling the evaluated texts from the training rows
    eval_votes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # per evaluated text, share of fold
    # models predicting each label (columns: sorted training labels), each deciding by p(label | text) / its share
    # of the training rows (a balanced rule: a fixed classifier whose confusion is far from singular on a skewed
    # corpus, where the plain argmax can call nearly everything the majority label)
    balanced: np.ndarray = field(default_factory=lambda: np.array([]))  # each training row's out-of-fold label
    # under that balanced rule
    weights: np.ndarray = field(default_factory=lambda: np.array([]))  # per training row, p(evaluated) / p(corpus):
    # their effective sample size says how much of the corpus resembles the evaluated texts

    def without(self, drop: Callable[[str], bool]) -> tuple[CorpusFit, int, int]:
        """The fit without the training rows and evaluated texts ``drop`` holds for, and how many of each went: a
        test that must leave some rows out reads the same fold models' predictions of the rest. Unchanged (0, 0)
        for a fit that kept no evaluated texts (it cannot be split)."""
        if len(self.eval_texts) != len(self.labels[1]):
            return self, 0, 0
        kt, ke = (np.array([not drop(t) for t in ts], dtype=bool) for ts in (self.texts, self.eval_texts))
        if kt.all() and ke.all():
            return self, 0, 0
        out = replace(self, train=(self.train[0][kt], self.train[1][kt]),
                      evaluated=(self.evaluated[0][ke], self.evaluated[1][ke]),
                      labels=(self.labels[0][kt], self.labels[1][ke]),
                      texts=tuple(t for t, k in zip(self.texts, kt) if k),
                      eval_texts=tuple(t for t, k in zip(self.eval_texts, ke) if k),
                      predicted=self.predicted[kt] if len(self.predicted) == len(kt) else self.predicted,
                      eval_votes=self.eval_votes[ke] if len(self.eval_votes) == len(ke) else self.eval_votes,
                      balanced=self.balanced[kt] if len(self.balanced) == len(kt) else self.balanced,
                      weights=self.weights[kt] if len(self.weights) == len(kt) else self.weights)
        return out, int((~kt).sum()), int((~ke).sum())

def crossfit_all(train: Sequence[tuple[str, str]], evaluated: Sequence[tuple[str, str]], seed: int = 0,
                 embed: Embed | None = None, vectors: dict[str, np.ndarray] | None = None) -> CorpusFit | str:
    """Cross-fit on a sample of every training row (no phenomenon), with probabilities; a reason when it cannot."""
    rows = list(train)
    sample = random.Random(seed).sample(rows, min(2 * PER_SIDE, len(rows)))
    labels = sorted({y for _, y in sample})
    gold = [(t, y) for t, y in evaluated if y in labels]
    if len(labels) < 2 or len(sample) < 2 * MIN_ROWS or len(gold) < 30:
        return "too few training rows, labels or gold-labelled evaluated texts for a corpus model"
    encode = _memo(embed or _minilm_encode, {} if vectors is None else vectors)
    x, x_eval = encode([t for t, _ in sample]), encode([t for t, _ in gold])
    y, gold_y = np.array([y for _, y in sample]), np.array([y for _, y in gold])
    folds = _n_folds(y)
    if folds < 2:
        return "a label has a single training row"
    ok, conf, pred, bal = np.zeros(len(y)), np.zeros(len(y)), y.copy(), y.copy()
    ev_ok, ev_conf, votes = np.zeros(len(gold)), np.zeros(len(gold)), np.zeros((len(gold), len(labels)))
    share = {lab: float((y == lab).mean()) for lab in labels}
    for model, te in _fold_models(x, y, seed):
        p, q = model.predict_proba(x[te]), model.predict_proba(x_eval)
        pred[te] = model.classes_[p.argmax(1)]
        ok[te], conf[te] = pred[te] == y[te], p.max(1)
        ev_ok += (model.classes_[q.argmax(1)] == gold_y) / folds
        ev_conf += q.max(1) / folds
        prior = np.array([share[c] for c in model.classes_])
        bal[te] = model.classes_[(p / prior).argmax(1)]
        votes[np.arange(len(gold)), [labels.index(c) for c in model.classes_[(q / prior).argmax(1)]]] += 1 / folds
    scores = _domain_scores(x, x_eval, seed)
    return CorpusFit((ok, conf), (ev_ok, ev_conf), labels=(y, gold_y), texts=tuple(t for t, _ in sample),
                     eval_texts=tuple(t for t, _ in gold),
                     predicted=pred, domain=_auc(scores, len(x)), eval_votes=votes, balanced=bal,
                     weights=_density_ratio(scores[:len(x)]))


def _domain_scores(x: np.ndarray, x_eval: np.ndarray, seed: int) -> np.ndarray:
    """Out-of-fold scores of a classifier telling the evaluated texts (last) from the training rows (first),
    class-balanced: a test that assumes the evaluated texts sample the corpus's population checks it with them, and
    a test that needs the corpus to overlap them measures the overlap with their density ratio."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    z, d = np.vstack([x, x_eval]), np.r_[np.zeros(len(x)), np.ones(len(x_eval))]
    score = np.zeros(len(d))
    for tr, te in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(z, d):
        model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(z[tr], d[tr])
        score[te] = model.predict_proba(z[te])[:, 1]
    return score


def _auc(score: np.ndarray, n_train: int) -> tuple[float, float]:
    """The domain classifier's AUC and the one-sided Mann–Whitney p of AUC > 0.5."""
    from scipy.stats import mannwhitneyu

    u, p = mannwhitneyu(score[n_train:], score[:n_train], alternative="greater")
    return float(u) / (len(score[n_train:]) * n_train), float(p)


def _density_ratio(score: np.ndarray) -> np.ndarray:
    """p(evaluated) / p(corpus) per training row, up to a constant: the class-balanced domain classifier's odds,
    clipped at their 99th percentile (a few near-certain scores would otherwise decide the effective sample size)."""
    s = np.clip(score, 1e-6, 1 - 1e-6)
    w = s / (1 - s)
    return np.minimum(w, np.percentile(w, 99)) if len(w) else w


def corpus_fit(profile: Any, seed: int) -> CorpusFit | str:
    """The whole-corpus cross-fit of a diagnosis's corpus profile (:func:`crossfit_all`), fitted once and shared
    by every test that reads it (the calibration-gap and the class-conditional label-noise tests)."""
    return cached_fit(profile, f"label_noise.crossfit_all:{seed}",
                      lambda train, evaluated, vectors: crossfit_all(train, evaluated, seed, vectors=vectors))


def labelled(profile: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A corpus profile's labelled (text, label) training rows and (text, gold label) evaluated texts."""
    train = [(t, y) for t, y in zip(profile.corpus.texts, profile.labels) if y is not None]
    return train, [(t, y) for t, y in zip(profile.eval_texts, profile.eval_labels) if y is not None]


def cached_fit(profile: Any, key: str, fit: Callable[..., Any]) -> Any:
    """``fit(train, evaluated, vectors)`` on a corpus profile's labelled rows, cached on the profile under ``key``
    (embeddings shared by every fit of the diagnosis); a reason string when the offline encoder is missing."""
    from lmcritic.errors import LmcriticError

    if key not in profile._cache:
        train, evaluated = labelled(profile)
        try:
            profile._cache[key] = fit(train, evaluated, profile._cache.setdefault("label_noise.crossfit.vectors", {}))
        except LmcriticError as e:
            profile._cache[key] = f"the sentence encoder is unavailable ({e})"
    return profile._cache[key]


def encoder(vectors: dict[str, np.ndarray], embed: Embed | None = None) -> Callable[[list[str]], np.ndarray]:
    """The sentence encoder (MiniLM unless ``embed``) through ``vectors``, a text -> embedding memo."""
    return _memo(embed or _minilm_encode, vectors)


def fit_apart(x: np.ndarray, y: np.ndarray, x_other: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Out-of-fold predictions of the rows ``x`` (labels ``y``), and a model fitted on all of them predicting
    ``x_other``, rows it never saw; None when a label has fewer rows than two folds need."""
    if _n_folds(y) < 2:
        return None
    oof = np.empty(len(y), dtype=object)
    for model, te in _fold_models(x, y, seed):
        oof[te] = model.predict(x[te])
    return oof, _fit(x, y).predict(x_other)


def _memo(encode: Embed, vectors: dict[str, np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    """``encode`` through ``vectors``: only texts not seen before are encoded (in one call, in order)."""
    def run(texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in vectors))
        if missing:
            vectors.update(zip(missing, np.asarray(encode(missing), float)))
        return np.asarray([vectors[t] for t in texts], float)
    return run


def _sample(train: Sequence[tuple[str, str]], has: Callable[[str], bool], seed: int) -> list[tuple[str, str]]:
    sides: dict[bool, list[tuple[str, str]]] = {True: [], False: []}
    for t, y in train:
        sides[has(t)].append((t, y))
    rng = random.Random(seed)
    return [r for k in (True, False) for r in rng.sample(sides[k], min(PER_SIDE, len(sides[k])))]


def _out_of_fold(x: np.ndarray, y: np.ndarray, x_eval: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions of the training rows, and every fold model's predictions of the evaluated texts
    (shape folds × texts): both sides are predicted by models fitted on the same amount of data."""
    out = np.empty(len(y), dtype=object)
    on_eval = []
    if _n_folds(y) < 2:
        return out, np.empty((0, len(x_eval)), dtype=object)
    for model, te in _fold_models(x, y, seed):
        out[te] = model.predict(x[te])
        on_eval.append(model.predict(x_eval))
    return out, np.array(on_eval, dtype=object)


def _n_folds(y: np.ndarray) -> int:
    return min(FOLDS, min(int((y == c).sum()) for c in set(y)))


def _fold_models(x: np.ndarray, y: np.ndarray, seed: int) -> Iterator[tuple[Any, np.ndarray]]:
    """Each stratified fold's model (fitted on the other folds) with the fold's row indices."""
    from sklearn.model_selection import StratifiedKFold

    for tr, te in StratifiedKFold(_n_folds(y), shuffle=True, random_state=seed).split(x, y):
        yield _fit(x[tr], y[tr]), te


def _fit(x: np.ndarray, y: np.ndarray):  # noqa: ANN202 - sklearn estimator
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=2000).fit(x, y)


def _minilm_encode(texts: Sequence[str]) -> np.ndarray:
    from lmcritic import _minilm

    return _minilm.encode([t if t.strip() else "." for t in texts])
