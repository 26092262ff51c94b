"""Held-out data for fitting inference-time mitigations, scored exactly as the targeted probe scores cases.

Held-out rows come from ``--heldout`` (else ``--train``): never from the run's evaluation cases (overlapping rows
are dropped). They are written in the probe's data format and scored by the probe itself (built from the run's
stored config with ``data`` pointed at them), so a calibration or a detector threshold is fitted on the same
prompts, label words and scoring the re-verification will use.
"""
from __future__ import annotations

import random
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from lmcritic.errors import ConfigError
from lmcritic.mitigate.base import MitigationContext
from lmcritic.mitigate.data import TrainingSet, load_training, split_overlap
from lmcritic.mitigate.trainers import TaskFormat
from lmcritic.probes.base import Record

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend


def task_of(ctx: MitigationContext) -> TaskFormat:
    """Label names, prompt template and label words of the targeted probe (what training and calibration use)."""
    from lmcritic.probes import PROBES

    entry = ctx.probe_entry()
    cls = PROBES.get(entry["name"])
    cfg = entry.get("config") or {}
    words = tuple(cfg.get("label_words") or ())
    labels = cls(**cfg).labels() or cfg.get("labels") or _record_labels(ctx) or tuple(w.strip() for w in words)
    return TaskFormat(tuple(labels or ()), cfg.get("template"), words if len(words) == len(labels or ()) else ())


def _record_labels(ctx: MitigationContext) -> tuple[str, ...]:
    for r in ctx.store.records(ctx.run_id, ctx.target.probe)[:1]:
        if r.label_probs:
            return tuple(sorted(r.label_probs))
    return ()


def heldout_rows(ctx: MitigationContext, labels: Sequence[str], n: int, notes: list[str]) -> TrainingSet | None:
    """Up to ``n`` labelled rows from ``--heldout`` or ``--train`` that are not evaluation cases (seeded sample)."""
    path = ctx.heldout or ctx.train
    if path is None:
        return None
    data = load_training(path, labels)
    kept, hit = split_overlap(data, ctx.eval_texts())
    if hit:
        notes.append(f"{len(hit)} held-out rows of {path} are evaluation cases and were left out")
    rows = list(kept.rows)
    random.Random(ctx.seed).shuffle(rows)
    return kept.with_rows(rows[:n])


def probe_on_rows(ctx: MitigationContext, data: TrainingSet, model: Backend | None = None) -> list[Record]:
    """Score ``data`` with the targeted probe (its stored config, ``data`` pointed at the rows)."""
    probe = _probe_for(ctx, data)
    cases = list(probe.cases())
    model = model or ctx.model()
    return [r for i in range(0, len(cases), 64) for r in probe.score(model, cases[i : i + 64])]


def case_texts(ctx: MitigationContext, data: TrainingSet) -> list[str]:
    """The model-facing input of each held-out row as the probe renders it (its prompt, else its text)."""
    return [str(c.input.get("prompt") or c.input.get("text") or "") for c in _probe_for(ctx, data).cases()]


def _probe_for(ctx: MitigationContext, data: TrainingSet) -> Any:
    """The targeted probe built from the run's config, reading ``data`` (written in its TSV format), zero-shot."""
    from lmcritic.probes import PROBES

    entry = ctx.probe_entry()
    cls = PROBES.get(entry["name"])
    names = {f.name for f in fields(cls.Config)}
    path = ctx.out_dir / "heldout.tsv"
    if "data" not in names:
        if {"task", "overrides"} <= names:
            return _task_probe(cls, entry, data, path)
        raise ConfigError(f"{entry['name']} reads no data file, so held-out rows cannot be scored the way it scores",
                          "target a probe with a 'data' option (performance.sst2, performance.task, ...)")
    labels = list(data.labels)
    _write_rows(path, ("sentence", "label"), data, lambda label: labels.index(label))
    config = {**(entry.get("config") or {}), "data": str(path)}
    config.update({k: v for k, v in (("n", None), ("shots", 0)) if k in names})  # few-shot rows would be held-out ones
    return cls(**config)


def _task_probe(cls: Any, entry: dict[str, Any], data: TrainingSet, path: Path) -> Any:
    """``performance.task``: the rows written in the task's own columns (the one its prompt, or its ``text``, reads
    and its target column, labels as class values), the task's data pointed at them, zero-shot."""
    from lmcritic.tasks.render import prompt_columns
    from lmcritic.tasks.spec import merge

    config = dict(entry.get("config") or {})
    task = cls(**config).task
    reads = task.text or task.prompt
    columns = [reads] if reads.isidentifier() else sorted(prompt_columns(reads) - {reads})
    if task.output_type != "classification" or len(columns) != 1:
        raise ConfigError(f"task {task.name!r}: held-out rows can be scored only for a classification task whose "
                          f"prompt reads one column (it reads {columns or 'none'})",
                          "set the task's 'text' to the input column")
    # the rows carry class names, which a template target (ids -> names) would not read: a plain column then
    target = task.target if (task.target or "").isidentifier() and task.target != columns[0] else "label"
    _write_rows(path, (columns[0], str(target)), data, str)
    source = {"path": str(path.resolve()), "hf": None, "name": None, "split": None, "line_column": None,
              "source_name": None}
    over = merge(config.get("overrides") or {}, {"data": source, "fewshot": {"n": 0}, "target": target})
    return cls(**{**config, "overrides": over, "n": None})


def _write_rows(path: Path, header: tuple[str, str], data: TrainingSet, label: Callable[[str], object]) -> None:
    """The held-out rows as a two-column TSV in the probe's format: one-line text, the label as it reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\t".join(header) + "\n" + "".join(f"{' '.join(r.text.split())}\t{label(str(r.label))}\n"
                                                        for r in data.rows), encoding="utf-8")


def label_probs(record: Record, labels: Sequence[str]) -> np.ndarray | None:
    """A record's label probabilities (its typed ``label_probs``) in ``labels`` order, or None."""
    probs = record.label_probs
    if not probs or any(lab not in probs for lab in labels):
        return None
    return np.asarray([probs[lab] for lab in labels], float)


def score_matrix(records: Sequence[Record], labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(log label probabilities n×k, true label index n) of the records that carry both."""
    rows, y = [], []
    for r in records:
        p = label_probs(r, labels)
        if p is not None and r.target in labels:
            rows.append(np.log(np.maximum(p, 1e-30)))
            y.append(list(labels).index(str(r.target)))
    return np.array(rows).reshape(len(rows), len(labels)), np.array(y, dtype=int)


def fit_threshold(scores: np.ndarray, target_fpr: float, seed: int) -> tuple[float, np.ndarray]:
    """A threshold (flag when score > it) at ``target_fpr`` on a random half of clean scores; the other half's
    scores are returned to measure the false-positive rate honestly."""
    if len(scores) < 4:
        raise ConfigError(f"only {len(scores)} clean held-out inputs to set a threshold on", "give more held-out rows")
    order = np.random.default_rng(seed).permutation(len(scores))
    fit, test = scores[order[: len(order) // 2]], scores[order[len(order) // 2 :]]
    return float(np.quantile(fit, 1 - target_fpr, method="higher")), test


__all__ = ["case_texts", "fit_threshold", "heldout_rows", "label_probs", "probe_on_rows", "score_matrix", "task_of"]
