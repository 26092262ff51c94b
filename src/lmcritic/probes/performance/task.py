"""Any task written as a YAML/JSON task spec (see :mod:`lmcritic.tasks`), run as a probe.

Config: ``task`` (a path or a packaged name: sst2, mc_knowledge, qa_short, ...), ``overrides`` deep-merged
into the spec (e.g. ``{fewshot: {n: 2}, metrics: [acc, acc_norm, acc_mutual_info]}``), ``n`` and ``seed``
(which rows). The task is loaded and validated when the probe is built, so a bad spec fails before the
model loads. Each record keeps the source file and line, the rendered prompt, per-choice log-likelihoods
(or the generated answer) and an explanation target (context, gold continuation, the rival it lost to).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from lmcritic.backends.base import Backend
from lmcritic.plots import to_details
from lmcritic.probes.base import Case, Finding, Probe, ProbeConfig, Record
from lmcritic.requests import Capability
from lmcritic.tasks import findings as tf
from lmcritic.tasks.spec import TaskSpec, load_task


@dataclass(frozen=True)
class TaskConfig(ProbeConfig):
    task: str | dict[str, Any] = "sst2"  # path of a .yaml/.json task spec, a packaged task name, or the spec inline
    overrides: dict[str, Any] = field(default_factory=dict)  # deep-merged into the spec before validation
    n: int | None = None  # rows to evaluate (None: all), drawn with seed, kept in file order
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n is not None and self.n <= 0:
            raise ValueError("n must be > 0 (or null for all rows)")


class TaskProbe(Probe):
    name = "performance.task"
    area = "performance"
    Config = TaskConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.task: TaskSpec = load_task(self.config.task, self.config.overrides)

    def labels(self) -> tuple[str, ...] | None:
        """A classification task's classes; None for multiple choice (options vary per row) and free text."""
        return tuple(self.task.labels) if self.task.output_type == "classification" else None

    def not_applicable(self, model: Backend) -> str | None:
        needed = self._needs(model)
        if needed in model.capabilities:
            return None
        return f"task {self.task.name!r} ({self.task.output_type}) needs {needed.value}; " \
               f"the {model.kind} backend does not offer it"

    def cases(self) -> Iterable[Case]:
        from lmcritic.tasks.cases import build_cases

        return build_cases(self.task, self.config.n, self.config.seed)

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        from lmcritic.tasks import _choice, _text

        kind = self.task.output_type
        if kind == "generate":
            return _text.score_generate(self.task, model, cases)
        if kind == "perplexity":
            return _text.score_rolling(self.task, model, cases)
        if self._needs(model) is Capability.CLASSIFY:
            return _choice.score_head(self.task, model, cases)
        return _choice.score_loglikelihood(self.task, model, cases)

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        if not records:
            return []
        ests = {m: tf.metric_estimate(self.task, m, records) for m in self.task.metrics}
        plot = tf.metrics_plot(self.task, ests)
        out = [tf.metric_finding(self.name, self.task, m, est, records, plot if i == 0 else None)
               for i, (m, est) in enumerate(ests.items())]
        if self.task.output_type != "perplexity":
            out += [tf.slice_finding(self.name, self.task, records, *s) for s in tf.slices(self.task, records)]
            ece = next((f for f in out if f.name == "ece"), None)
            if ece is not None:
                reliability = tf.reliability_plot(self.task, records)
                ece.details["plots"] = [*ece.details.get("plots", []), *to_details(reliability)]
        return out

    def _needs(self, model: Backend) -> Capability:
        kind, task = self.task.output_type, self.task
        if kind == "generate":
            return Capability.GENERATE
        if kind == "perplexity":
            return Capability.ROLLING_LOGPROBS
        if kind == "classification" and (task.classifier == "head" or (
                task.classifier == "auto" and Capability.LOGLIKELIHOOD not in model.capabilities
                and Capability.CLASSIFY in model.capabilities)):
            return Capability.CLASSIFY
        return Capability.LOGLIKELIHOOD
