"""Defects: failing cases of a run grouped into clusters that share a probe, a task and a slice.

Per probe, slice discovery (:mod:`slices`) finds where failure is significantly higher than elsewhere;
each significant slice that is not mostly the same failures as a stronger one becomes a defect, and the
probe's remaining failures form one more ("elsewhere") when there are enough of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lmcritic import stats
from lmcritic.diagnose.features import FeatureTable
from lmcritic.diagnose.slices import SliceSearch, SliceStats
from lmcritic.probes.base import Estimate, Record


@dataclass(frozen=True)
class Defect:
    """A cluster of failures: where (probe, task, slice), which cases, and how often the slice fails."""

    id: str
    probe: str
    task: str
    slice: str  # "f=v & g=w", "all cases", or "elsewhere in <probe>"
    predicates: tuple[tuple[str, str], ...]
    case_ids: tuple[str, ...]  # the failing cases
    slice_case_ids: tuple[str, ...]  # every case of the slice (failing and passing)
    failure_rate: Estimate
    slice_stats: SliceStats | None = None

    @property
    def n_failures(self) -> int:
        return len(self.case_ids)


def task_of(probe_key: str, records: Sequence[Record]) -> str:
    """The task a probe's cases pose: a ``task`` tag when the probe stored one, else the probe's name."""
    tasks = {str(r.tags["task"]) for r in records if "task" in r.tags}
    return ", ".join(sorted(tasks)) if tasks else probe_key


def find_defects(probe_key: str, records: Sequence[Record], table: FeatureTable, search: SliceSearch,
                 max_defects: int = 3, min_failures: int = 3, start: int = 1) -> tuple[list[Defect], list[SliceStats]]:
    """The probe's defects (largest first) and the top slices found on the way."""
    err = np.array([r.passed is False for r in records])
    ids = np.array([r.case_id for r in records])
    if err.sum() < min_failures:
        return [], []
    task = task_of(probe_key, records)
    top = search.run(table, err)
    chosen: list[tuple[SliceStats, np.ndarray]] = []
    covered = np.zeros(len(err), dtype=bool)
    for s in (s for s in top if s.significant):
        mask = _mask(table, s.predicates)
        fails = mask & err
        if (fails & covered).sum() > 0.5 * fails.sum() or fails.sum() < min_failures:
            continue
        chosen.append((s, mask))
        covered |= fails
        if len(chosen) == max_defects - 1:
            break
    defects = [_defect(probe_key, task, s.label, s.predicates, mask, err, ids, s) for s, mask in chosen]
    rest = err & ~covered
    if rest.sum() >= min_failures:
        label = "all cases" if not chosen else f"elsewhere in {probe_key}"
        defects.append(_defect(probe_key, task, label, (), ~covered if chosen else np.ones_like(err), err, ids))
    defects.sort(key=lambda d: -d.n_failures)
    return [_renumber(d, start + i) for i, d in enumerate(defects)], top


def _defect(probe: str, task: str, label: str, preds: tuple, mask: np.ndarray, err: np.ndarray, ids: np.ndarray,
            s: SliceStats | None = None) -> Defect:
    fails = mask & err
    return Defect("", probe, task, label, tuple(preds), tuple(ids[fails].tolist()), tuple(ids[mask].tolist()),
                  stats.proportion(err[mask].tolist()), s)


def _renumber(d: Defect, i: int) -> Defect:
    from dataclasses import replace

    return replace(d, id=f"D{i}")


def _mask(table: FeatureTable, predicates: Sequence[tuple[str, str]]) -> np.ndarray:
    mask = np.ones(len(table.case_ids), dtype=bool)
    for f, v in predicates:
        mask &= np.asarray(table.columns[f]) == v
    return mask
