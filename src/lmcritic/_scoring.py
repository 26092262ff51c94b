"""The runner's per-probe bookkeeping: a tally of scored and failed cases (too many failures in a row stop the
probe), the data-quality findings, one-line failure reasons, and chunking of cases in a stable order."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from lmcritic._progress import Bar
from lmcritic.backends.base import Backend
from lmcritic.errors import ConfigError, LmcriticError
from lmcritic.probes.base import Case

if TYPE_CHECKING:
    from lmcritic._quality import CaseError
    from lmcritic.datasets import DataIssues
    from lmcritic.probes.base import Finding

MAX_ERRORS_IN_A_ROW = 5  # cases failing one after another with no success between: the model, not the data


@dataclass
class Tally:
    """Cases scored and failed in one probe; too many failures in a row stop the probe."""

    key: str
    errors: list[CaseError] = field(default_factory=list)
    n_scored: int = 0
    in_a_row: int = 0

    def scored(self, n: int) -> None:
        self.n_scored += n
        self.in_a_row = 0

    def error(self, case_id: str, reason: str) -> None:
        from lmcritic._quality import CaseError

        self.errors.append(CaseError(case_id, reason))
        self.in_a_row += 1
        if self.in_a_row >= MAX_ERRORS_IN_A_ROW:
            raise LmcriticError(f"{self.in_a_row} cases in a row failed, so the probe stopped; last: {reason}")

    def check_any_scored(self, before: int) -> None:
        if self.errors and self.n_scored == 0 and before == 0:
            raise LmcriticError(f"every case failed ({len(self.errors)}); first: {self.errors[0].reason}")

    def summary(self, n_cases: int) -> str:
        return f"{len(self.errors)} of {n_cases} cases failed (first: {self.errors[0].case_id}: " \
               f"{self.errors[0].reason})"


def quality_findings(key: str, issues: DataIssues, errors: list[CaseError], n_cases: int,
                      bar: Bar) -> list[Finding]:
    """The ``data_quality`` (skipped rows, also warned about) and ``case_errors`` findings, where there are any."""
    from lmcritic._quality import case_errors_finding, data_quality_finding

    out = [f for f in [data_quality_finding(key, issues)] if f is not None]
    if out:
        bar.warn(f"{key}: {out[0].summary}")
    if errors:
        out.append(case_errors_finding(key, errors, n_cases))
    return out


def failure_reason(err: BaseException, context: str) -> str:
    """The one-line reason for a failure: lmcritic's own message, or an internal error with a logged traceback."""
    if isinstance(err, LmcriticError):
        return str(err)
    from lmcritic._crashlog import internal_error

    return internal_error(err, context)


def chunks(items: Sequence[Case], size: int) -> Iterator[Sequence[Case]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def case_order(cases: Sequence[Case]) -> dict[str, int]:
    return {c.id: i for i, c in enumerate(cases)}


def check_unique(cases: Sequence[Case], key: str) -> None:
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"probe {key} produced duplicate case ids", "case ids must be unique within a probe")


def backend_stats(model: Backend) -> dict[str, Any]:
    from lmcritic._serde import to_jsonable

    return to_jsonable(getattr(model, "stats", None)) or {}
