"""Training-data skew: are identity terms already associated with a label in the corpus? No model needed.

Runs :func:`lmcritic.lexicon.association.associate` on a corpus (text with labels, or text alone, labelled by
its sentiment words) and stores one record per identity term and per group (counts, P(target | term) with a
Wilson CI, PMI with CI, Fisher p BH-corrected). Per attribute, a finding compares the groups: chi-square test of
group × label and the largest gap in P(target) between two groups with a Newcombe CI. Diagnosis joins these
records on ``attribute``/``group`` to say "this bias is in your data".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from lmcritic import stats
from lmcritic.backends.base import Backend
from lmcritic.datasets import packaged, read_rows
from lmcritic.errors import DataError
from lmcritic.findings import finding_name, make_finding
from lmcritic.lexicon import ATTRIBUTES
from lmcritic.lexicon.association import Association, associate
from lmcritic.plots import to_details
from lmcritic.probes.base import Case, Estimate, Finding, Probe, ProbeConfig, Record
from lmcritic.probes.bias import _common as C


@dataclass(frozen=True)
class DataSkewConfig(ProbeConfig):
    data: str | None = None  # the training corpus (.tsv/.csv/.jsonl(.gz)); None: not run in a scan (the packaged
    # 20k-sentence SST-2 train sample is what `lmcritic data-skew` and direct use fall back to)
    text_column: str = "sentence"  # falls back to "text"
    label_column: str | None = "label"  # None (or absent): label by sentiment words (VADER lexicon)
    target: str | None = None  # label whose rate is compared (default: positive / 1)
    attributes: tuple[str, ...] = ATTRIBUTES
    min_count: int = 5
    alpha: float = 0.05
    min_gap: float = 0.1  # a group gap smaller than this does not fail

    def __post_init__(self) -> None:
        bad = [a for a in self.attributes if a not in ATTRIBUTES]
        if bad:
            raise ValueError(f"unknown attributes {bad}; known: {', '.join(ATTRIBUTES)}")


class DataSkew(Probe):
    name = "bias.data_skew"
    area = "bias"
    chunk_size = 256

    Config = DataSkewConfig
    data_role = "train"

    def not_applicable(self, model: Backend) -> str | None:
        if self.config.data is None:  # the packaged SST-2 sample says nothing about a model not trained on it
            return "no training corpus given (scan --train PATH, or set data: PATH)"
        return None  # reads only the corpus

    def cases(self) -> Iterable[Case]:
        texts, labels, lines, source = self._corpus()
        result = associate(texts, labels, self.config.target, self.config.attributes, self.config.min_count)
        for kind, rows in (("group", result.groups), ("term", result.terms)):
            for a in rows:
                yield _case(a, kind, texts, lines, source, result.n_docs)

    def score(self, model: Backend | None, cases: Sequence[Case]) -> list[Record]:
        return [Record(c.id, c.input, {"counts": c.input["counts"]}, dict(c.expected), c.tags,
                       passed=c.expected["p_adjusted"] >= self.config.alpha,
                       group=None if c.tags["group"] is None else str(c.tags["group"])) for c in cases]

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        groups = [r for r in records if r.tags["kind"] == "group"]
        per = C.by(groups, lambda r: r.tags["attribute"])
        tests = {a: _chi2(rs) for a, rs in per.items()}
        q = dict(zip(tests, stats.benjamini_hochberg(list(tests.values()))))
        terms = [r for r in records if r.tags["kind"] == "term"]
        return [self._attr_finding(a, rs, tests[a], q[a], terms) for a, rs in per.items()]

    # -- helpers ---------------------------------------------------------------------------------
    def _corpus(self) -> tuple[list[str], list[str] | None, list[int], str]:
        cfg = self.config
        path = Path(cfg.data) if cfg.data else packaged("bias/sst2_train_sample.tsv.gz")
        rows = list(read_rows(path))
        if not rows:
            raise DataError(f"{path}: no rows", "give a corpus with a header and a text column")
        texts = [str(r.get(cfg.text_column) or r.get("text") or "") for _, r in rows]
        has_labels = cfg.label_column is not None and all(r.get(cfg.label_column) not in (None, "") for _, r in rows)
        labels = [str(r[cfg.label_column]).strip() for _, r in rows] if has_labels else None
        lines = [int(r.get("train_line") or line) for line, r in rows]
        return texts, labels, lines, "sst2_train" if cfg.data is None else str(path)

    def _attr_finding(self, attr: str, rs: list[Record], p: float, q: float, terms: list[Record]) -> Finding:
        rates = {r.tags["group"]: _rate(r) for r in rs}
        if len(rates) == 1:  # one group found: compare it with the corpus base rate
            base = rs[0].scores["base_rate"]
            rates["corpus"] = Estimate(base, 0, base, base, "fixed")  # n=0: the gap's n is the group's
        hi = max(rates, key=lambda g: rates[g].value)
        lo = min(rates, key=lambda g: rates[g].value)
        gap = _newcombe(rates[hi], rates[lo])
        bad = q < self.config.alpha and gap.value >= self.config.min_gap
        skewed = sorted((t for t in terms if t.tags["attribute"] == attr),
                        key=lambda t: (t.scores["p_adjusted"], -abs(t.scores["pmi"])))
        target = rs[0].input["target"]
        top = ", ".join(f"{t.tags['term']!r} {t.scores['rate']:.2f} (n={t.scores['n_docs']:.0f})"
                        for t in skewed[:4] if t.scores["p_adjusted"] < self.config.alpha)
        return make_finding(
            self.name, finding_name("label_skew", attr), failed=bad,
            effect=gap.value if bad else 0, scale="parity",
            summary=f"{attr}: P(label={target}) ranges from {rates[lo].value:.3f} ({lo}) to "
            f"{rates[hi].value:.3f} ({hi}) "
            f"vs base {rs[0].scores['base_rate']:.3f}; gap {gap}; group × label test p={p:.3g} (BH {q:.3g})"
            + (f"; most skewed terms: {top}" if top else ""),
            estimate=gap, evidence=tuple(t.case_id for t in skewed[:10]),
            details={"p_value": p, "p_bh": q, "high": hi, "low": lo, "target": target,
                     "plots": to_details(C.bars(f"P(label={target}) in documents mentioning each {attr} group",
                                                list(rates),
                                    list(rates.values())))})


def _case(a: Association, kind: str, texts: list[str], lines: list[int], source: str, n: int) -> Case:
    term = a.term.removeprefix("group:")
    examples = [{"line": lines[i], "text": texts[i][:300]} for i in a.examples[:3]]
    scores = {"n_docs": float(a.n_docs), "rate": a.rate, "rate_ci_low": a.rate_ci[0], "rate_ci_high": a.rate_ci[1],
              "base_rate": a.base_rate, "pmi": a.pmi, "pmi_ci_low": a.pmi_ci[0], "pmi_ci_high": a.pmi_ci[1],
              "p_value": a.p_value, "p_adjusted": a.p_adjusted}
    return Case(id=f"skew-{kind}-{a.attribute}-{term}", input={"counts": a.counts, "target": a.target,
                                                               "examples": examples, "corpus_docs": n},
                expected=scores, tags={"source": source, "line": lines[a.examples[0]] if a.examples else 0,
                                       "kind": kind, "attribute": a.attribute, "group": a.group, "term": term})


def _rate(r: Record) -> Estimate:
    s = r.scores
    return Estimate(s["rate"], int(s["n_docs"]), s["rate_ci_low"], s["rate_ci_high"], "wilson")


def _newcombe(a: Estimate, b: Estimate) -> Estimate:
    """Difference of two independent proportions with Newcombe's hybrid score interval (from Wilson bounds)."""
    d = a.value - b.value
    lo = d - math.sqrt((a.value - a.ci_low) ** 2 + (b.ci_high - b.value) ** 2)
    hi = d + math.sqrt((a.ci_high - a.value) ** 2 + (b.value - b.ci_low) ** 2)
    return Estimate(d, a.n + b.n, lo, hi, "newcombe")


def _chi2(rs: list[Record]) -> float:
    """Chi-square test of independence of group × (target, other) over the groups' documents (one group:
    its Fisher test against the rest of the corpus)."""
    from scipy.stats import chi2_contingency

    if len(rs) == 1:
        return rs[0].scores["p_value"]
    table = [[round(r.scores["rate"] * r.scores["n_docs"]), round((1 - r.scores["rate"]) * r.scores["n_docs"])]
             for r in rs]
    if any(sum(col) == 0 for col in zip(*table)):
        return 1.0
    return float(chi2_contingency(table).pvalue)
