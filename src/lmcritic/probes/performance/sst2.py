"""SST-2 sentiment (or any binary text classification given as ``data``): accuracy, macro-F1, label skew and
calibration (ECE, Brier).

A causal LM is prompted: which label word does it find more likely (zero- or few-shot; the label words and the
Jinja template are configurable). A sequence classifier is asked through ``classify`` with the raw text, its
labels matched to negative/positive by :mod:`lmcritic.probes._label_map` (``label_map`` when its names say
nothing). Every case keeps its source line, the per-label probabilities and the model's confidence, so later
areas (calibration, robustness, diagnosis) can join on them.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from lmcritic import plots, stats
from lmcritic._serde import to_jsonable
from lmcritic.backends.base import Backend
from lmcritic.datasets import packaged, read_rows, skip_row
from lmcritic.findings import make_finding, shortfall
from lmcritic.metrics import estimate
from lmcritic.metrics.calibration import accuracy_at_coverage, reliability_bins
from lmcritic.probes.base import Case, ExplainTarget, Finding, Probe, ProbeConfig, Record
from lmcritic.requests import Capability, ClassifyRequest, LoglikelihoodRequest

LABELS = ("negative", "positive")


@dataclass(frozen=True)
class SST2Config(ProbeConfig):
    data: str | None = None  # None: the packaged 300-sentence dev sample; or a .tsv/.csv/.jsonl path
    n: int | None = 200  # cases to use (None: all)
    shots: int = 0
    template: str = "Review: {{ text }}\nSentiment:"
    label_words: tuple[str, ...] = (" negative", " positive")
    min_accuracy: float = 0.8  # below this the accuracy finding fails
    max_ece: float = 0.1  # above this the calibration finding fails
    label_map: dict[str, str] = field(default_factory=dict)  # classifier head: model label -> negative/positive
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.label_words) != 2:
            raise ValueError("label_words needs exactly two entries (negative, positive)")
        if self.shots < 0 or (self.n is not None and self.n <= 0):
            raise ValueError("shots must be >= 0 and n > 0")


class SST2Accuracy(Probe):
    name = "performance.sst2"
    area = "performance"
    requires = frozenset()  # loglikelihood (prompted) or classify (classifier head): see not_applicable
    Config = SST2Config
    data_role = "eval"

    def not_applicable(self, model: Backend) -> str | None:
        from lmcritic.probes._label_map import sentiment_head_reason

        if model.supports(Capability.LOGLIKELIHOOD) or model.supports(Capability.CLASSIFY):
            return sentiment_head_reason(model, self.config.label_map)
        return f"needs loglikelihood (prompted LM) or classify (classifier head); the {model.kind} backend has neither"

    def labels(self) -> tuple[str, ...]:
        return LABELS

    def cases(self) -> Iterable[Case]:
        cfg = self.config
        rows = self._rows()
        rng = random.Random(cfg.seed)
        order = list(range(len(rows)))
        rng.shuffle(order)
        shots, pool = order[: cfg.shots], order[cfg.shots :]
        prefix = "".join(self._render(rows[i]["text"]) + cfg.label_words[rows[i]["label"]] + "\n\n" for i in shots)
        for i in sorted(pool[: cfg.n] if cfg.n else pool):
            row = rows[i]
            yield Case(
                id=f"sst2-{row['source_line']}",
                input={"text": row["text"], "prompt": prefix + self._render(row["text"])},
                expected=LABELS[row["label"]],
                tags={"source": row["source"], "line": row["source_line"], "n_words": len(row["text"].split())},
            )

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        if not model.supports(Capability.LOGLIKELIHOOD):
            return self._score_head(model, cases)
        words = self.config.label_words
        reqs = [LoglikelihoodRequest(c.input["prompt"], w) for c in cases for w in words]
        results = model.loglikelihood(reqs)
        return [self._record(c, results[2 * i : 2 * i + 2]) for i, c in enumerate(cases)]

    def _score_head(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        """A classifier head gets the raw text (never the LM prompt); its labels are mapped to ours."""
        from lmcritic.probes._label_map import class_probs, label_index

        results = model.classify([ClassifyRequest(c.input["text"]) for c in cases])
        out = []
        for case, res in zip(cases, results):
            mapping = label_index(res.labels, LABELS, self.config.label_map, {"0": 0, "1": 1})
            probs = class_probs(res.labels, res.probs, mapping, len(LABELS))
            pred = LABELS[int(probs[1] > probs[0])]
            label = next((lab for lab in res.labels if mapping[lab] == LABELS.index(pred)), pred)
            extra = {"model_labels": list(res.labels), "model_probs": list(res.probs),
                     "model_classes": [LABELS[mapping[lab]] for lab in res.labels]}
            out.append(self._scored(case, probs, ExplainTarget(case.input["text"], label, kind="label"), extra))
        return out

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        if not records:
            return []
        return [self._accuracy_finding(records), self._skew_finding(records), self._calibration_finding(records)]

    # -- helpers -------------------------------------------------------------------------------
    def _rows(self) -> list[dict]:
        from lmcritic.probes._label_map import class_index

        path = self.config.data or str(packaged("sst2_dev_sample.tsv"))
        rows = []
        for line, row in read_rows(path, required=("label",), labelled=True):
            text = row.get("sentence") or row.get("text")
            label = class_index(str(row["label"]), LABELS)  # 0/1, negative/positive in any case, neg/pos
            if not text or label is None:
                skip_row(path, line, "needs a 'sentence' or 'text' column and a 'label' (0/1 or negative/positive)")
                continue
            src_line = int(row.get("dev_line") or line)
            rows.append({"text": text.strip(), "label": label,
                         "source": "sst2_dev" if self.config.data is None else str(path), "source_line": src_line})
        return rows

    def _render(self, text: str) -> str:
        import jinja2

        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
        return env.from_string(self.config.template).render(text=text)

    def _record(self, case: Case, results: Sequence) -> Record:
        lls = [r.logprob for r in results]
        top = max(lls)
        probs = [math.exp(x - top) for x in lls]
        total = sum(probs)
        probs = [p / total for p in probs]
        pred = LABELS[int(probs[1] > probs[0])]
        words = self.config.label_words
        explain = ExplainTarget(case.input["prompt"], words[LABELS.index(pred)], words[1 - LABELS.index(pred)],
                                span=case.input["text"])  # why the model chose its answer over the other
        return self._scored(case, probs, explain, {"label_logprobs": lls}, margin=abs(lls[1] - lls[0]))

    def _scored(self, case: Case, probs: list[float], explain: ExplainTarget, extra: dict[str, Any],
                margin: float | None = None) -> Record:
        pred = LABELS[int(probs[1] > probs[0])]
        correct = pred == case.expected
        return Record(
            case_id=case.id,
            input=case.input,
            output={"probs": probs, "labels": list(LABELS), **extra},
            scores={"correct": float(correct), "p_true": probs[LABELS.index(case.expected)],
                    "confidence": max(probs), "margin": abs(probs[1] - probs[0]) if margin is None else margin},
            tags={**case.tags, "expected": case.expected},
            passed=correct,
            text=case.input["text"], target=case.expected, prediction=pred, label_probs=dict(zip(LABELS, probs)),
            explain=explain,
        )

    def _accuracy_finding(self, records: Sequence[Record]) -> Finding:
        acc = stats.proportion([bool(r.passed) for r in records])
        f1 = estimate("macro_f1", {"predictions": [r.prediction for r in records],
                                   "references": [r.tags["expected"] for r in records]})
        wrong = sorted((r for r in records if not r.passed), key=lambda r: -r.scores["confidence"])
        gap = shortfall(acc.value, self.config.min_accuracy)
        return make_finding(
            probe=self.name, name="accuracy", failed=gap > 0, effect=gap,
            summary=f"{'SST-2' if self.config.data is None else 'task'} accuracy {acc} (macro-F1 {f1.value:.3f}); "
                    f"threshold {self.config.min_accuracy}",
            estimate=acc, evidence=tuple(r.case_id for r in wrong[:10]),
            details={"macro_f1": to_jsonable(f1), "n_wrong": len(wrong), "shots": self.config.shots,
                     "template": self.config.template, "label_words": list(self.config.label_words)},
        )

    def _skew_finding(self, records: Sequence[Record]) -> Finding:
        pred_pos = stats.proportion([r.prediction == "positive" for r in records])
        true_pos = sum(r.tags["expected"] == "positive" for r in records) / len(records)
        outside = not pred_pos.ci_low <= true_pos <= pred_pos.ci_high
        gap = abs(pred_pos.value - true_pos)
        skewed = outside and gap > 0.1
        favoured = "positive" if pred_pos.value > true_pos else "negative"
        return make_finding(
            probe=self.name, name="label_skew", failed=skewed, effect=gap if outside else 0.0,
            summary=f"predicts positive for {pred_pos} of inputs vs {true_pos:.3f} truly positive"
            + (f": leans {favoured}" if skewed else ""),
            estimate=pred_pos,
            evidence=tuple(r.case_id for r in records if not r.passed and r.prediction == favoured)[:10],
            details={"true_positive_rate": true_pos},
        )


    def _calibration_finding(self, records: Sequence[Record]) -> Finding:
        conf = [r.scores["confidence"] for r in records]
        ok = [bool(r.passed) for r in records]
        ece = estimate("ece", {"confidences": conf, "correct": ok})
        brier = estimate("brier", {"probs": [r.output["probs"] for r in records],
                                   "labels": [LABELS.index(r.tags["expected"]) for r in records]})
        over = ece.value - self.config.max_ece
        confidently_wrong = sorted((r for r in records if not r.passed), key=lambda r: -r.scores["confidence"])
        return make_finding(
            probe=self.name, name="calibration", failed=over > 0,
            effect=over, summary=f"expected calibration error {ece} (10 bins); Brier {brier.value:.4f} "
            f"[{brier.ci_low:.4f}, {brier.ci_high:.4f}]; mean confidence {sum(conf) / len(conf):.3f} vs accuracy "
            f"{sum(ok) / len(ok):.3f}",
            estimate=ece, evidence=tuple(r.case_id for r in confidently_wrong[:10]),
            details={"plots": plots.to_details(plots.reliability("Reliability diagram", reliability_bins(conf, ok))),
                     "brier": to_jsonable(brier),
                     "accuracy_at_coverage": {str(k): v for k, v in accuracy_at_coverage(conf, ok).items()}},
        )
