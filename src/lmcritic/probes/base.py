"""The probe API: a probe yields cases, asks the backend for what it needs, scores the answers.

Construct with config (``SST2Accuracy(n=200, shots=0)``); call with data (``probe.score(model, cases)``).
The runner owns the loop: it plans (capabilities), chunks cases, stores every record as it is made, and
calls ``summarize`` once all records exist, so a killed run resumes where it stopped.
"""
from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Sequence

from lmcritic.backends.base import Backend
from lmcritic.requests import Capability


class Verdict(str, enum.Enum):
    """CheckList-style outcome of a finding."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"


class Severity(str, enum.Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(frozen=True)
class Case:
    """One input a probe will put to the model. ``tags`` carry what later diagnosis joins on
    (source dataset and line, perturbation, demographic group, ...)."""

    id: str
    input: dict[str, Any]
    expected: Any = None
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExplainTarget:
    """What an attribution method explains for one case (stored with the record, read by ``interpret``).

    ``kind="continuation"``: log P(``target`` | ``context``) of a causal LM, minus log P(``foil`` | ``context``)
    when a foil is given. ``kind="label"``: a classifier's log-prob of label ``target`` for ``context``.
    ``span`` is the part of ``context`` that is the case's own input (e.g. the review inside a prompt
    template, found at its last occurrence); None: the whole context.
    """

    context: str
    target: str
    foil: str | None = None
    kind: str = "continuation"
    span: str | None = None


@dataclass(frozen=True)
class Record:
    """One scored case: what went in, what came out, the scores, and whether it passed.

    The typed fields are the contract with later stages (diagnosis, explanations, reports, mitigation), which
    read them and never guess from the probe's own ``input``/``output`` payloads:

    - ``text``: the input text the case is about (what diagnosis slices on and edits; None: no text input);
    - ``target``: the expected answer (gold label, reference text), None when there is none;
    - ``prediction``: the model's answer (a label, a choice or generated text);
    - ``label_probs``: label → probability over the probe's declared label set (:meth:`Probe.labels`);
    - ``group``: the demographic or data group the case belongs to (bias probes);
    - ``explain`` / ``explain_variant``: what attribution explains, for the case and for the other side
      of a pair (attack, counterfactual swap, perturbation reference).

    ``tags`` are the open key → scalar mapping diagnosis slices on (source line, perturbation, ...).
    """

    case_id: str
    input: dict[str, Any]
    output: dict[str, Any]
    scores: dict[str, float]
    tags: dict[str, Any] = field(default_factory=dict)
    passed: bool | None = None
    text: str | None = None
    target: str | None = None
    prediction: str | None = None
    label_probs: dict[str, float] | None = None
    group: str | None = None
    explain: ExplainTarget | None = None
    explain_variant: ExplainTarget | None = None


@dataclass(frozen=True)
class Estimate:
    """A headline figure always carries its sample size and a confidence interval."""

    value: float
    n: int
    ci_low: float
    ci_high: float
    method: str = "bootstrap"
    confidence: float = 0.95

    def __str__(self) -> str:
        return f"{self.value:.4g} [{self.ci_low:.4g}, {self.ci_high:.4g}] (n={self.n})"


@dataclass(frozen=True)
class Finding:
    """A probe's conclusion on one metric or behaviour, with the cases that show it."""

    probe: str
    name: str
    verdict: Verdict
    severity: Severity
    summary: str
    estimate: Estimate | None = None
    evidence: tuple[str, ...] = ()  # case ids, worst first
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeConfig:
    """Base for a probe's typed configuration; subclasses add fields with defaults."""


class Probe(ABC):
    """Base class. Subclasses set ``name``, ``area``, ``requires`` and ``Config``, and implement three methods."""

    name: ClassVar[str] = "probe"
    area: ClassVar[str] = "general"
    requires: ClassVar[frozenset[Capability]] = frozenset()
    languages: ClassVar[frozenset[str] | None] = None  # languages its method works in (lmcritic.lang codes); None: any
    chunk_size: ClassVar[int] = 32  # cases scored (and stored) per step
    Config: ClassVar[type] = ProbeConfig
    # What the config's ``data`` option holds: "eval" — labelled rows of the model's own task (``scan --data``);
    # "train" — the training corpus (``scan --train``); None — something else (or no such option).
    data_role: ClassVar[str | None] = None
    # Whether the probe reads a classifier of any task: given ``classes`` (the head's labels) with its ``data``, it
    # measures flips among them (``scan --data`` on a topic/intent head sets both); otherwise it is a sentiment probe.
    any_classes: ClassVar[bool] = False

    def __init__(self, **config: Any) -> None:
        self.config = build_config(self.Config, config, self.name)

    def labels(self) -> tuple[str, ...] | None:
        """The fixed label set a classification probe's ``Record.prediction`` and ``Record.label_probs`` range
        over (in this order), or None when its outputs are open (generated text, per-row choices, scores)."""
        return None

    def not_applicable(self, model: Backend) -> str | None:
        """Why this probe cannot run on ``model``, or None. Checked by the planner before any work."""
        missing = sorted(c.value for c in self.requires - model.capabilities)
        if missing:
            return f"needs {', '.join(missing)}; the {model.kind} backend does not offer it"
        return None

    def supported_languages(self) -> frozenset[str] | None:
        """The languages this configured probe works in; its perturbations or scorers may narrow ``languages``."""
        return self.languages

    def input_texts(self) -> Sequence[str]:
        """The texts the probe reads (before any change), for language detection; empty: not known before running."""
        return ()

    def language_mismatch(self) -> str | None:
        """Why the probe cannot work on its data's language, or None. Checked by the planner before any work."""
        from lmcritic.lang import data_languages

        supported = self.supported_languages()
        found = data_languages(self.input_texts()) if supported is not None else frozenset()
        if not found or found & supported:  # type: ignore[operator]
            return None
        return (f"works in {'/'.join(sorted(supported))} but its data is {'/'.join(sorted(found))}"  # type: ignore[arg-type]
                + self.language_hint())

    def language_hint(self) -> str:
        """How to configure the probe for another language (appended to the skip reason)."""
        return ""

    @abstractmethod
    def cases(self) -> Iterable[Case]:
        """The inputs, each with a stable id (so resume can skip finished ones)."""

    @abstractmethod
    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        """Ask the model about a chunk of cases (batched) and score each answer."""

    @abstractmethod
    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        """Turn all records into findings with estimates and CIs."""


def build_config(cls: type, values: dict[str, Any], owner: str) -> Any:
    """Instantiate a config dataclass: unknown keys get a "did you mean", every value is checked (and
    command-line text converted) against the field's annotation, so a bad option fails before any model call."""
    from lmcritic._typecheck import build_dataclass

    return build_dataclass(cls, values, owner)


def check_options(keys: Iterable[str], known: Iterable[str], owner: str) -> None:
    """Reject the first key not in ``known``, with a "did you mean" (or the known options)."""
    from lmcritic._typecheck import check_options as check

    check(keys, known, owner)


def config_dict(config: object) -> dict[str, Any]:
    """A probe config as plain JSON-able values (defaults filled in), for the stored spec."""
    from lmcritic._serde import to_jsonable

    data: dict[str, Any] = to_jsonable(config)
    return data
