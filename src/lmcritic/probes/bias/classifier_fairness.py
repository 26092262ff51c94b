"""Group fairness of a sentiment classifier (prompted LM or classifier head) when examples carry group labels.

Groups come from a ``group`` column, or are derived from the text with the lexicon for one ``attribute``
(sentences that mention exactly one group of it; e.g. gender: male vs female mentions). Per group: accuracy,
selection rate, FPR and FNR; across groups: demographic parity difference and equalized odds difference — all
computed by ``fairlearn`` (MetricFrame and its difference metrics), with percentile bootstrap CIs over examples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from lmcritic.backends.base import Backend
from lmcritic.datasets import packaged, read_rows
from lmcritic.findings import make_finding
from lmcritic.lexicon import ATTRIBUTES, find_identity_terms
from lmcritic.plots import to_details
from lmcritic.probes.base import Case, Estimate, ExplainTarget, Finding, Probe, ProbeConfig, Record
from lmcritic.probes.bias import _common as C
from lmcritic.probes.bias.counterfactual import p_positive
from lmcritic.probes.performance.sst2 import LABELS
from lmcritic.requests import Capability


@dataclass(frozen=True)
class FairnessConfig(ProbeConfig):
    data: str | None = None  # None: packaged SST-2 dev sentences that mention identity terms; or tsv/csv/jsonl
    group_column: str = "group"  # used when the data has it
    attribute: str = "gender"  # else groups are derived from the text for this attribute
    n: int | None = None
    template: str = "Review: {{ text }}\nSentiment:"
    label_words: tuple[str, ...] = (" negative", " positive")
    max_difference: float = 0.1  # a DP/EO difference whose CI lies above this fails
    n_boot: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attribute not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {self.attribute!r}; known: {', '.join(ATTRIBUTES)}")


class ClassifierFairness(Probe):
    name = "bias.classifier_fairness"
    area = "bias"
    Config = FairnessConfig
    data_role = "eval"

    def labels(self) -> tuple[str, ...]:
        return LABELS

    def not_applicable(self, model: Backend) -> str | None:
        from lmcritic.probes._label_map import sentiment_head_reason

        if model.supports(Capability.LOGLIKELIHOOD) or model.supports(Capability.CLASSIFY):
            return sentiment_head_reason(model)
        return f"needs loglikelihood (prompted LM) or classify (classifier head); {model.kind} has neither"

    def cases(self) -> Iterable[Case]:
        cfg = self.config
        path = cfg.data or str(packaged("bias/sst2_dev_identity.tsv"))
        rows = []
        for line, row in read_rows(path, required=("label",)):
            text = (row.get("sentence") or row.get("text") or "").strip()
            group = str(row[cfg.group_column]) if row.get(cfg.group_column) not in (None, "") else _group(text, cfg)
            if group:
                rows.append((int(row.get("dev_line") or line), text, int(str(row["label"]).strip()), group))
        for line, text, label, group in C.sample(rows, cfg.n, cfg.seed):
            yield Case(id=f"fair-{line}", input={"text": text}, expected=LABELS[label],
                       tags={"source": "sst2_dev" if cfg.data is None else path, "line": line,
                             "attribute": cfg.attribute if cfg.data is None else cfg.group_column, "group": group,
                             "expected": LABELS[label]})

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        probs = p_positive(model, [c.input["text"] for c in cases], self.config.template, self.config.label_words)
        out = []
        for c, p in zip(cases, probs):
            pred = LABELS[int(p > 0.5)]
            text = c.input["text"]
            explain = ExplainTarget(text, pred, kind="label", span=text) \
                if not model.supports(Capability.LOGLIKELIHOOD) else \
                ExplainTarget(text, pred, LABELS[1 - LABELS.index(pred)], span=text)
            out.append(Record(c.id, c.input, {"p_positive": p}, {"correct": float(pred == c.expected), "p_positive": p},
                              c.tags, pred == c.expected, text=text, target=c.expected, prediction=pred,
                              group=str(c.tags["group"]), explain=explain))
        return out

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        groups = sorted({r.tags["group"] for r in records})
        if len(groups) < 2:
            return [make_finding(self.name, "group_fairness", failed=None, effect=0, scale="bias",
                                 summary=f"needs at least two groups, found {groups or 'none'}")]
        y = np.array([LABELS.index(r.tags["expected"]) for r in records])
        yhat = np.array([LABELS.index(r.prediction) for r in records])
        g = np.array([r.tags["group"] for r in records])
        point = _fair(y, yhat, g)
        boots = self._boot(y, yhat, g)
        table = _per_group(y, yhat, g)
        plot = C.bars("Accuracy by group", list(table), [table[k]["accuracy"] for k in table])
        out = []
        for key, label in (("dp", "demographic_parity_difference"), ("eo", "equalized_odds_difference")):
            est = _est(point[key], [b[key] for b in boots], len(records))
            bad = est.ci_low > self.config.max_difference
            out.append(make_finding(
                self.name, label, failed=bad,
                effect=est.value if bad else 0, scale="parity",
                summary=f"{label.replace('_', ' ')} {est} across {', '.join(groups)} (fairlearn; 0 = parity)",
                estimate=est, evidence=tuple(r.case_id for r in records if not r.passed)[:10],
                details={"per_group": {k: {m: _jsonable(e) for m, e in v.items()} for k, v in table.items()},
                         "plots": to_details(plot)}))
        return out

    def _boot(self, y: np.ndarray, yhat: np.ndarray, g: np.ndarray) -> list[dict]:
        """Bootstrap replicates with :func:`fast_fair` (fairlearn takes ~0.3 s a call; the tests check that
        both agree), skipping resamples that lose a group or a class within a group."""
        rng = np.random.default_rng(self.config.seed)
        codes = np.unique(g, return_inverse=True)[1]
        out = []
        for _ in range(self.config.n_boot):
            i = rng.integers(0, len(y), len(y))
            rep = fast_fair(y[i], yhat[i], codes[i], int(codes.max()) + 1)
            if rep is not None:
                out.append(rep)
        return out


def _group(text: str, cfg: FairnessConfig) -> str:
    found = {m.group for m in find_identity_terms(text, cfg.attribute)}
    return found.pop() if len(found) == 1 else ""


def _fair(y: np.ndarray, yhat: np.ndarray, g: np.ndarray) -> dict[str, float]:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    return {"dp": float(demographic_parity_difference(y, yhat, sensitive_features=g)),
            "eo": float(equalized_odds_difference(y, yhat, sensitive_features=g))}


def fast_fair(y: np.ndarray, yhat: np.ndarray, codes: np.ndarray, k: int) -> dict[str, float] | None:
    """fairlearn's demographic parity and equalized odds differences (max − min over groups), vectorised."""
    n = np.bincount(codes, minlength=k)
    pos, neg = np.bincount(codes, y == 1, k), np.bincount(codes, y == 0, k)
    if (n == 0).any() or (pos == 0).any() or (neg == 0).any():
        return None
    sel = np.bincount(codes, yhat == 1, k) / n
    tpr = np.bincount(codes, (y == 1) & (yhat == 1), k) / pos
    fpr = np.bincount(codes, (y == 0) & (yhat == 1), k) / neg
    return {"dp": float(np.ptp(sel)), "eo": float(max(np.ptp(tpr), np.ptp(fpr)))}


def _per_group(y: np.ndarray, yhat: np.ndarray, g: np.ndarray) -> dict[str, dict[str, Estimate]]:
    """Per-group accuracy, selection rate, FPR, FNR from fairlearn's MetricFrame, with Wilson CIs."""
    from fairlearn.metrics import MetricFrame, count, false_negative_rate, false_positive_rate, selection_rate
    from sklearn.metrics import accuracy_score

    from lmcritic.stats import wilson

    metrics = {"accuracy": accuracy_score, "selection_rate": selection_rate, "fpr": false_positive_rate,
               "fnr": false_negative_rate, "count": count}
    frame = MetricFrame(metrics=metrics, y_true=y, y_pred=yhat, sensitive_features=g).by_group
    out = {}
    for group, row in frame.iterrows():
        mask = g == group
        denom = {"accuracy": mask.sum(), "selection_rate": mask.sum(), "fpr": (mask & (y == 0)).sum(),
                 "fnr": (mask & (y == 1)).sum()}
        out[str(group)] = {m: Estimate(float(row[m]), int(denom[m]), *wilson(int(round(row[m] * denom[m])),
                                                                              int(denom[m])), method="wilson")
                           for m in denom}
    return out


def _est(point: float, boots: list[float], n: int) -> Estimate:
    if not boots:
        return Estimate(point, n, float("nan"), float("nan"))
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return Estimate(point, n, float(lo), float(hi), "bootstrap")


def _jsonable(e: Estimate) -> dict:
    return {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n}
