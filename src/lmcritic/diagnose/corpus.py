"""The training-data link: a corpus (training or reference) searched for the examples nearest to a
defect's cases, its verbatim overlap with them, and the term–label statistics behind a data-bias verdict.

Retrieval is hybrid: BM25 (``bm25s``) over the whole corpus picks candidates, all-MiniLM-L6-v2 embeddings
(:mod:`lmcritic._minilm`) re-rank them, so a 67k-sentence corpus is searched in seconds on a CPU.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lmcritic.errors import DataError

_NORM = re.compile(r"[^a-z0-9']+")
SHINGLE = 6  # word n-gram length for verbatim overlap


@dataclass(frozen=True)
class Neighbour:
    """A corpus example near a case: where it is, its text and label, and both similarity scores."""

    case_id: str
    line: int
    text: str
    label: str | None
    bm25: float
    cosine: float


@dataclass(frozen=True)
class TermStats:
    """How a term co-occurs with each label in the corpus (Fisher exact test against the other labels)."""

    term: str
    n_with: int
    label_counts: dict[str, int]
    base_rates: dict[str, float]
    leaning: str | None  # the label over-represented with the term
    odds_ratio: float
    p_value: float


class Corpus:
    """Texts (and labels when the file has them) from .tsv/.csv/.jsonl (text|sentence + label) or .txt."""

    def __init__(self, path: str | Path, max_docs: int | None = None,
                 rows: tuple[list[int], list[str], list[str | None]] | None = None) -> None:
        self.path = Path(path)
        self.lines, self.texts, self.labels = rows if rows is not None else _load(self.path, max_docs)
        self._norm = [normalize(t) for t in self.texts]
        self._bm25: Any = None
        self._shingles: set[tuple[str, ...]] | None = None
        self._exact: dict[str, list[int]] | None = None
        self.named = False  # labels already the evaluated task's class names (see name_labels)

    @classmethod
    def of_rows(cls, source: str, lines: Sequence[int], texts: Sequence[str], labels: Sequence[str]) -> "Corpus":
        """A corpus of rows already in memory whose labels are the task's class names (a mitigation's rows)."""
        named: list[str | None] = list(labels)
        corpus = cls(source, rows=(list(lines), list(texts), named))
        corpus.named = True
        return corpus

    def label(self, i: int) -> str | None:
        """Row ``i``'s label as the evaluated task names it."""
        return self.labels[i] if self.named else label_name(self.labels[i])

    def name_labels(self, classes: Sequence[str], heads: Sequence[str] | None) -> None:
        """The corpus's labels as the evaluated task's classes, so every test compares like with like."""
        table = class_table(sorted({x for x in self.labels if x is not None}), classes, heads)
        self.labels = [None if x is None else table.get(x, x) for x in self.labels]
        self.named = True

    def __len__(self) -> int:
        return len(self.texts)

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "n_docs": len(self), "labelled": any(x is not None for x in self.labels)}

    # -- retrieval ---------------------------------------------------------------------------------
    def nearest(self, queries: Sequence[tuple[str, str]], k: int = 3, candidates: int = 30) -> list[Neighbour]:
        """For each (case id, text): the ``k`` nearest examples by MiniLM cosine among BM25's top candidates."""
        if not queries or not len(self):
            return []
        import numpy as np

        from lmcritic import _minilm

        docs, scores = self._retriever().retrieve(_tokens([q for _, q in queries]), k=min(candidates, len(self)),
                                                   show_progress=False)
        pool = sorted({int(i) for row in docs for i in row})
        vecs = dict(zip(pool, _minilm.encode([self.texts[i] for i in pool])))
        qvecs = _minilm.encode([q for _, q in queries])
        out = []
        for (cid, _), qv, row, srow in zip(queries, qvecs, docs, scores):
            ranked = sorted(((float(np.dot(qv, vecs[int(i)])), int(i), float(s)) for i, s in zip(row, srow)),
                            reverse=True)[:k]
            out += [Neighbour(cid, self.lines[i], self.texts[i], self.labels[i], s, c) for c, i, s in ranked]
        return out

    def _retriever(self):
        if self._bm25 is None:
            import bm25s

            self._bm25 = bm25s.BM25()
            self._bm25.index(_tokens(self.texts), show_progress=False)
        return self._bm25

    # -- verbatim overlap ------------------------------------------------------------------------------
    def overlap(self, text: str) -> float:
        """Share of the text's word 6-grams (the whole text when shorter) found verbatim in the corpus."""
        grams = shingles(normalize(text))
        if not grams:
            return 0.0
        if self._shingles is None:
            self._shingles = {g for t in self._norm for g in shingles(t)}
        return sum(g in self._shingles for g in grams) / len(grams)

    def exact(self, text: str) -> list[int]:
        """Indices of corpus examples whose normalised text equals ``text``'s."""
        if self._exact is None:
            self._exact = {}
            for i, t in enumerate(self._norm):
                self._exact.setdefault(t, []).append(i)
        return list(self._exact.get(normalize(text), ()))

    # -- term–label statistics ------------------------------------------------------------------------
    def term_stats(self, term: str) -> TermStats | None:
        """Label distribution of examples containing ``term`` (whole word) vs the rest, or None if unlabelled."""
        labelled = [(t, lab) for t, lab in zip(self._norm, self.labels) if lab is not None]
        if not labelled:
            return None
        pat = re.compile(rf"(?:^| ){re.escape(normalize(term))}(?: |$)")
        labels = sorted({lab for _, lab in labelled})
        with_term = [lab for t, lab in labelled if pat.search(t)]
        counts = {lab: with_term.count(lab) for lab in labels}
        base = {lab: sum(1 for _, x in labelled if x == lab) / len(labelled) for lab in labels}
        if not with_term:
            return TermStats(term, 0, counts, base, None, 1.0, 1.0)
        lean = max(labels, key=lambda lab: counts[lab] / len(with_term) - base[lab])
        a, b = counts[lean], len(with_term) - counts[lean]
        total_lean = sum(1 for _, x in labelled if x == lean)
        c, d = total_lean - a, len(labelled) - total_lean - b
        from scipy.stats import fisher_exact

        odds, p = fisher_exact([[a, b], [c, d]])
        return TermStats(term, len(with_term), counts, base, lean, float(odds), float(p))


def normalize(text: str) -> str:
    return _NORM.sub(" ", text.lower()).strip()


def shingles(norm: str, n: int = SHINGLE) -> list[tuple[str, ...]]:
    ws = norm.split()
    if not ws:
        return []
    if len(ws) <= n:
        return [tuple(ws)]
    return [tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)]


def _tokens(texts: Sequence[str]) -> list[list[str]]:
    return [normalize(t).split() or ["_"] for t in texts]


def _load(path: Path, max_docs: int | None) -> tuple[list[int], list[str], list[str | None]]:
    if not path.is_file():
        raise DataError(f"corpus {str(path)!r} not found", "give a .tsv/.csv/.jsonl with a text column, or a .txt")
    lines: list[int] = []
    texts: list[str] = []
    labels: list[str | None] = []
    from lmcritic.datasets import read_lines, read_rows, skip_row

    if path.suffix.lower() == ".txt":
        for i, raw in read_lines(path):
            lines.append(i)
            texts.append(raw.strip())
            labels.append(None)
    else:
        for i, row in read_rows(path, required=(), labelled=True):
            text = row.get("text") or row.get("sentence")
            if not text:
                skip_row(path, i, "no 'text' or 'sentence' column (name the text column 'text')")
                continue
            label = row.get("label")
            lines.append(i)
            texts.append(str(text).strip())
            labels.append(None if label in (None, "") else str(label).strip())
            if max_docs and len(texts) >= max_docs:
                break
    if not texts:
        raise DataError(f"corpus {path} has no text", "give a non-empty file")
    return lines, texts, labels


def label_name(label: str | None, names: Sequence[str] = ("negative", "positive")) -> str | None:
    """0/1 corpus labels as the probe's label names (SST-2 convention), others unchanged."""
    if label is None:
        return None
    return names[int(label)] if label.isdigit() and int(label) < len(names) else label


def class_table(values: Sequence[str], classes: Sequence[str], heads: Sequence[str] | None) -> dict[str, str]:
    """Corpus label value → class of the evaluated task: the class itself (any case, or a prefix only it has: a
    pos/neg file read as positive/negative, not as other labels the model "contradicts"); an integer → the classifier
    head's label of that id (Hugging Face's convention) and its class; on a sentiment task without a head, 0/1 →
    negative/positive. A 0/1 training file of a topic classifier read as sentiment had every training label
    contradicted by its own clean model: a confident label-noise cause on a clean model."""
    from lmcritic.probes._label_map import class_index

    low = {str(c).lower(): str(c) for c in classes}
    out = {}
    for v in values:
        named = class_index(v, classes) if not v.isdigit() else None  # any case, or the one class it begins: neg
        if named is not None:
            out[v] = str(classes[named])
        elif v.isdigit() and heads and int(v) < len(heads):
            out[v] = _head_class(heads, int(v), classes)
        elif v.isdigit() and set(low) == {"negative", "positive"}:
            out[v] = label_name(v) or v
    return out


def _head_class(heads: Sequence[str], i: int, classes: Sequence[str]) -> str:
    """The class of head label ``i`` as the probes map it (same name, a unique prefix such as ``NEG``, ``LABEL_i``)."""
    from lmcritic.probes._label_map import head_class

    j = head_class(str(heads[i]), heads, classes)
    return str(classes[j]) if j is not None else str(heads[i])


def log_odds(odds: float) -> float:
    return math.log(odds) if odds > 0 and math.isfinite(odds) else (math.inf if odds > 0 else -math.inf)
