"""Statistical assertions on critique results, for pytest (plugin: :mod:`lmcritic.testing.plugin`) or any runner.

``assert_finding(results, "performance.sst2:accuracy", ge=0.8, alpha=0.05)`` passes only when the data
support the claim: it is the one-sided test of H0 "accuracy < 0.8" at level ``alpha``, which rejects H0
(the assertion passes) when the one-sided (1 − alpha) lower confidence bound of the stored estimate is at
least 0.8. That bound is the lower end of the two-sided (1 − 2·alpha) interval: recomputed exactly from
k and n for a Wilson proportion, else the stored 95% interval's lower half-width rescaled by
z(1 − alpha) / z(0.975) (see :func:`lmcritic.stats.interval_at`). ``le=`` tests the upper bound the same way.
At alpha = 0.025 the bound is exactly the stored 95% interval's end. An estimate of 0.85 from 20 cases
does not pass ``ge=0.8``; from 2,000 it does.

``assert_not_worse(results, pin)`` is the regression test ``lmcritic export-tests`` writes: it fails only
when the new estimate is significantly worse than the pinned one (a one-sided test at ``alpha`` of
"new − pinned ≥ −tolerance", by the MOVER interval of the difference of two independent estimates; both
directions at ``alpha`` when the metric's direction is unknown). It ignores the pairing of cases shared
by the two runs, so it is conservative; ``lmcritic gate`` gives the paired test when both runs are in one
store. A finding that is missing (its probe failed or was skipped) fails both assertions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lmcritic.errors import ConfigError, LmcriticError

if TYPE_CHECKING:
    from lmcritic.probes.base import Estimate, Finding
    from lmcritic.results import Results


class CritiqueAssertionError(AssertionError):
    """An assertion on critique results that the data do not support; the message gives the numbers."""


@dataclass(frozen=True)
class Check:
    """The outcome of a check: ``passed`` and a one-line ``message`` with the figures behind it."""

    passed: bool
    message: str


@dataclass(frozen=True)
class Pin:
    """A finding as it was in a baseline run (what ``lmcritic export-tests`` writes into a test file).

    ``higher_is_better`` None: the metric's direction is unknown, so a significant change either way fails.
    Without ``value`` (the finding had no estimate) only its verdict is pinned: it must not turn into a fail.
    """

    key: str
    value: float | None = None
    n: int | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    method: str = "bootstrap"
    confidence: float = 0.95
    higher_is_better: bool | None = None
    verdict: str = "pass"
    tolerance: float = 0.0

    @property
    def estimate(self) -> "Estimate | None":
        from lmcritic.probes.base import Estimate

        if self.value is None or self.n is None or self.ci_low is None or self.ci_high is None:
            return None
        return Estimate(self.value, self.n, self.ci_low, self.ci_high, self.method, self.confidence)


def check_finding(results: "Results | str", key: str, *, ge: float | None = None, le: float | None = None,
                  alpha: float = 0.05, verdict: str | None = None) -> Check:
    """Whether finding ``key`` (``PROBE:NAME``) is ≥ ``ge`` and/or ≤ ``le`` at level ``alpha`` (one-sided
    confidence bounds, see the module docstring), and has ``verdict`` when one is given."""
    _check_alpha(alpha)
    if ge is None and le is None and verdict is None:
        raise ConfigError("check_finding needs ge=, le= or verdict=")
    found = _find(results, key)
    if isinstance(found, Check):
        return found
    if verdict is not None and found.verdict.value != verdict:
        return Check(False, f"{key}: verdict {found.verdict.value} ({found.summary}), expected {verdict}")
    if ge is None and le is None:
        return Check(True, f"{key}: verdict {verdict}")
    return _bounds_check(key, found.estimate, ge, le, alpha)


def assert_finding(results: "Results | str", key: str, *, ge: float | None = None, le: float | None = None,
                   alpha: float = 0.05, verdict: str | None = None) -> "Finding":
    """:func:`check_finding`, raising :class:`CritiqueAssertionError` when it fails; returns the finding."""
    check = check_finding(results, key, ge=ge, le=le, alpha=alpha, verdict=verdict)
    if not check.passed:
        raise CritiqueAssertionError(check.message)
    return _load(results).finding(key)


def check_not_worse(results: "Results | str", pin: Pin, *, alpha: float = 0.05) -> Check:
    """Whether the finding ``pin.key`` is not significantly worse than the pinned one (module docstring)."""
    from lmcritic.stats import difference_interval

    _check_alpha(alpha)
    found = _find(results, pin.key)
    if isinstance(found, Check):
        return found
    old, new = pin.estimate, found.estimate
    if old is None:
        worse = found.verdict.value == "fail" and pin.verdict != "fail"
        return Check(not worse, f"{pin.key}: verdict {found.verdict.value} (pinned: {pin.verdict})"
                     + (f": {found.summary}" if worse else ""))
    if not _usable(new):
        return Check(False, f"{pin.key}: no estimate to compare with the pinned {_fmt_est(old)}")
    assert new is not None
    two_sided = pin.higher_is_better is None
    low, high = difference_interval(new, old, 1 - (alpha if two_sided else 2 * alpha))
    worse = {True: high < -pin.tolerance, False: low > pin.tolerance,
             None: high < -pin.tolerance or low > pin.tolerance}[pin.higher_is_better]
    what = "changed" if two_sided else "worse"
    verdict = f"significantly {what}" if worse else f"not significantly {what}"
    return Check(not worse, f"{pin.key}: {_fmt_est(old)} pinned -> {_fmt_est(new)} now; difference "
                 f"{new.value - old.value:+.4g}, {'two' if two_sided else 'one'}-sided {1 - alpha:.0%} interval "
                 f"[{low:.4g}, {high:.4g}] (tolerance {pin.tolerance:g}): {verdict}")


def assert_not_worse(results: "Results | str", pin: Pin, *, alpha: float = 0.05) -> None:
    """:func:`check_not_worse`, raising :class:`CritiqueAssertionError` when it fails."""
    check = check_not_worse(results, pin, alpha=alpha)
    if not check.passed:
        raise CritiqueAssertionError(check.message)


# -- helpers -----------------------------------------------------------------------------------------
def _bounds_check(key: str, est: "Estimate | None", ge: float | None, le: float | None, alpha: float) -> Check:
    from lmcritic.stats import one_sided_bound

    if not _usable(est):
        return Check(False, f"{key}: the finding has no estimate with a confidence interval to test")
    assert est is not None
    parts, ok = [], True
    for side, limit, holds, sign in (("lower", ge, lambda b, x: b >= x, "≥"), ("upper", le, lambda b, x: b <= x, "≤")):
        if limit is None:
            continue
        bound = one_sided_bound(est, alpha, side)
        good = holds(bound, limit)
        ok &= good
        parts.append(f"{'supports' if good else 'does not support'} {sign} {limit:g} (one-sided {1 - alpha:.0%} "
                     f"{side} bound {bound:.4g})")
    return Check(ok, f"{key} = {_fmt_est(est)}, {est.method}: " + "; ".join(parts) + f" at alpha={alpha:g}")


def _find(results: "Results | str", key: str) -> "Finding | Check":
    """The finding, or a failed check saying it is missing (the probe failed or was skipped)."""
    res = _load(results)
    try:
        return res.finding(key)
    except LmcriticError as err:
        probe = key.partition(":")[0]
        why = next((f" ({e})" for e in res.errors + res.skipped if e.startswith(f"{probe}:")), "")
        return Check(False, f"{err}{why}")


def _load(results: "Results | str") -> "Results":
    from lmcritic.results import Results

    return results if isinstance(results, Results) else Results.load(str(results))


def _usable(est: "Estimate | None") -> bool:
    return est is not None and all(isinstance(v, (int, float)) and math.isfinite(v)
                                   for v in (est.value, est.ci_low, est.ci_high)) and est.n > 0


def _check_alpha(alpha: float) -> None:
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
        raise ConfigError(f"alpha must be in (0, 0.5), got {alpha!r}")


def _fmt_est(est: "Estimate") -> str:
    return f"{est.value:.4g} [{est.ci_low:.4g}, {est.ci_high:.4g}] (n={est.n})"


def pin_of(f: "Finding", tolerance: float = 0.0) -> Pin:
    """A pin of finding ``f`` (its estimate when finite, its direction from its details or its name)."""
    from lmcritic.report.compare import higher_is_better
    from lmcritic.results import finding_key

    direction: Any = (f.details or {}).get("higher_is_better")
    if not isinstance(direction, bool):
        direction = higher_is_better(f.name.split("/")[0].split(":")[0])
    pin = Pin(finding_key(f), higher_is_better=direction, verdict=f.verdict.value, tolerance=tolerance)
    e = f.estimate
    if e is None or not _usable(e):
        return pin
    return replace(pin, value=e.value, n=e.n, ci_low=e.ci_low, ci_high=e.ci_high, method=e.method,
                   confidence=e.confidence)


__all__ = ["Check", "CritiqueAssertionError", "Pin", "assert_finding", "assert_not_worse", "check_finding",
           "check_not_worse", "pin_of"]
