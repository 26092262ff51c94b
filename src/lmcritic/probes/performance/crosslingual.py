"""The same sentences in two languages, the same model: how much accuracy is lost in the second language?

The packaged data are 80 SST-2 dev sentences (40 per label, 6–22 words, seeded) with Chinese translations
written for lmcritic (``data/zh/README.md``): a parallel set, so each sentence is its own control and the gap is
paired. Each language is prompted in its own words (template and label words per language; few-shot examples,
when asked for, are the same parallel pairs in each language and are left out of the test). Reported: accuracy
per language (Wilson), the gap first − second with a paired bootstrap CI and an exact McNemar test, how
often the two predictions agree, and the threshold-free view: AUROC of p(positive) per language and its paired
difference (a model whose prior answers one label everywhere is at chance accuracy in both languages, yet may
rank the sentences well in one only). A gap mixes the model's weaker second language with whatever the translation
changed; the translations keep each sentence's polarity, which was checked when they were written.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from lmcritic import stats
from lmcritic._serde import to_jsonable
from lmcritic.backends.base import Backend
from lmcritic.datasets import packaged, read_rows
from lmcritic.errors import ConfigError
from lmcritic.findings import finding_name, make_finding, rate_severity
from lmcritic.plots import bars, to_details
from lmcritic.probes.base import Case, Estimate, Finding, Probe, ProbeConfig, Record
from lmcritic.probes.performance.sst2 import LABELS, SST2Accuracy
from lmcritic.requests import Capability


@dataclass(frozen=True)
class CrossLingualConfig(ProbeConfig):
    data: str | None = None  # None: packaged SST-2 sentences with Chinese translations; or a tsv/csv/jsonl
    columns: tuple[str, ...] = ("sentence", "sentence_zh")  # the text column of each language
    names: tuple[str, ...] = ("en", "zh")
    templates: tuple[str, ...] = ("Review: {{ text }}\nSentiment:", "评论：{{ text }}\n情感：")
    label_words: tuple[tuple[str, ...], ...] = ((" negative", " positive"), ("负面", "正面"))
    shots: int = 0
    n: int | None = None
    max_gap: float = 0.05  # first minus second language accuracy tolerated
    seed: int = 0

    def __post_init__(self) -> None:
        if not len(self.columns) == len(self.names) == len(self.templates) == len(self.label_words) == 2:
            raise ValueError("columns, names, templates and label_words need one entry per language (two)")
        if any(len(w) != 2 for w in self.label_words) or self.shots < 0:
            raise ValueError("label_words needs (negative, positive) per language and shots >= 0")


class CrossLingual(Probe):
    name = "performance.crosslingual"
    area = "performance"
    requires = frozenset({Capability.LOGLIKELIHOOD})
    Config = CrossLingualConfig
    chunk_size = 16

    def cases(self) -> Iterable[Case]:
        cfg = self.config
        rows = self._rows()
        order = list(range(len(rows)))
        random.Random(cfg.seed).shuffle(order)
        shots, pool = order[: cfg.shots], order[cfg.shots :]
        prefixes = [self._prefix(k, [rows[i] for i in shots]) for k in range(2)]
        for i in sorted(pool[: cfg.n] if cfg.n else pool):
            row = rows[i]
            yield Case(id=f"xl-{row['line']}", expected=LABELS[row["label"]],
                       input={"texts": row["texts"], "prompts": [p + self._helper(k)._render(t) for k, (p, t) in
                                                                 enumerate(zip(prefixes, row["texts"]))]},
                       tags={"source": row["source"], "line": row["line"], "languages": list(cfg.names)})

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        per = [self._helper(k).score(model, [Case(c.id, {"text": c.input["texts"][k], "prompt": c.input["prompts"][k]},
                                                  c.expected) for c in cases]) for k in range(2)]
        return [self._record(c, a, b) for c, a, b in zip(cases, *per)]

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        if not records:
            return []
        first, second = self.config.names
        ok = [[r.scores[f"correct_{n}"] > 0 for r in records] for n in (first, second)]
        accs = [stats.proportion(x) for x in ok]
        gap, p_boot = stats.paired_bootstrap([float(x) for x in ok[1]], [float(x) for x in ok[0]])
        p_mc = stats.mcnemar(ok[0], ok[1])
        agree = stats.proportion([r.output[first]["prediction"] == r.output[second]["prediction"] for r in records])
        return [self._accuracy(n, a, records) for n, a in zip((first, second), accs)] + \
            [self._gap(accs, gap, p_mc, p_boot, agree, records), self._ranking(records)]

    # -- helpers -------------------------------------------------------------------------------
    def _helper(self, k: int) -> SST2Accuracy:
        cache = self.__dict__.setdefault("_helpers", {})
        if k not in cache:
            cache[k] = SST2Accuracy(template=self.config.templates[k], label_words=self.config.label_words[k])
        return cache[k]

    def _prefix(self, k: int, shots: list[dict]) -> str:
        words = self.config.label_words[k]
        return "".join(self._helper(k)._render(r["texts"][k]) + words[r["label"]] + "\n\n" for r in shots)

    def _rows(self) -> list[dict[str, Any]]:
        path = self.config.data or str(packaged("zh/sst2_dev_parallel.tsv"))
        out = []
        for line, row in read_rows(path, required=("label", *self.config.columns)):
            if str(row["label"]).strip() not in ("0", "1"):
                raise ConfigError(f"{path}:{line}: label must be 0 or 1")
            out.append({"texts": [str(row[c]).strip() for c in self.config.columns], "label": int(row["label"]),
                        "line": int(row.get("dev_line") or line),
                        "source": "sst2_dev_parallel" if self.config.data is None else str(path)})
        return out

    def _record(self, case: Case, a: Record, b: Record) -> Record:
        names = self.config.names
        out = {n: {"prediction": r.prediction, "p_positive": (r.label_probs or {}).get("positive", 0.0)}
               for n, r in zip(names, (a, b))}
        return Record(case_id=case.id, input=case.input, output=out,
                      scores={f"correct_{n}": r.scores["correct"] for n, r in zip(names, (a, b))},
                      tags={**case.tags, "expected": case.expected}, passed=bool(b.passed),
                      text=b.text, target=case.expected, prediction=b.prediction, label_probs=b.label_probs,
                      explain=b.explain, explain_variant=a.explain)

    def _accuracy(self, name: str, acc: Estimate, records: Sequence[Record]) -> Finding:
        wrong = [r.case_id for r in records if not r.scores[f"correct_{name}"] > 0]
        return make_finding(self.name, finding_name("accuracy", name), failed=False,
                            summary=f"{name}: accuracy {acc} on the parallel sentences", estimate=acc,
                            evidence=wrong[:10])

    def _ranking(self, records: Sequence[Record]) -> Finding:
        """Threshold-free: AUROC of p(positive) per language and its paired difference. A model whose prior
        pushes every answer to one label has chance accuracy in both languages, yet may still rank the
        sentences well in one language and not in the other; this is the part of the gap the prior cannot hide."""
        from lmcritic.probes.safety._memo_stats import auroc_estimate

        names = self.config.names
        y = [r.tags["expected"] == "positive" for r in records]
        scores = [[r.output[n]["p_positive"] for r in records] for n in names]
        per = [auroc_estimate(s, y) for s in scores]
        diff, p = paired_auroc_difference(scores[0], scores[1], y)
        return make_finding(
            self.name, finding_name("auroc_gap", f"{names[0]}-{names[1]}"), failed=False,
            summary=f"ranking by p(positive): AUROC {names[0]} {per[0]} vs {names[1]} {per[1]}; difference {diff} "
            f"(paired stratified bootstrap p={p:.3g})",
            estimate=diff, details={"auroc": {n: to_jsonable(e) for n, e in zip(names, per)}, "p_bootstrap": p})

    def _gap(self, accs: list[Estimate], gap: Estimate, p_mc: float, p_boot: float, agree: Estimate,
             records: Sequence[Record]) -> Finding:
        first, second = self.config.names
        fail = gap.value > self.config.max_gap
        lost = [r.case_id for r in records
                if r.scores[f"correct_{first}"] > 0 and not r.scores[f"correct_{second}"] > 0]
        return make_finding(
            self.name, finding_name("gap", f"{first}-{second}"), failed=fail,
            severity=rate_severity(gap.value, gap.ci_low, self.config.max_gap, min(p_mc, p_boot) < 0.05),
            summary=f"{first} accuracy {accs[0].value:.3f} vs {second} {accs[1].value:.3f} on the same "
            f"{len(records)} sentences: gap {gap} (McNemar p={p_mc:.3g}); the two predictions agree on {agree}",
            estimate=gap, evidence=lost[:10],
            details={"accuracy": {first: to_jsonable(accs[0]), second: to_jsonable(accs[1])},
                     "agreement": to_jsonable(agree), "p_mcnemar": p_mc, "p_bootstrap": p_boot,
                     "shots": self.config.shots,
                     "plots": to_details(bars("Accuracy by language on the same sentences (95% CI)", [first, second],
                                              accs))})


def paired_auroc_difference(a: Sequence[float], b: Sequence[float], labels: Sequence[bool], n_boot: int = 2000,
                            seed: int = 0) -> tuple[Any, float]:
    """AUROC(a) − AUROC(b) on the same cases: a stratified bootstrap resamples cases (both scores move together);
    the p-value is twice the share of resampled differences on the far side of zero."""
    import numpy as np

    from lmcritic.probes.base import Estimate
    from lmcritic.probes.safety._memo_stats import auroc

    sa, sb, y = np.asarray(a, float), np.asarray(b, float), np.asarray(labels, bool)
    point = auroc(sa, y) - auroc(sb, y)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if len(pos) < 2 or len(neg) < 2:
        return Estimate(point, len(y), float("nan"), float("nan")), float("nan")
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for i in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        boots[i] = auroc(sa[idx], y[idx]) - auroc(sb[idx], y[idx])
    lo, hi = np.quantile(boots, [0.025, 0.975])
    p = min(1.0, 2 * min((boots <= 0).mean(), (boots >= 0).mean()))
    return Estimate(point, len(y), float(min(lo, point)), float(max(hi, point)), "bootstrap"), max(p, 1 / n_boot)
