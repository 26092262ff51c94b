"""What a run could not use, as findings: rows of the data that were skipped (``data_quality``) and cases
the model or the probe failed on (``case_errors``). Both say how many of how many, with a Wilson CI, and
list where (file:line, case id) and why, so a partial result is visibly partial in every report."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from lmcritic.datasets import DataIssues
from lmcritic.findings import make_finding
from lmcritic.probes.base import Finding

MAX_LISTED = 50  # locations listed in a finding's details (the count covers all)


@dataclass(frozen=True)
class CaseError:
    """A case that could not be scored even on its own, and the one-line reason."""

    case_id: str
    reason: str


def data_quality_finding(probe: str, issues: DataIssues) -> Finding | None:
    """The rows a probe's readers skipped, or None when every row was usable."""
    skipped = issues.issues
    if not skipped:
        return None
    n = max(issues.n_rows, len(skipped))
    est = _share(len(skipped), n)
    reasons = Counter(_kind(i.reason) for i in skipped)
    summary = (f"skipped {len(skipped)} of {n} data rows ({_reasons(reasons)}); first: {skipped[0]}; "
               "the probe used the rest")
    return make_finding(probe, "data_quality", failed=True, effect=est.value, scale="unusable", summary=summary,
                        estimate=est, details={"skipped": [{"path": i.path, "line": i.line, "reason": i.reason}
                                                           for i in skipped[:MAX_LISTED]],
                                               "reasons": dict(reasons), "n_rows": n})


def case_errors_finding(probe: str, errors: Sequence[CaseError], n_cases: int) -> Finding:
    """The cases that failed; the probe's other findings cover only the cases that were scored."""
    est = _share(len(errors), max(n_cases, len(errors)))
    reasons = Counter(e.reason for e in errors)
    top, count = reasons.most_common(1)[0]
    summary = (f"{len(errors)} of {est.n} cases could not be scored (most common, {count}x: {top}); the other "
               "findings cover the cases that were; `lmcritic run --resume RUN` retries them")
    return make_finding(probe, "case_errors", failed=True, effect=est.value, scale="unusable", summary=summary,
                        estimate=est, evidence=tuple(e.case_id for e in errors[:10]),
                        details={"errors": [{"case": e.case_id, "reason": e.reason} for e in errors[:MAX_LISTED]],
                                 "reasons": dict(reasons.most_common(10))})


def _share(k: int, n: int):
    from lmcritic import stats

    return stats.proportion([True] * k + [False] * (n - k))


def _kind(reason: str) -> str:
    """A reason without its numbers and details, to count alike reasons together."""
    return re.sub(r"\d[\d,]*", "N", reason.split(" (")[0])


def _reasons(counts: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.most_common(4))
