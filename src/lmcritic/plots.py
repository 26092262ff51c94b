"""Plot specs: what a finding asks the report to draw, as typed data that round-trips through JSON.

A finding carries its plots as ``details["plots"]``, a list made by :func:`to_details` (each entry has its
``kind``); the report reads them back with :func:`parse`, checks them and draws them (``lmcritic.report``).
One key, one schema per kind: nothing is guessed. Nothing here imports a plotting library.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

from lmcritic._serde import from_jsonable, to_jsonable
from lmcritic.probes.base import Estimate

PLOTS_KEY = "plots"  # the ``Finding.details`` key that holds a finding's plots


@dataclass(frozen=True)
class Bars:
    """One bar per label with optional 95% CI whiskers and sample sizes; ``reference`` draws a vertical line."""

    kind: ClassVar[str] = "bars"
    title: str
    labels: tuple[str, ...]
    values: tuple[float | None, ...]
    ci_low: tuple[float | None, ...] | None = None
    ci_high: tuple[float | None, ...] | None = None
    n: tuple[int | None, ...] | None = None
    x_label: str = ""
    reference: float | None = None


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin: its edges, how many cases fell in it, their mean confidence and accuracy."""

    low: float
    high: float
    count: int = 0
    confidence: float | None = None
    accuracy: float | None = None


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram (accuracy against confidence per bin)."""

    kind: ClassVar[str] = "reliability"
    title: str
    bins: tuple[ReliabilityBin, ...]


@dataclass(frozen=True)
class Series:
    name: str
    x: tuple[float, ...]
    y: tuple[float | None, ...]


@dataclass(frozen=True)
class Line:
    """One or more x/y series (ROC curves, histograms drawn as lines)."""

    kind: ClassVar[str] = "line"
    title: str
    series: tuple[Series, ...]
    x_label: str = ""
    y_label: str = ""


@dataclass(frozen=True)
class Tokens:
    """A heatmap over tokens or words (attributions, surprisal)."""

    kind: ClassVar[str] = "tokens"
    title: str
    tokens: tuple[str, ...]
    weights: tuple[float | None, ...]


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: str = ""
    severity: str = ""


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    label: str = ""


@dataclass(frozen=True)
class Graph:
    """Nodes and directed edges (the defect graph)."""

    kind: ClassVar[str] = "graph"
    title: str
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...] = ()


Plot = Bars | Reliability | Line | Tokens | Graph
KINDS: dict[str, type] = {cls.kind: cls for cls in (Bars, Reliability, Line, Tokens, Graph)}


class PlotError(ValueError):
    """A stored plot that does not match its kind's schema (the report says so instead of drawing it)."""


def to_json(plot: Plot) -> dict[str, Any]:
    """The plot as JSON with its ``kind`` first."""
    return {"kind": plot.kind, **to_jsonable(plot)}


def to_details(*plots: Plot | None) -> list[dict[str, Any]]:
    """The value of ``Finding.details["plots"]`` for these plots (None entries are left out)."""
    return [to_json(p) for p in plots if p is not None]


def parse(data: Mapping[str, Any]) -> Plot:
    """A stored plot back as its typed spec.

    Raises:
        PlotError: unknown kind, unknown or missing fields.
    """
    kind = data.get("kind") if isinstance(data, Mapping) else None
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise PlotError(f"unknown plot kind {kind!r} (known: {', '.join(KINDS)})")
    try:
        plot: Plot = from_jsonable(cls, {k: v for k, v in data.items() if k != "kind"})
    except (TypeError, ValueError, KeyError) as err:
        raise PlotError(f"malformed {kind} plot: {err}") from None
    return plot


def bars(title: str, labels: Sequence[Any], estimates: Sequence[Estimate], x_label: str = "",
         reference: float | None = None) -> Bars:
    """Bars of estimates with their 95% CIs and n (the usual way a finding shows groups or slices)."""
    return Bars(title, tuple(str(x) for x in labels), tuple(float(e.value) for e in estimates),
                tuple(float(e.ci_low) for e in estimates), tuple(float(e.ci_high) for e in estimates),
                tuple(int(e.n) for e in estimates), x_label, reference)


def line(title: str, x: Sequence[float], y: Sequence[float | None], x_label: str = "", y_label: str = "",
         name: str = "") -> Line:
    """A single-series line plot."""
    return Line(title, (Series(name, tuple(float(v) for v in x), tuple(y)),), x_label, y_label)


def reliability(title: str, bins: Sequence[Mapping[str, Any]]) -> Reliability:
    """A reliability diagram from :func:`lmcritic.metrics.calibration.reliability_bins` output."""
    return Reliability(title, tuple(from_jsonable(ReliabilityBin, dict(b)) for b in bins))
