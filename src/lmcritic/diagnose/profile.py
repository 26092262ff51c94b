"""Corpus evidence from the training data the user passed (``--train``), against the data the model was evaluated on.

Computed once per diagnosis, model-free, and linked to defects by the hypotheses:

* **token–label association** — log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn
  2008) per label against the rest, on document counts, z-scored, two-sided p BH-corrected over the vocabulary
  (tokens in ≥ ``min_count`` documents; a token is a word, a number or a run of symbols such as ``:-)`` or an
  emoji, :func:`lmcritic.diagnose._text.tokens`);
* **artifact test** for an associated token, task-independent: is it over-represented in training relative to
  the evaluated data (Fisher on document frequency), or is its label association significantly weaker there (a z
  test on the two log-odds ratios)? A real signal word replicates on held-out text; an injected shortcut or a
  collection artefact does not;
* **identity-term label skew** per group (:func:`lmcritic.lexicon.association.associate`);
* **distribution shift** train vs evaluated: colloquial register, typos, negation, contrast, length (Fisher /
  Mann–Whitney), each with both shares and their Newcombe difference;
* **duplicates and conflicting labels** (normalised text).
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from lmcritic import stats
from lmcritic.diagnose import _text
from lmcritic.diagnose.corpus import Corpus, label_name
from lmcritic.diagnose.slices import risk_difference
from lmcritic.probes.base import Estimate

MIN_COUNT = 8
PRIOR = 10.0  # prior pseudo-documents per token, split by its corpus-wide rate
TEXT_FEATURES = ("register", "typos", "negation", "contrast")


@dataclass(frozen=True)
class TokenAssociation:
    token: str
    label: str  # the label the token leans to
    n_docs: int  # training documents holding it
    rate: float  # share of those documents with ``label``
    base_rate: float
    z: float  # Dirichlet-prior log-odds z-score (label vs the rest)
    p_value: float
    q_value: float = 1.0
    eval_docs: int = 0  # evaluated texts holding it
    eval_rate: float | None = None  # share of those with ``label`` (when the evaluated data is labelled)
    artifact_p: float = 1.0  # over-represented in training, or association weaker on the evaluated data
    lines: tuple[int, ...] = ()  # training file lines holding it (first few hundred)


@dataclass(frozen=True)
class Shift:
    """A text feature's share in training vs in the evaluated data."""

    feature: str
    value: str
    train: Estimate
    evaluated: Estimate
    difference: Estimate  # evaluated − train (Newcombe)
    p_value: float

    @property
    def rarer_in_training(self) -> bool:
        """The feature is significantly rarer in training than in the evaluated data (a covariate shift)."""
        return self.p_value < 0.05 and self.difference.ci_low > 0


@dataclass(frozen=True)
class Conflict:
    text: str
    labels: dict[str, int]
    lines: tuple[int, ...]


@dataclass
class CorpusProfile:
    """The training corpus and the evaluated texts (with their gold labels when known)."""

    corpus: Corpus
    eval_texts: Sequence[str] = ()
    eval_labels: Sequence[str | None] = ()
    min_count: int = MIN_COUNT
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> list[str | None]:
        labels = self.corpus.labels
        return list(labels) if getattr(self.corpus, "named", False) else [label_name(x) for x in labels]

    @property
    def labelled(self) -> bool:
        return any(x is not None for x in self.corpus.labels)

    def label_shares(self) -> dict[str, Estimate]:
        labs = [x for x in self.labels if x is not None]
        return {lab: stats.proportion([x == lab for x in labs]) for lab in sorted(set(labs))}

    # -- tokens ----------------------------------------------------------------------------------------
    @cached_property
    def tokens(self) -> tuple[TokenAssociation, ...]:
        """Every token significantly associated with a label (BH q < 0.05), strongest first."""
        if not self.labelled:
            return ()
        docs = [set(_text.tokens(t)) for t in self.corpus.texts]
        labs = self.labels
        rows = [r for lab in sorted({x for x in labs if x is not None}) for r in _log_odds(docs, labs, lab,
                                                                                           self.min_count)]
        qs = stats.benjamini_hochberg([r.p_value for r in rows]) if rows else []
        sig = [_with(r, q_value=float(q)) for r, q in zip(rows, qs) if q < 0.05]
        # ties broken by the token: the rows come from sets, whose order changes with each process's hash seed, and
        # the candidates' cap per label must not pick a different token from one run to the next
        return tuple(sorted((self._held_out(r, docs) for r in sig), key=lambda r: (-abs(r.z), r.token, r.label)))

    def _held_out(self, r: TokenAssociation, docs: list[set[str]]) -> TokenAssociation:
        ev = [i for i, t in enumerate(self._eval_words) if r.token in t]
        lines = tuple(self.corpus.lines[i] for i, d in enumerate(docs) if r.token in d)[:500]
        labelled = [self.eval_labels[i] for i in ev if i < len(self.eval_labels) and self.eval_labels[i]]
        eval_rate = sum(x == r.label for x in labelled) / len(labelled) if labelled else None
        p = _artifact_p(r, len(ev), len(self.eval_texts), len(self.corpus), labelled, self.eval_labels)
        return _with(r, eval_docs=len(ev), eval_rate=eval_rate, artifact_p=p, lines=lines)

    @cached_property
    def _eval_words(self) -> list[set[str]]:
        return [set(_text.tokens(t)) for t in self.eval_texts]

    def token(self, token: str) -> TokenAssociation | None:
        return next((t for t in self.tokens if t.token == token.lower()), None)

    # -- identity groups --------------------------------------------------------------------------------
    def group_rates(self, attribute: str, target: str) -> dict[str, tuple[int, int]]:
        """Per group of ``attribute``: (documents with the target label, documents) in the training corpus."""
        key = f"groups:{attribute}:{target}"
        if key not in self._cache:
            labs = ["" if x is None else str(x) for x in self.labels]
            self._cache[key] = {group: (sum(labs[i] == target for i in docs), len(docs))
                                for (attr, group), docs in self._group_docs.items() if attr == attribute}
        return self._cache[key]

    @cached_property
    def _group_docs(self) -> dict[tuple[str, str], list[int]]:
        """(attribute, group) → the training rows naming it: the lexicon's one pass over the corpus, shared by
        every attribute and target asked about (a pass per attribute took a minute on SST-2's 67k rows)."""
        from lmcritic.lexicon.association import index_docs

        _, groups = index_docs(self.corpus.texts, None)
        return {(attr, group): docs for (_, attr, group), docs in groups.items()}

    # -- shift -----------------------------------------------------------------------------------------
    @cached_property
    def shifts(self) -> dict[tuple[str, str], Shift]:
        """Text features whose share differs between training and the evaluated data."""
        if not self.eval_texts:
            return {}
        out = {}
        for feature in TEXT_FEATURES:
            a = [text_feature(feature, t) for t in self.corpus.texts]
            b = [text_feature(feature, t) for t in self.eval_texts]
            for value in sorted(set(b)):
                out[(feature, value)] = _shift(feature, value, [x == value for x in a], [x == value for x in b])
        return out

    @cached_property
    def word_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Words per training row and per evaluated text: every length test of the diagnosis reads them."""
        return (np.array([len(_text.words(t)) for t in self.corpus.texts], float),
                np.array([len(_text.words(t)) for t in self.eval_texts], float))

    def length_shift(self) -> tuple[float, float, float]:
        """(median train words, median evaluated words, Mann–Whitney p)."""
        from scipy.stats import mannwhitneyu

        a, b = self.word_counts
        b = b if len(b) else np.zeros(1)
        return float(np.median(a)), float(np.median(b)), float(mannwhitneyu(a, b).pvalue)

    # -- duplicates --------------------------------------------------------------------------------------
    @cached_property
    def duplicates(self) -> tuple[dict[str, list[int]], tuple[Conflict, ...]]:
        """Normalised text → training lines (texts seen 2+ times), and those with conflicting labels."""
        where: dict[str, list[int]] = defaultdict(list)
        for i, t in enumerate(self.corpus._norm):
            where[t].append(i)
        dup = {t: idx for t, idx in where.items() if len(idx) > 1}
        labs = self.labels
        conflicts = tuple(Conflict(self.corpus.texts[idx[0]], dict(Counter(str(labs[i]) for i in idx)),
                                   tuple(self.corpus.lines[i] for i in idx))
                          for t, idx in dup.items() if len({labs[i] for i in idx}) > 1)
        return {t: [self.corpus.lines[i] for i in idx] for t, idx in dup.items()}, conflicts

    def copies(self, text: str) -> list[tuple[int, str | None]]:
        """(line, label) of every training row whose normalised text equals ``text``'s."""
        labs = self.labels
        return [(self.corpus.lines[i], labs[i]) for i in self.corpus.exact(text)]

    def describe(self) -> dict[str, Any]:
        dup, conflicts = self.duplicates
        return {"n_docs": len(self.corpus), "labels": {k: v.value for k, v in self.label_shares().items()},
                "associated_tokens": len(self.tokens), "duplicated_texts": len(dup),
                "conflicting_texts": len(conflicts),
                "shifts": {f"{f}={v}": {"train": s.train.value, "evaluated": s.evaluated.value, "p": s.p_value}
                           for (f, v), s in self.shifts.items() if s.p_value < 0.05}}


def text_feature(feature: str, text: str) -> str:
    """The value of one of the text features shared by slicing and the corpus profile."""
    if feature == "register":
        return "colloquial" if _text.colloquial_markers(text) else "formal"
    if feature == "typos":
        return "yes" if _text.typos(text) else "no"
    if feature == "negation":
        return "yes" if _text.has_negation(text) else "no"
    if feature == "contrast":
        return "yes" if _text.has_contrast(text) else "no"
    raise KeyError(feature)


def _log_odds(docs: list[set[str]], labels: Sequence[str | None], label: str, min_count: int) -> list[TokenAssociation]:
    """Smoothed log odds ratio of a token's documents in ``label`` vs the rest, with an informative prior: PRIOR
    pseudo-documents split by the token's corpus-wide rate, which shrinks rare tokens toward no association."""
    df: Counter = Counter()
    in_label: Counter = Counter()
    for d, lab in zip(docs, labels):
        if lab is None:
            continue
        df.update(d)
        if lab == label:
            in_label.update(d)
    n = sum(lab is not None for lab in labels)
    n_i = sum(lab == label for lab in labels)
    out = []
    for w, k in df.items():
        if k < min_count or k >= n:  # in every labelled row: no association to measure (and a zero prior cell)
            continue
        a, b = PRIOR * k / n, PRIOR * (1 - k / n)
        yi, yj = in_label[w], k - in_label[w]
        cells = (yi + a, n_i - yi + b, yj + a, n - n_i - yj + b)
        z = (math.log(cells[0] / cells[1]) - math.log(cells[2] / cells[3])) / math.sqrt(sum(1 / c for c in cells))
        if z > 0:
            out.append(TokenAssociation(w, label, k, yi / k, n_i / n, z, math.erfc(z / math.sqrt(2))))
    return out


def _artifact_p(r: TokenAssociation, k_eval: int, n_eval: int, n_train: int, eval_labels: list,
                all_eval_labels: Sequence[str | None]) -> float:
    """One-sided p that the token is a training artefact: over-represented in training, or its association
    significantly weaker on the evaluated data (the smaller of the two tests, Bonferroni ×2)."""
    from scipy.stats import fisher_exact

    if not n_eval:
        return 1.0
    p_freq = float(fisher_exact([[r.n_docs, n_train - r.n_docs], [k_eval, n_eval - k_eval]],
                                alternative="greater")[1])
    p_assoc = 1.0
    known = [x for x in all_eval_labels if x]
    if len(eval_labels) >= 5 and known:
        base = sum(x == r.label for x in known) / len(known)
        k = sum(x == r.label for x in eval_labels)
        lo_train = _logit(r.rate, r.n_docs) - _logit(r.base_rate, n_train)
        lo_eval = _logit(k / len(eval_labels), len(eval_labels)) - _logit(base, len(known))
        se = math.sqrt(1 / (r.n_docs * r.rate * (1 - r.rate) + 1) + 1 / (k + 0.5) + 1 / (len(eval_labels) - k + 0.5))
        p_assoc = 0.5 * math.erfc(((lo_train - lo_eval) / se) / math.sqrt(2))
    return min(1.0, 2 * min(p_freq, p_assoc))


def _logit(p: float, n: int) -> float:
    p = min(max(p, 0.5 / (n + 1)), 1 - 0.5 / (n + 1))
    return math.log(p / (1 - p))


def _shift(feature: str, value: str, train: list[bool], evaluated: list[bool]) -> Shift:
    from scipy.stats import fisher_exact

    a, b = stats.proportion(train), stats.proportion(evaluated)
    d, (lo, hi) = risk_difference(sum(evaluated), len(evaluated), sum(train), len(train))
    k_ev, k_tr = sum(evaluated), sum(train)
    p = float(fisher_exact([[k_ev, len(evaluated) - k_ev], [k_tr, len(train) - k_tr]])[1])
    return Shift(feature, value, a, b, Estimate(d, len(evaluated), lo, hi, "newcombe"), p)


def _with(r: TokenAssociation, **changes: Any) -> TokenAssociation:
    from dataclasses import replace

    return replace(r, **changes)
