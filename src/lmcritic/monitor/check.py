"""``lmcritic monitor check``: per-window metrics with CIs, drift against a reference, alert rules.

The store is read once, in time order, window by window. The reference is the first window(s)
(``first``, ``first:K``), the window before each one (``previous``), a time range (``range:START..END``, ISO 8601
or Unix seconds) or a pre-deployment run's inputs and outputs (``run:RUN``), scored by the same scorers.
Each later window gets a drift test per metric plus the tests its rules ask for, all Benjamini–Hochberg
adjusted together; rules that fire become alerts carrying the request ids behind them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from lmcritic.errors import ConfigError
from lmcritic.monitor import alerts as al
from lmcritic.monitor import sequential as seq
from lmcritic.monitor.metrics import METRICS, MetricDef, parse_window, scalar_metrics
from lmcritic.monitor.schema import RowError, parse_timestamp
from lmcritic.monitor.sequential import Cusum
from lmcritic.monitor.windows import Acc, WindowAcc, stream_windows
from lmcritic.store.monitor import MonitorStore


@dataclass(frozen=True)
class CheckConfig:
    window: str = "1d"
    reference: str = "first"
    embedding: bool = True  # MiniLM embeddings of sampled prompts for MMD drift (needs torch)
    embed_sample: int = 256  # texts per window (and reference) embedded, chosen by hash
    n_perm: int = 2000
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class Summary:
    metric: str
    group: str | None
    kind: str
    n: int
    value: float
    ci_low: float
    ci_high: float
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowResult:
    index: int
    start: float
    end: float
    n: int
    is_reference: bool
    summaries: tuple[Summary, ...]
    tests: tuple[al.TestResult, ...] = ()
    alerts: tuple[al.Alert, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    window: str
    reference: str
    scorer: str
    rules: tuple[al.Rule, ...]
    windows: tuple[WindowResult, ...]
    notes: tuple[str, ...] = ()

    @property
    def alerts(self) -> list[al.Alert]:
        return [a for w in self.windows for a in w.alerts]


Embedder = Callable[[Sequence[int], str], np.ndarray]


class Checker:
    """Construct with the store, score set, settings and rules; :meth:`run` gives the :class:`CheckResult`."""

    def __init__(self, store: MonitorStore, scorer: str, config: CheckConfig, rules: Sequence[al.Rule],
                 embedder: Embedder | None = None, reference: WindowAcc | None = None) -> None:
        self.store, self.scorer, self.config, self.rules = store, scorer, config, tuple(rules)
        self.spec = parse_window(config.window)
        self.metrics = scalar_metrics()
        self.groups: dict[str, list[str]] = {}
        for r in self.rules:
            if r.by:
                self.groups.setdefault(r.metric, []).append(r.by)
        self.embedder = embedder if config.embedding else None
        self.notes: list[str] = []
        self._given_reference = reference
        self.sequences = {r.metric for r in self.rules if r.test == "cusum"}
        self.charts: dict[tuple[al.Rule, str | None], Cusum | None] = {}

    def run(self) -> CheckResult:
        mode, arg = _reference_mode(self.config.reference)
        ref = self._given_reference or (self._range_reference(arg) if mode == "range" else None)
        if mode == "run" and ref is None:
            raise ConfigError("reference run:RUN needs the run's texts scored", "use monitor.check_store()")
        if mode == "previous" and self.sequences:  # a chart needs one in-control level to be calibrated on
            self.rules = tuple(replace(r, test="change") if r.test == "cusum" else r for r in self.rules)
            self.sequences = set()
            self.notes.append("cusum rules ran as window change tests: a sequential test needs a fixed reference "
                              "(first:K, range:, run:), not 'previous'")
        first_k = int(arg) if mode == "first" else 0
        results, previous = [], None
        for win in self._windows():
            in_range = mode == "range" and arg[0] <= win.start and win.end <= arg[1]
            if mode == "first" and win.seq < first_k:
                ref = _absorb(ref, win)
                results.append(self._summarize(win, True))
                continue
            base = previous if mode == "previous" else ref
            results.append(self._evaluate(win, base) if base is not None and not in_range else
                           self._summarize(win, True))
            previous = win
        if not results:
            self.notes.append("no scored requests in the period: run `lmcritic monitor score` first")
        return CheckResult(self.spec.label, self.config.reference, self.scorer, self.rules, tuple(results),
                           tuple(self.notes))

    # -- windows ---------------------------------------------------------------------------------------
    def _windows(self) -> Iterator[WindowAcc]:
        rows = self.store.iter_scored(self.scorer, self.config.start, self.config.end)
        return stream_windows(rows, self.spec, self.metrics, self.groups, self.sequences)

    def _range_reference(self, span: tuple[float, float]) -> WindowAcc:
        ref = WindowAcc(-1, span[0], span[1])
        for chunk in self.store.iter_scored(self.scorer, span[0], span[1]):
            for rid, _, scores, attrs in chunk:
                ref.add(rid, scores, attrs, self.metrics, self.groups)
        if not ref.n:
            raise ConfigError(f"no scored requests in the reference range {self.config.reference}",
                              "pick a range that has traffic, or use --reference first")
        return ref

    def _summarize(self, win: WindowAcc, is_reference: bool, tests: Sequence[al.TestResult] = (),
                   alerts: Sequence[al.Alert] = ()) -> WindowResult:
        sums = tuple(_summary(name, group, acc) for (name, group), acc in sorted(win.accs.items(), key=_order))
        return WindowResult(win.index, win.start, win.end, win.n, is_reference, sums, tuple(tests), tuple(alerts))

    # -- tests -----------------------------------------------------------------------------------------
    def _evaluate(self, win: WindowAcc, ref: WindowAcc) -> WindowResult:
        tests: dict[tuple, al.TestResult] = {}
        for m in self.metrics:
            cur, base = win.accs.get((m.name, None)), ref.accs.get((m.name, None))
            if cur is not None and base is not None and cur.n and base.n:
                t = al.drift_test(m, None, cur, base)
                tests[t.key] = t
        witness: dict[str, tuple[list[int], np.ndarray]] = {}
        for rule in self.rules:
            for t in self._rule_tests(rule, win, ref, witness):
                tests.setdefault(t.key, t)
        adjusted = {t.key: t for t in al.adjust(list(tests.values()))}
        fired = [(rule, t) for rule in self.rules for t in adjusted.values() if _matches(rule, t) and al.fires(rule, t)]
        alerts = [self._alert(rule, win, ref, t, witness) for rule, t in fired]
        alerts = [self._when(a, rule, win, list(adjusted.values())) for a, (rule, _) in zip(alerts, fired)]
        for rule, t in fired:
            chart = self.charts.get((rule, t.group)) if rule.test == "cusum" else None
            if chart is not None:
                chart.restart()  # a new alert on this rule needs new evidence
        return self._summarize(win, False, list(adjusted.values()), alerts)

    def _when(self, alert: al.Alert, rule: al.Rule, win: WindowAcc, tests: Sequence[al.TestResult]) -> al.Alert:
        """A sequential alert's request: the first whose running p-value is under the window's BH cut-off (the
        largest p-value the adjustment still lets through at the rule's significance)."""
        chart = self.charts.get((rule, alert.group)) if rule.test == "cusum" else None
        ids = win.series_ids.get((alert.metric, alert.group))
        if chart is None or ids is None or len(chart.running) != len(ids):
            return alert
        cutoff = max(t.p for t in tests if t.p_adj < rule.significance)
        i = seq.first_below(chart.running, cutoff)
        if i is None:
            return alert
        rid = int(ids[i])
        where = f"; evidence sufficient at request #{rid}, value {i + 1} of the window's {len(ids)}"
        return replace(alert, at_request=rid, message=alert.message[:-1] + where + ")")

    def _rule_tests(self, rule: al.Rule, win: WindowAcc, ref: WindowAcc,
                    witness: dict[str, tuple[list[int], np.ndarray]]) -> list[al.TestResult]:
        m = METRICS.get(rule.metric)
        if m.kind == "embedding":
            t = self._embedding_test(m, win, ref, witness)
            return [t] if t is not None else []
        out = []
        for group in (win.groups(m.name) if rule.by else [None]):
            if group is not None and not group.startswith(f"{rule.by}="):
                continue
            cur, base = win.accs.get((m.name, group)), ref.accs.get((m.name, group))
            if cur is None or not cur.n:
                continue
            if rule.test == "level":
                out.append(al.level_test(m, group, cur, rule))
            elif rule.test == "cusum":
                t = self._cusum_test(rule, m, group, win, ref)
                out += [t] if t is not None else []
            elif base is not None and base.n:
                out.append(al.change_test(m, group, cur, base) if rule.test == "change" else
                           al.drift_test(m, group, cur, base))
        return out

    def _cusum_test(self, rule: al.Rule, m: MetricDef, group: str | None, win: WindowAcc,
                    ref: WindowAcc) -> al.TestResult | None:
        """Feed the window's values, in order, to the rule's charts (made on first use from the reference)."""
        key = (rule, group)
        if key not in self.charts:
            base = ref.accs.get((m.name, group))
            d = None if base is None or not base.n else seq.design(
                m.kind, rule.threshold, rule.direction, k=base.k, n=base.n, sample=base.values())
            self.charts[key] = None if d is None else Cusum(d, seq.seed_of(rule, group))
            if d is None:
                self.notes.append(f"{rule.label}{f' [{group}]' if group else ''}: no CUSUM (no reference "
                                  f"values, or no shift of {rule.threshold} possible from the reference)")
        chart, cur = self.charts[key], win.accs.get((m.name, group))
        if chart is None or cur is None:
            return None
        p, effect = chart.update(win.series.get((m.name, group), []))
        return al.TestResult(m.name, group, "cusum", "cusum", _value(cur), chart.design.reference, effect,
                             "delta", p, cur.n, ref.accs[(m.name, group)].n, threshold=rule.threshold)

    def _embedding_test(self, m: MetricDef, win: WindowAcc, ref: WindowAcc,
                        witness: dict[str, tuple[list[int], np.ndarray]]) -> al.TestResult | None:
        if self.embedder is None:
            return None
        from lmcritic.monitor.drift import mmd_test

        k = self.config.embed_sample
        cur_ids, ref_ids = win.texts.items()[:k], ref.texts.items()[:k]
        x, y = self.embedder(ref_ids, m.source), self.embedder(cur_ids, m.source)
        if len(x) < 2 or len(y) < 2:
            return None
        mmd2, p, wit = mmd_test(x, y, self.config.n_perm, seed=win.index & 0xFFFF)
        witness[m.name] = (list(cur_ids), wit)
        return al.TestResult(m.name, None, "drift", "mmd", None, None, mmd2, "mmd2", p, win.n, ref.n)

    def _alert(self, rule: al.Rule, win: WindowAcc, ref: WindowAcc, t: al.TestResult,
               witness: dict[str, tuple[list[int], np.ndarray]]) -> al.Alert:
        evidence = _evidence(METRICS.get(rule.metric), win.accs.get((t.metric, t.group)),
                             ref.accs.get((t.metric, t.group)), rule, witness)
        where = f" [{t.group}]" if t.group else ""
        ref_text = f" vs reference {_fmt(t.reference)}" if t.reference is not None else ""
        msg = (f"{rule.label}{where}: {t.effect_name} {_fmt(t.effect)} (window value {_fmt(t.value)}{ref_text}; "
               f"{t.method} p={t.p:.3g}, BH {t.p_adj:.3g}, n={t.n})")
        return al.Alert(rule.label, t.metric, t.group, win.index, win.start, win.end, t, rule.severity, msg,
                        tuple(evidence))


def _matches(rule: al.Rule, t: al.TestResult) -> bool:
    if t.metric != rule.metric or t.test != rule.test:
        return False
    if rule.test in ("level", "cusum") and t.threshold != rule.threshold:
        return False
    return (t.group is None) if not rule.by else bool(t.group and t.group.startswith(f"{rule.by}="))


def _evidence(m: MetricDef, cur: Acc | None, ref: Acc | None, rule: al.Rule,
              witness: dict[str, tuple[list[int], np.ndarray]]) -> list[int]:
    if m.kind == "embedding":
        ids, wit = witness.get(m.name, ([], np.zeros(0)))
        return [ids[i] for i in np.argsort(-wit)[:20]]
    if cur is None:
        return []
    if m.kind == "category":
        base = ref.counts if ref else {}
        share = {k: v / max(1, cur.n) - base.get(k, 0) / max(1, ref.n if ref else 1) for k, v in cur.counts.items()}
        return [rid for k in sorted(share, key=lambda k: -share[k])[:4] if k in cur.by_label
                for rid in cur.by_label[k].items()]
    down = rule.direction == "down" or (ref is not None and rule.test == "drift" and cur.mean < ref.mean)
    if m.kind == "rate" and not down:
        return cur.flagged.items()
    return (cur.low if down else cur.high).items()


def _value(acc: Acc) -> float:
    value, _, _ = acc.estimate()
    return value


def _summary(name: str, group: str | None, acc: Acc) -> Summary:
    value, lo, hi = acc.estimate()
    counts = dict(acc.counts.most_common(12)) if acc.kind == "category" else {}
    return Summary(name, group, acc.kind, acc.n, value, lo, hi, counts)


def _order(item: tuple[tuple[str, str | None], Acc]) -> tuple:
    (name, group), _ = item
    return (list(METRICS.names()).index(name) if name in METRICS else 999, group or "")


def _absorb(ref: WindowAcc | None, win: WindowAcc) -> WindowAcc:
    """Pool a reference window into the reference (its accumulators are reused: the window is not tested)."""
    if ref is None:
        return win
    merged = WindowAcc(-1, ref.start, win.end)
    merged.n = ref.n + win.n
    merged.accs = {**ref.accs}
    for key, acc in win.accs.items():
        merged.accs[key] = _merge(merged.accs[key], acc) if key in merged.accs else acc
    for text_key, rid in win.texts.keyed():
        ref.texts.add(text_key, rid)
    merged.texts = ref.texts
    return merged


def _merge(a: Acc, b: Acc) -> Acc:
    out = Acc(a.kind, a.n + b.n, a.k + b.k, a.total + b.total, a.total_sq + b.total_sq, a.counts + b.counts)
    for src in (a, b):
        for name in ("sample", "flagged", "high", "low"):
            for key, item in getattr(src, name).keyed():
                getattr(out, name).add(key, item)
    return out


def _reference_mode(text: str) -> tuple[str, Any]:
    t = text.strip()
    if t in ("first", "previous"):
        return t, 1 if t == "first" else None
    kind, _, arg = t.partition(":")
    if kind == "first" and arg.isdigit() and int(arg) > 0:
        return "first", int(arg)
    if kind == "run" and arg:
        return "run", arg
    if kind == "range" and ".." in arg:
        a, _, b = arg.partition("..")
        try:
            return "range", (parse_timestamp(a), parse_timestamp(b))
        except RowError as err:
            raise ConfigError(f"bad reference range {arg!r}: {err}") from None
    raise ConfigError(f"bad reference {text!r}", "use first, first:K, previous, range:START..END or run:RUN")


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.4g}"


__all__ = ["CheckConfig", "CheckResult", "Checker", "Summary", "WindowResult"]
