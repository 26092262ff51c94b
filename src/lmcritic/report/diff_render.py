"""Text, Markdown and JSON renderings of a :class:`lmcritic.report.compare.Comparison`."""
from __future__ import annotations

from typing import Any

from lmcritic._serde import to_jsonable
from lmcritic.report._escape import md
from lmcritic.report.compare import Comparison, MetricDelta

_HEAD = ("probe", "metric", "A", "B", "B-A [95% CI]", "p_adj", "test", "n_paired", "unpaired", "")


def comparison_json(comp: Comparison, alpha: float = 0.05) -> dict[str, Any]:
    doc = to_jsonable(comp)
    for m, d in zip(comp.metrics, doc["metrics"]):
        d.update(significant=m.significant(alpha), regression=m.regression, verdict=_word(m, alpha))
    return {**doc, "alpha": alpha, "correction": "benjamini-hochberg over all metrics of the comparison"}


def comparison_text(comp: Comparison, alpha: float = 0.05, show_all: bool = False) -> str:
    rows = [_row(m, alpha) for m in _shown(comp, alpha, show_all)]
    lines = [f"diff: A = run {comp.run_a} ({comp.model_a})  vs  B = run {comp.run_b} ({comp.model_b})",
             f"{len(comp.changed(alpha))} of {len(comp.metrics)} metrics changed significantly (BH-adjusted p < "
             f"{alpha}; McNemar for pass/fail, paired sign-flip test on shared cases, two-sample bootstrap "
             "otherwise)", ""]
    lines += _table(rows) if rows else ["(no significant changes; --all lists every metric)"]
    lines += ["", *_findings_text(comp)]
    for side, keys in (("A", comp.probes_only_a), ("B", comp.probes_only_b)):
        if keys:
            lines.append(f"probes only in {side}: {', '.join(keys)}")
    lines += [f"not finished in B: {g.probe} ({g.status_b}{': ' + g.reason_b if g.reason_b else ''})"
              for g in comp.gaps]
    return "\n".join(lines)


def comparison_markdown(comp: Comparison, alpha: float = 0.05, show_all: bool = False) -> str:
    lines = [f"# Diff: run `{comp.run_a}` ({md(comp.model_a)}) → run `{comp.run_b}` ({md(comp.model_b)})", "",
             f"{len(comp.changed(alpha))} of {len(comp.metrics)} metrics changed significantly (Benjamini–Hochberg "
             f"adjusted p < {alpha}).", "", "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    lines += ["| " + " | ".join(md(c, 80) for c in _row(m, alpha)) + " |" for m in _shown(comp, alpha, show_all)]
    lines += ["", "## Findings", ""]
    lines += [f"- **{c.change}**: {md(c.probe)} · {md(c.name)} ({c.verdict_a or 'absent'} → {c.verdict_b or 'absent'}"
              f"{_sev(c)}){_est(c)}" for c in comp.findings if c.change != "unchanged"] or ["- no changes in verdicts"]
    for side, keys in (("A", comp.probes_only_a), ("B", comp.probes_only_b)):
        if keys:
            lines.append(f"\nProbes only in {side}: {md(', '.join(keys))}")
    lines += [f"\nNot finished in B: {md(g.probe)} ({md(g.status_b)}{': ' + md(g.reason_b, 200) if g.reason_b else ''})"
              for g in comp.gaps]
    return "\n".join(lines) + "\n"


# -- helpers ---------------------------------------------------------------------------------------
def _shown(comp: Comparison, alpha: float, show_all: bool) -> list[MetricDelta]:
    ms = list(comp.metrics) if show_all else comp.changed(alpha)
    return sorted(ms, key=lambda m: (not m.significant(alpha), m.p_adjusted))


def _row(m: MetricDelta, alpha: float) -> tuple[str, ...]:
    d = m.delta
    return (m.probe, m.metric, f"{m.mean_a:.4g}", f"{m.mean_b:.4g}",
            f"{d.value:+.4g} [{d.ci_low:+.4g}, {d.ci_high:+.4g}]", f"{m.p_adjusted:.3g}", m.test,
            str(m.n_paired), _unpaired(m), _word(m, alpha))


def _unpaired(m: MetricDelta) -> str:
    """Cases left out of the pairs; how many of them had the same id but another input."""
    return f"{m.n_unpaired} ({m.n_mismatched} other input)" if m.n_mismatched else str(m.n_unpaired)


def _word(m: MetricDelta, alpha: float) -> str:
    if not m.significant(alpha):
        return "no significant change"
    if m.regression is None:
        return "changed (direction unknown)"
    return "WORSE" if m.regression > 0 else "better"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [_HEAD, *rows]) for i in range(len(_HEAD))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [fmt(_HEAD), fmt(tuple("-" * w for w in widths)), *map(fmt, rows)]


def _findings_text(comp: Comparison) -> list[str]:
    out = []
    for kind in ("appeared", "disappeared", "persists"):
        items = [c for c in comp.findings if c.change == kind]
        label = {"appeared": "defects that appeared (fail in B only)", "disappeared": "defects that disappeared "
                 "(failed in A only)", "persists": "defects in both"}[kind]
        out.append(f"{label}: {len(items)}")
        out += [f"  {c.probe}:{c.name} ({c.verdict_a or 'absent'} -> {c.verdict_b or 'absent'}{_sev(c)}){_est(c)}"
                for c in items]
    return out


def _sev(c) -> str:
    sev = c.severity_b if c.change != "disappeared" else c.severity_a
    return f", {sev}" if sev else ""


def _est(c) -> str:
    a, b = c.estimate_a, c.estimate_b
    if a and b:
        return f"; estimate {a.value:.4g} -> {b.value:.4g}"
    return ""
