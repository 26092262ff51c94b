"""Training rows for training-time mitigations: loaded loudly, kept apart from the evaluation cases.

A :class:`TrainingSet` is the corpus a mitigation edits (adds counterfactual copies, removes shortcut tokens,
drops duplicates ...) and a trainer fits. Rows remember where they came from (``origin``: corpus, counterfactual,
typos, adversarial, ...) and their corpus line, so every change can be audited in ``train_rows.tsv``.

Honest verification needs two guarantees, both checked here: augmentation starts from training rows only, and no
row that reaches training is an evaluation case of the run (normalised text), or the re-run would measure
memorisation instead of the fix.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from lmcritic.errors import DataError

TEXT_COLUMNS = ("text", "sentence")


@dataclass(frozen=True)
class Row:
    text: str
    label: str | None  # a label name of the task (None: unlabelled text for language modelling)
    weight: float = 1.0
    origin: str = "corpus"
    line: int | None = None  # line in the corpus file (None for generated rows)
    twin: str | None = None  # a counterfactual copy: the text it was made from (the pairing loss compares them)


@dataclass(frozen=True)
class TrainingSet:
    rows: tuple[Row, ...]
    labels: tuple[str, ...]  # the task's label names ((): unlabelled)
    source: str

    def __len__(self) -> int:
        return len(self.rows)

    def with_rows(self, rows: Iterable[Row]) -> "TrainingSet":
        return replace(self, rows=tuple(rows))

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per origin and per label: what a mitigation changed, at a glance."""
        return {"origin": dict(Counter(r.origin for r in self.rows)),
                "label": dict(Counter(str(r.label) for r in self.rows))}

    def write_tsv(self, path: Path) -> Path:
        """The exact rows trained on (text, label, weight, origin, corpus line), for audit."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["text\tlabel\tweight\torigin\tline"]
        lines += [f"{_one_line(r.text)}\t{r.label or ''}\t{r.weight:.6g}\t{r.origin}\t{r.line or ''}"
                  for r in self.rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def load_training(path: str | Path, labels: Sequence[str] = ()) -> TrainingSet:
    """Rows of a .tsv/.csv/.jsonl (a text or sentence column, a label column) or a .txt (one text per line).

    Labels may be names from ``labels`` or their indices (``0``/``1`` for negative/positive). A malformed row
    is a :class:`DataError` naming file and line; nothing is silently dropped.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"training corpus {str(p)!r} not found",
                        "give --train a .tsv/.csv/.jsonl (text, label) or .txt")
    if p.suffix.lower() == ".txt":
        rows = [Row(t.strip(), None, line=i) for i, t in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                if t.strip()]
    else:
        rows = list(_labelled_rows(p, tuple(labels)))
    if not rows:
        raise DataError(f"training corpus {p} has no rows", "give a non-empty file")
    return TrainingSet(tuple(rows), tuple(labels), str(p))


def _labelled_rows(p: Path, labels: tuple[str, ...]) -> list[Row]:
    """The shared reader skips a row it cannot parse (wrong field count, not UTF-8, oversize) with a warning,
    as probe data may; a training corpus may not lose rows silently, so the first such row is an error here."""
    from lmcritic.datasets import collect_issues, read_rows

    out = []
    with collect_issues() as issues:
        for line, row in read_rows(p, required=(), labelled=True):
            text = next((row[c] for c in TEXT_COLUMNS if isinstance(row.get(c), str) and row[c].strip()), None)
            if text is None:
                raise DataError(f"{p}:{line}: no text (a non-empty 'text' or 'sentence' column)",
                                "fix the row or remove it")
            out.append(Row(text.strip(), label_of(row.get("label"), labels, f"{p}:{line}"), line=line))
    if issues.issues:
        raise DataError(f"{issues.issues[0]} ({len(issues.issues)} malformed row(s) in the training corpus)",
                        "fix the row or remove it")
    return out


def label_of(value: object, labels: Sequence[str], where: str) -> str:
    """A row's label as a label name: the name itself (any case, or the one name it begins: ``neg``), or its
    index in ``labels`` — as the probes read the evaluation rows."""
    from lmcritic.probes._label_map import class_index

    raw = str(value).strip() if value is not None else ""
    if not raw:
        raise DataError(f"{where}: no label", "each row needs a 'label' column")
    if not labels or raw in labels:
        return raw
    k = class_index(raw, labels)
    if k is not None:
        return labels[k]
    allowed = ", ".join([*map(str, range(len(labels))), *labels])
    raise DataError(f"{where}: label {raw!r} is not one of {allowed}", "fix the row or remove it")


def split_overlap(data: TrainingSet, eval_texts: set[str]) -> tuple[TrainingSet, list[Row]]:
    """(rows that are not evaluation cases, rows that are), comparing normalised text."""
    from lmcritic.diagnose.corpus import normalize

    keep: list[Row] = []
    hit: list[Row] = []
    for r in data.rows:
        (hit if normalize(r.text) in eval_texts else keep).append(r)
    return data.with_rows(keep), hit


def check_disjoint(data: TrainingSet, eval_texts: set[str], run_id: str, decontaminate: bool,
                   what: str = "the training corpus") -> tuple[TrainingSet, int]:
    """Refuse (or, with ``decontaminate``, drop) rows that are evaluation cases; returns the rows kept and how
    many were dropped."""
    kept, hit = split_overlap(data, eval_texts)
    if not hit:
        return data, 0
    if not decontaminate:
        where = ", ".join(f"line {r.line}" if r.line else repr(r.text[:40]) for r in hit[:3])
        raise DataError(f"{len(hit)} rows of {what} are evaluation cases of run {run_id} ({where}, ...); training on "
                        "them would make the re-verification measure memorisation",
                        "pass --decontaminate to drop them, or use --method dedup")
    return kept, len(hit)


def _one_line(text: str) -> str:
    return " ".join(text.split())


__all__ = ["Row", "TrainingSet", "check_disjoint", "label_of", "load_training", "split_overlap"]
