"""Streaming per-window accumulators: exact counts and moments, plus bounded, deterministic samples.

Rates and means need only counts and sums, kept exactly; the distribution tests (KS, PSI) and the drill-down
need values and request ids, kept as bounded samples chosen by a hash of the request id (the same requests
are chosen on every run, whatever the chunking). So a window of a million requests costs as much memory as
one of a few thousand, and the store is read once, in time order.
"""
from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Iterator, Mapping, Sequence

from lmcritic import stats
from lmcritic.monitor.metrics import MetricDef, WindowSpec

SAMPLE_CAP = 2000  # values kept per metric and window for KS/PSI
EVIDENCE = 20  # request ids kept per metric and window for the drill-down
NONE_GROUP = "(none)"


def id_hash(request_id: int) -> int:
    """A well-mixed 64-bit hash of a request id (splitmix64): the deterministic sampling key."""
    z = (int(request_id) + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


class BottomK:
    """The ``k`` items with the smallest keys seen so far (a bounded max-heap)."""

    def __init__(self, k: int) -> None:
        self.k, self._seen = k, 0
        self._heap: list[tuple[float, int, Any]] = []

    def add(self, key: float, item: object) -> None:
        self._seen += 1
        entry = (-key, -self._seen, item)  # ties: the earlier item stays
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, entry)
        elif -self._heap[0][0] > key:
            heapq.heapreplace(self._heap, entry)

    def items(self) -> list[Any]:
        return [e[2] for e in sorted(self._heap, key=lambda e: -e[0])]

    def keyed(self) -> list[tuple[float, Any]]:
        return [(-e[0], e[2]) for e in self._heap]


@dataclass
class Acc:
    """One metric (in one group) over one window or reference."""

    kind: str
    n: int = 0
    k: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    counts: Counter = field(default_factory=Counter)
    sample: BottomK = field(default_factory=lambda: BottomK(SAMPLE_CAP))
    flagged: BottomK = field(default_factory=lambda: BottomK(EVIDENCE))
    high: BottomK = field(default_factory=lambda: BottomK(EVIDENCE))
    low: BottomK = field(default_factory=lambda: BottomK(EVIDENCE))
    by_label: dict[str, BottomK] = field(default_factory=dict)

    def add(self, rid: int, h: int, value: Any) -> None:
        self.n += 1
        if self.kind == "category":
            self.counts[value] += 1
            if value in self.by_label or len(self.by_label) < 50:
                self.by_label.setdefault(value, BottomK(5)).add(h, rid)
            return
        x = float(value)
        self.total += x
        self.total_sq += x * x
        self.sample.add(h, x)
        if self.kind == "rate" and x > 0:
            self.k += 1
            self.flagged.add(h, rid)
        self.high.add(-x, rid)
        self.low.add(x, rid)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def var(self) -> float:
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.n * self.mean ** 2) / (self.n - 1))

    def estimate(self) -> tuple[float, float, float]:
        """(value, 95% CI low, high): Wilson for a rate, a t-interval for a mean, NaN for a category."""
        if self.kind == "rate":
            lo, hi = stats.wilson(self.k, self.n)
            return (self.k / self.n if self.n else math.nan), lo, hi
        if self.kind == "mean" and self.n:
            half = stats.Z95 * math.sqrt(self.var / self.n) if self.n > 1 else math.inf
            return self.mean, self.mean - half, self.mean + half
        return math.nan, math.nan, math.nan

    def values(self) -> list[float]:
        return self.sample.items()


@dataclass
class WindowAcc:
    """Everything one window (or the reference) accumulates."""

    index: int
    start: float
    end: float
    n: int = 0
    seq: int = 0  # position among the windows read
    accs: dict[tuple[str, str | None], Acc] = field(default_factory=dict)
    texts: BottomK = field(default_factory=lambda: BottomK(1024))  # requests sampled for embedding drift
    # values (and request ids) in arrival order of the metrics that sequential (CUSUM) rules read: 16 bytes per
    # request and series, held for one window at a time
    series: dict[tuple[str, str | None], array] = field(default_factory=dict)
    series_ids: dict[tuple[str, str | None], array] = field(default_factory=dict)

    def add(self, rid: int, scores: Mapping[str, Any], attrs: Mapping[str, Any], metrics: Sequence[MetricDef],
            groups: Mapping[str, Sequence[str]], sequences: Collection[str] = ()) -> None:
        """Feed one request: every metric overall, and in its group for each ``by`` key asked of the metric;
        the metrics in ``sequences`` also keep their values in arrival order (sequential tests read them)."""
        h = id_hash(rid)
        self.n += 1
        self.texts.add(h, rid)
        for m in metrics:
            value = m.value(scores)
            if value is None:
                continue
            keys = [None, *(f"{by}={group_of(attrs, by)}" for by in groups.get(m.name, ()))]
            for group in keys:
                self._acc(m, group).add(rid, h, value)
                if m.name in sequences:
                    self.series.setdefault((m.name, group), array("d")).append(float(value))
                    self.series_ids.setdefault((m.name, group), array("q")).append(int(rid))

    def _acc(self, m: MetricDef, group: str | None) -> Acc:
        key = (m.name, group)
        if key not in self.accs:
            self.accs[key] = Acc(m.kind)
        return self.accs[key]

    def groups(self, metric: str) -> list[str]:
        return sorted(g for (name, g) in self.accs if name == metric and g is not None)


def group_of(attrs: Mapping[str, Any], by: str) -> str:
    """The request's value of a ``by`` key (``topic`` or ``metadata.topic``; ``model``, ``version``)."""
    key = by.removeprefix("metadata.")
    value = attrs.get(key)
    return NONE_GROUP if value is None or value == "" else str(value)[:80]


def stream_windows(rows: Iterable[list[tuple[int, float, dict, dict]]], spec: WindowSpec,
                   metrics: Sequence[MetricDef], groups: Mapping[str, Sequence[str]],
                   sequences: Collection[str] = ()) -> Iterator[WindowAcc]:
    """Finished windows in time order from time-ordered (id, ts, scores, attributes) chunks."""
    current: WindowAcc | None = None
    position = seq = 0
    for chunk in rows:
        for rid, ts, scores, attrs in chunk:
            index = position // spec.count if spec.count else int(math.floor(ts / (spec.seconds or 1)))
            if current is not None and index != current.index:
                yield current
                current, seq = None, seq + 1
            if current is None:
                start = ts if spec.count else index * (spec.seconds or 1)
                current = WindowAcc(index, start, ts if spec.count else start + (spec.seconds or 1), seq=seq)
            current.add(rid, scores, attrs, metrics, groups, sequences)
            if spec.count:
                current.end = ts
            position += 1
    if current is not None:
        yield current


__all__ = ["Acc", "BottomK", "WindowAcc", "group_of", "id_hash", "stream_windows"]
