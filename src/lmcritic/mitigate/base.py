"""The mitigation plug-in API: each mitigation declares the causes it treats, what it needs and what it makes.

Construct with config (``MITIGATIONS.get("calibrate")(method="contextual")``), call with data
(``mitigation.apply(ctx)``). A mitigation gets a :class:`MitigationContext` (the run, the defect it targets with
the diagnosed cause and culprit, the training corpus, an output folder) and returns a :class:`MitigatedModel`:
a model spec that loads the fixed model (a new model folder, or the original behind wrappers), plus what it cost
(guards' false positives on clean held-out inputs) and what it did (rows added or removed, training time).
Re-verification (:mod:`lmcritic.mitigate.verify`) is separate and the same for every mitigation.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lmcritic.errors import ConfigError
from lmcritic.probes.base import Estimate, build_config

if TYPE_CHECKING:
    from lmcritic.store.runs import RunStore

TRAINING, INFERENCE = "training", "inference"
# what a mitigation may need: local weights a trainer can fine-tune, a labelled training corpus, label
# probabilities from the model (loglikelihood of label words or a classifier head), text generation
NEEDS = ("weights", "train", "label_scores", "generate")


@dataclass(frozen=True)
class Culprit:
    """What exactly the diagnosis implicates, in the form a mitigation acts on.

    Read from the cause's typed culprit when the diagnosis gives one, else from its evidence; ``source`` says
    which. ``kind``: identity_group | token | register | length | label_noise | memorized_rows | typos | prior.
    """

    kind: str
    value: str = ""
    label: str | None = None  # the label the culprit pushes predictions toward
    attribute: str | None = None
    terms: tuple[str, ...] = ()
    train_lines: tuple[int, ...] = ()
    texts: tuple[str, ...] = ()  # implicated input texts (memorised rows)
    data: dict[str, Any] = field(default_factory=dict)
    contrast: str | None = None  # what the culprit is compared with (the other group of an identity pair)
    source: str = "evidence"


@dataclass(frozen=True)
class Target:
    """What to fix and re-verify: a diagnosed defect (or, without a diagnosis, a probe's failing cases)."""

    id: str  # "D1", or the probe key
    probe: str
    slice: str
    case_ids: tuple[str, ...]  # every affected case (the defect's slice)
    failing: tuple[str, ...]  # those that failed
    cause: str | None = None
    verdict: str | None = None  # the cause's verdict (supported, inconclusive, ...)
    culprit: Culprit | None = None
    evidence: tuple[Any, ...] = ()  # the cause's Evidence items
    causes: tuple[tuple[str, str], ...] = ()  # every tested cause of the defect and its verdict


@dataclass(frozen=True)
class Cost:
    """What a mitigation costs on clean inputs, with n and a CI (e.g. a guard's false-positive rate)."""

    name: str
    estimate: Estimate
    summary: str


@dataclass(frozen=True)
class MitigatedModel:
    """A mitigation's product: the spec that loads the fixed model, and how it was made."""

    method: str
    spec: dict[str, Any]  # {name, backend, options}: what model.yaml holds
    kind: str  # training | inference
    model_dir: str | None = None
    wrappers: tuple[dict[str, Any], ...] = ()
    costs: tuple[Cost, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)  # rows added/removed, steps, wall time, fitted values
    notes: tuple[str, ...] = ()
    control: dict[str, Any] | None = None  # spec of the control arm: the same fine-tune on the unedited corpus


@dataclass
class MitigationContext:
    """Everything a mitigation may use. ``model()`` loads the run's model once (through the shared cache)."""

    store: RunStore
    run_id: str
    spec: dict[str, Any]  # the run's stored (resolved) spec
    target: Target
    out_dir: Path
    train: Path | None = None
    heldout: Path | None = None
    seed: int = 0
    decontaminate: bool = False
    cache_path: Path | None = None
    progress: bool = True
    control: bool = False  # training-time fixes also train the control arm (the same fine-tune, corpus unedited)
    _model: Any = None

    @property
    def model_spec(self) -> dict[str, Any]:
        m = self.spec.get("model") or {}
        return {"name": m, "backend": None, "options": {}} if isinstance(m, str) else dict(m)

    def model(self) -> Any:
        """The run's model behind the shared call cache (loaded on first use)."""
        if self._model is None:
            from lmcritic.backends import load_model
            from lmcritic.runner import lmcritic_home
            from lmcritic.store.cache import CachedBackend

            inner = load_model(model_spec_of(self.model_spec))
            self._model = CachedBackend(inner, self.cache_path or lmcritic_home() / "cache.sqlite")
        return self._model

    def backend_name(self) -> str:
        return backend_of(self.spec)

    def probe_entry(self, key: str | None = None) -> dict[str, Any]:
        """The run spec's entry (name, key, config) for a probe key (default: the target's probe)."""
        key = key or self.target.probe
        for p in self.spec.get("probes") or ():
            if (p.get("key") or p.get("name")) == key:
                return p
        raise ConfigError(f"probe {key!r} is not in run {self.run_id}'s spec")

    def eval_texts(self) -> set[str]:
        """Normalised input texts of every case the run evaluated: what must never enter training."""
        from lmcritic.diagnose.corpus import normalize

        out = set()
        for p in self.store.probe_runs(self.run_id):
            if p.probe_key.startswith(("diagnose", "interpret.", "mitigate")):
                continue
            for r in self.store.records(self.run_id, p.probe_key):
                if r.text:
                    out.add(normalize(r.text))
        return out


@dataclass(frozen=True)
class MitigationConfig:
    """Base for a mitigation's typed configuration; subclasses add fields with defaults."""


class Mitigation(ABC):
    """A fix for one or more causes. Subclasses set the class attributes and implement :meth:`apply`."""

    name: ClassVar[str] = "mitigation"
    title: ClassVar[str] = ""
    kind: ClassVar[str] = INFERENCE  # training | inference
    treats: ClassVar[frozenset[str]] = frozenset()  # cause names (diagnosis hypotheses)
    needs: ClassVar[frozenset[str]] = frozenset()  # see NEEDS
    produces: ClassVar[str] = "wrapped model"  # the run's model behind wrappers, as a model spec
    probes: ClassVar[tuple[str, ...]] = ()  # probes it targets when no diagnosis names a defect
    culprits: ClassVar[frozenset[str]] = frozenset()  # culprit kinds it acts on directly (auto prefers it then)
    preference: ClassVar[float] = 0.5  # rank among mitigations of the same cause when no culprit decides
    Config: ClassVar[type] = MitigationConfig

    def __init__(self, **config: Any) -> None:
        self.config = build_config(self.Config, config, f"mitigation {self.name}")

    @abstractmethod
    def apply(self, ctx: MitigationContext) -> MitigatedModel:
        """Make the mitigated model (fit, or train and save) and say what it cost."""

    def describe(self) -> dict[str, Any]:
        from lmcritic._serde import to_jsonable

        return {"name": self.name, "title": self.title, "kind": self.kind, "treats": sorted(self.treats),
                "needs": sorted(self.needs), "produces": self.produces, "config": to_jsonable(self.config)}


def model_spec_of(data: str | dict[str, Any]) -> Any:
    """A :class:`lmcritic.backends.ModelSpec` from a spec's ``model:`` (a name, or name/backend/options)."""
    from lmcritic.backends import DEFAULT_MODEL, ModelSpec

    if isinstance(data, str):
        return ModelSpec(data)
    unknown = set(data) - {"name", "backend", "options"}
    if unknown:
        raise ConfigError(f"model spec has unknown key {sorted(unknown)[0]!r}", "use name, backend and options")
    return ModelSpec(str(data.get("name") or DEFAULT_MODEL), data.get("backend"), dict(data.get("options") or {}))


def backend_of(spec: dict[str, Any]) -> str:
    """The registry name of a run's backend (``hf``, ``openai``, ...), found without loading the model."""
    return str(model_spec_of(spec.get("model") or {}).resolve()[0])


def wrapped_spec(ctx: MitigationContext, wrappers: list[dict[str, Any]], label: str,
                 inner: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model spec of the run's model (or ``inner``, e.g. freshly fine-tuned weights) behind ``wrappers`` (the
    original's own wrappers kept inside)."""
    inner = inner or ctx.model_spec
    inner = {k: v for k, v in inner.items() if v not in (None, {}, [])} or {"name": inner.get("name")}
    return {"name": f"{inner.get('name')}+{label}", "backend": "mitigated",
            "options": {"inner": inner, "wrappers": wrappers}}


__all__ = ["INFERENCE", "NEEDS", "TRAINING", "Cost", "Culprit", "MitigatedModel", "Mitigation",
           "MitigationConfig", "MitigationContext", "Target", "backend_of", "model_spec_of", "wrapped_spec"]
