"""Alert rules (YAML) and the per-window tests behind them.

A rule names a metric, a test and what would matter::

    rules:
      - {metric: response.pii, test: change, threshold: 0.01, min_n: 200, significance: 0.01}
      - {metric: prompt.injection, test: level, threshold: 0.05}
      - {metric: prompt.embedding, test: drift, threshold: 0.0}
      - {metric: feedback.negative, test: change, threshold: 0.1, by: topic}

* ``level``: the window's rate/mean is above ``threshold`` (one-sided exact binomial / t-test);
* ``change``: it moved from the reference by more than ``threshold`` in ``direction`` (up, down, both), and the
  two-sample test (two proportions / Welch) says the move is real;
* ``drift``: the distribution moved (KS, χ², MMD permutation test) and its size (PSI, MMD²) exceeds ``threshold``;
* ``cusum``: a sequential test on the requests one by one (:mod:`lmcritic.monitor.sequential`): CUSUM charts
  tuned to shifts of ``threshold`` and larger in ``direction``, carried across windows, with the window's
  p-value calibrated on the reference; it catches a change from its onset, where a window test waits for a
  fully changed window. Needs a fixed reference (not ``previous``). Its alerts also name the request by which
  the window's evidence sufficed (``at_request``).

A rule fires when the window has at least ``min_n`` requests with the metric, the effect passes the threshold and
the p-value, Benjamini–Hochberg adjusted over every test of the window, is under ``significance``. ``by`` runs the
rule per group (a metadata key, ``model`` or ``version``); each group is one more test in the family.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from lmcritic.errors import ConfigError
from lmcritic.monitor import drift
from lmcritic.monitor.metrics import METRICS, MetricDef
from lmcritic.monitor.windows import Acc

TESTS = ("level", "change", "drift", "cusum")
DIRECTIONS = ("up", "down", "both")


@dataclass(frozen=True)
class Rule:
    metric: str
    test: str = "change"
    threshold: float = 0.0
    direction: str = "up"
    min_n: int = 100
    significance: float = 0.01
    by: str | None = None
    name: str | None = None
    severity: str = "high"

    def __post_init__(self) -> None:
        kind = METRICS.get(self.metric).kind
        if self.test not in TESTS:
            raise ConfigError(f"alert rule on {self.metric}: unknown test {self.test!r}", f"one of {TESTS}")
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"alert rule on {self.metric}: unknown direction {self.direction!r}",
                              f"one of {DIRECTIONS}")
        if kind in ("category", "embedding") and self.test != "drift":
            raise ConfigError(f"alert rule on {self.metric}: a {kind} metric takes test: drift only")
        if self.test == "cusum" and not self.threshold > 0:
            raise ConfigError(f"alert rule on {self.metric}: test: cusum needs threshold > 0",
                              "set threshold to the smallest shift worth detecting")
        if not 0 < self.significance < 1 or self.min_n < 1:
            raise ConfigError(f"alert rule on {self.metric}: significance must be in (0, 1) and min_n >= 1")

    @property
    def label(self) -> str:
        return self.name or f"{self.metric} {self.test}" + (f" by {self.by}" if self.by else "")


@dataclass(frozen=True)
class TestResult:
    """One test of a window against the reference (or a level): sizes, p-value and its BH adjustment."""

    metric: str
    group: str | None
    test: str  # drift | change | level
    method: str  # two_proportions | welch | ks | chi2 | mmd | binomial | t
    value: float | None
    reference: float | None
    effect: float
    effect_name: str  # psi | delta | mmd2 | excess
    p: float
    n: int
    n_reference: int
    p_adj: float = math.nan
    threshold: float | None = None

    @property
    def key(self) -> tuple[str, str | None, str, float | None]:
        return (self.metric, self.group, self.test, self.threshold if self.test in ("level", "cusum") else None)


@dataclass(frozen=True)
class Alert:
    rule: str
    metric: str
    group: str | None
    window: int
    start: float
    end: float
    test: TestResult
    severity: str
    message: str
    evidence: tuple[int, ...] = field(default_factory=tuple)
    # sequential rules: the request (id) by which the window's evidence already sufficed for this alert; the
    # alert itself is raised when the window is checked
    at_request: int | None = None


def load_rules(path: str | Path | None) -> tuple[Rule, ...]:
    """Rules from a YAML file (``rules:`` list, or a bare list); None: the packaged defaults."""
    import yaml

    from lmcritic.datasets import packaged

    p = Path(path) if path else packaged("monitor/alerts.yaml")
    if not p.is_file():
        raise ConfigError(f"alert rules file {str(p)!r} not found", "check --rules")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML ({str(err).splitlines()[0]})") from None
    items = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConfigError(f"{p}: expected a list of rules under 'rules:'")
    return tuple(_rule(item, p, i) for i, item in enumerate(items))


def _rule(item: object, path: Path, i: int) -> Rule:
    from lmcritic.probes.base import build_config

    if not isinstance(item, dict):
        raise ConfigError(f"{path}: rule {i + 1} is not a mapping")
    return build_config(Rule, item, f"{path}: rule {i + 1}")


# -- tests -------------------------------------------------------------------------------------------------
def drift_test(m: MetricDef, group: str | None, cur: Acc, ref: Acc) -> TestResult:
    """Distribution drift of one scalar metric: rate → two proportions, mean → KS, category → χ²; PSI size."""
    if m.kind == "rate":
        p = drift.two_proportions(ref.k, ref.n, cur.k, cur.n)
        size = drift.psi_counts([ref.n - ref.k, ref.k], [cur.n - cur.k, cur.k])
        return TestResult(m.name, group, "drift", "two_proportions", _v(cur), _v(ref), size, "psi", p, cur.n, ref.n)
    if m.kind == "category":
        size, p = drift.categories(ref.counts, cur.counts)
        return TestResult(m.name, group, "drift", "chi2", None, None, size, "psi", p, cur.n, ref.n)
    _, p = drift.ks(ref.values(), cur.values())
    size = drift.psi(ref.values(), cur.values())
    return TestResult(m.name, group, "drift", "ks", _v(cur), _v(ref), size, "psi", p, cur.n, ref.n)


def change_test(m: MetricDef, group: str | None, cur: Acc, ref: Acc) -> TestResult:
    if m.kind == "rate":
        p = drift.two_proportions(ref.k, ref.n, cur.k, cur.n)
        method = "two_proportions"
    else:
        p = drift.welch(ref.n, ref.mean, ref.var, cur.n, cur.mean, cur.var)
        method = "welch"
    delta = _v(cur) - _v(ref) if cur.n and ref.n else 0.0
    return TestResult(m.name, group, "change", method, _v(cur), _v(ref), delta, "delta", p, cur.n, ref.n)


def level_test(m: MetricDef, group: str | None, cur: Acc, rule: Rule) -> TestResult:
    if m.kind == "rate":
        p, method = drift.rate_above(cur.k, cur.n, rule.threshold), "binomial"
    else:
        p, method = drift.mean_above(cur.n, cur.mean, cur.var, rule.threshold), "t"
    excess = _v(cur) - rule.threshold if cur.n else 0.0
    return TestResult(m.name, group, "level", method, _v(cur), None, excess, "excess", p, cur.n, 0,
                      threshold=rule.threshold)


def fires(rule: Rule, t: TestResult) -> bool:
    """Whether a BH-adjusted test result trips the rule."""
    if t.n < rule.min_n or not (t.p_adj < rule.significance):
        return False
    if rule.test == "level":
        return t.effect > 0
    if rule.test == "drift":
        return t.effect > rule.threshold
    if rule.test == "cusum":  # the charts carry the threshold (shifts under half of it drift them down)
        return {"up": t.effect > 0, "down": t.effect < 0}.get(rule.direction, t.effect != 0)
    if rule.direction == "up":
        return t.effect > rule.threshold
    if rule.direction == "down":
        return t.effect < -rule.threshold
    return abs(t.effect) > rule.threshold


def adjust(tests: Sequence[TestResult]) -> list[TestResult]:
    """Benjamini–Hochberg over every test of one window."""
    from lmcritic.stats import benjamini_hochberg

    adjusted = benjamini_hochberg([t.p for t in tests]) if tests else []
    return [replace(t, p_adj=float(a)) for t, a in zip(tests, adjusted)]


def _v(acc: Acc) -> float:
    value, _, _ = acc.estimate()
    return value


__all__ = ["Alert", "Rule", "TestResult", "adjust", "change_test", "drift_test", "fires", "level_test", "load_rules"]
