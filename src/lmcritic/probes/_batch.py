"""Score many small jobs with few backend calls: cases for the same probe from different callers, in one call.

Diagnosis asks probes about edited cases defect by defect and hypothesis by hypothesis, a few cases at a time;
each ``probe.score`` is a backend call whose batch is then a handful of rows, and on a CPU a handful of rows
costs nearly what a full batch costs. ``score_jobs`` takes every (probe, cases) job known up front, scores each
probe's cases together (one ``score`` call per probe, which the backend batches), and hands each job its own
records back in order. Records are the same as job-by-job scoring: a probe scores each case on its own (the
runner already relies on that when it scores in chunks).
"""
from __future__ import annotations

from typing import Any, Sequence

from lmcritic.probes.base import Case, Probe, Record


def score_jobs(model: Any, jobs: Sequence[tuple[Probe, Sequence[Case]]]) -> list[list[Record]]:
    """Records for each job, in job order; one ``probe.score`` call per distinct probe object."""
    by_probe: dict[int, list[int]] = {}
    for j, (probe, _) in enumerate(jobs):
        by_probe.setdefault(id(probe), []).append(j)
    out: list[list[Record]] = [[] for _ in jobs]
    for members in by_probe.values():
        probe = jobs[members[0]][0]
        cases = [c for j in members for c in jobs[j][1]]
        records = probe.score(model, cases) if cases else []
        if len(records) != len(cases):
            raise RuntimeError(f"{probe.name} returned {len(records)} records for {len(cases)} cases")
        at = 0
        for j in members:
            n = len(jobs[j][1])
            out[j] = list(records[at : at + n])
            at += n
    return out
