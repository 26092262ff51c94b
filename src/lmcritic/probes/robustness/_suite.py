"""Shared machinery of the paired robustness tests: SST-2 sentences, their variants, batched predictions
of each variant and of the text it is compared with, and records that keep both sides.

Each case is one (sentence, variant). Its record holds the original, the perturbed text, the edits, the
predictions on both sides, ``Record.explain`` (the variant) and ``Record.explain_variant`` (the
reference), so attribution and diagnosis can contrast them. Repeated reference predictions are free:
they hit the run's call cache.
"""
from __future__ import annotations

import dataclasses
import math
import random
from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from lmcritic.backends.base import Backend
from lmcritic.perturb.base import Edit
from lmcritic.plots import bars  # noqa: F401 - re-exported: the suite probes' plots
from lmcritic.probes.base import Case, Probe, ProbeConfig, Record
from lmcritic.probes.robustness import _classify

if TYPE_CHECKING:
    from typing import Callable

DEFAULT_TEMPLATE = "Review: {{ text }}\nSentiment:"


@dataclass(frozen=True)
class SuiteConfig(ProbeConfig):
    data: str | None = None  # None: the packaged SST-2 dev sample; or a .tsv/.csv/.jsonl with sentence/label
    n: int | None = 60  # sentences (None: all)
    template: str = DEFAULT_TEMPLATE  # as performance.sst2
    label_words: tuple[str, ...] = (" negative", " positive")
    detokenize: bool = True  # undo SST's "does n't" spacing so inputs read like real text
    classes: tuple[str, ...] | None = None  # a classifier of another task: its labels (data's labels: these or ids)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n is not None and self.n <= 0:
            raise ValueError("n must be > 0")
        if len(self.label_words) != 2:
            raise ValueError("label_words needs exactly two entries (negative, positive)")


@dataclass(frozen=True)
class Variant:
    kind: str  # the perturbation's registry name (or "clean")
    text: str
    edits: tuple[Edit, ...]
    reference: str  # the text this variant is compared with (usually the original)
    reference_kind: str = "clean"


class PairedSuite(Probe):
    """Base of the INV/DIR/register probes: subclasses say which variants a sentence gets."""

    area = "robustness"
    requires = frozenset()  # loglikelihood OR classify: see not_applicable
    chunk_size = 24
    data_role = "eval"
    any_classes = True

    def labels(self) -> tuple[str, ...]:
        return tuple(self.config.classes or _classify.LABELS)

    def not_applicable(self, model: Backend) -> str | None:
        return _classify.not_applicable(model, self.config.classes)

    @abstractmethod
    def variants(self, text: str, rng_for: Callable[[str], random.Random]) -> list[Variant]:
        """The variants of one sentence; ``rng_for(kind)`` gives a seeded RNG per variant kind."""

    def sentences(self) -> list[dict[str, Any]]:
        cfg = self.config
        rows = self._load_rows()
        order = list(range(len(rows)))
        random.Random(cfg.seed).shuffle(order)
        return [rows[i] for i in sorted(order[: cfg.n] if cfg.n else order)]

    def input_texts(self) -> list[str]:
        return [row["text"] for row in self.sentences()]

    def cases(self) -> Iterable[Case]:
        from lmcritic.lang import language_of

        for row in self.sentences():
            text = _classify.detokenize(row["text"]) if self.config.detokenize else row["text"]
            rng_for = _rng_factory(self.config.seed, row["source_line"])
            for v in self.variants(text, rng_for):
                yield Case(
                    id=f"{row['source']}-{row['source_line']}-{v.kind}",
                    input={"text": v.text, "original": text, "reference": v.reference,
                           "reference_kind": v.reference_kind, "edits": [dataclasses.asdict(e) for e in v.edits]},
                    expected=self.labels()[row["label"]],
                    tags={"source": row["source"], "line": row["source_line"], "perturbation": v.kind,
                          "n_edits": len(v.edits), "n_words": len(text.split()), "language": language_of(text)},
                )

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        texts = list(dict.fromkeys([c.input["text"] for c in cases] + [c.input["reference"] for c in cases]))
        truth: dict[str, str] = {}
        for c in cases:
            truth.setdefault(c.input["text"], c.expected)
            truth.setdefault(c.input["reference"], c.expected)
        preds = dict(zip(texts, _classify.predict(model, texts, self._sst2(), [truth[t] for t in texts],
                                                  self.config.classes)))
        return [self._record(c, preds[c.input["text"]], preds[c.input["reference"]]) for c in cases]

    # -- helpers -------------------------------------------------------------------------------
    def _sst2(self):
        if not hasattr(self, "_sst2_probe"):
            self._sst2_probe = _classify.sst2_helper(self.config.data, self.config.template, self.config.label_words)
        return self._sst2_probe

    def _load_rows(self) -> list[dict[str, Any]]:
        return _classify.rows(self._sst2(), self.config.classes)

    def _record(self, case: Case, pred: "_classify.Prediction", ref: "_classify.Prediction") -> Record:
        truth, sentiment = case.expected, not self.config.classes
        correct, ref_correct = pred.label == truth, ref.label == truth
        return Record(
            case_id=case.id,
            input=case.input,
            output=_sides(pred, ref, sentiment),
            scores={"correct": float(correct), "reference_correct": float(ref_correct),
                    "flipped": float(pred.label != ref.label), "p_true": pred.p(truth),
                    "delta_p_true": pred.p(truth) - ref.p(truth),
                    **({"delta_p_positive": pred.p_positive - ref.p_positive} if sentiment else {})},
            tags={**case.tags, "expected": truth},
            passed=correct,
            text=case.input["text"], target=truth, prediction=pred.label, label_probs=dict(pred.probs),
            explain=dataclasses.replace(pred.explain, span=case.input["text"]), explain_variant=ref.explain,
        )


def _sides(pred: "_classify.Prediction", ref: "_classify.Prediction", sentiment: bool) -> dict[str, Any]:
    """Both sides' predictions for ``Record.output`` (p(positive) on sentiment, every class's probability else)."""
    if sentiment:
        return {"p_positive": pred.p_positive, "reference_prediction": ref.label,
                "reference_p_positive": ref.p_positive}
    return {"probs": dict(pred.probs), "reference_prediction": ref.label, "reference_probs": dict(ref.probs)}


def _rng_factory(seed: int, line: int):
    """A deterministic RNG per (seed, sentence, perturbation): adding a perturbation type changes no other."""
    return lambda kind: random.Random(f"{seed}:{line}:{kind}")


def binomial_tail(k: int, n: int, p0: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p0): is a failure rate above the tolerated ``p0``?"""
    if n == 0 or k == 0:
        return 1.0
    return min(1.0, sum(math.comb(n, i) * p0**i * (1 - p0) ** (n - i) for i in range(k, n + 1)))


def perturbation_languages(names: Iterable[str]) -> frozenset[str] | None:
    """The languages any of the named perturbations is written for (None: one of them works in any)."""
    from lmcritic.perturb import PERTURBATIONS

    langs = [PERTURBATIONS.get(n).languages for n in names]
    return None if any(x is None for x in langs) else frozenset().union(*langs)  # type: ignore[arg-type]
