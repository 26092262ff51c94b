"""Per-request scores with the scorers the probes use, batched, cached per distinct text, stored per request.

A :class:`ScoringConfig` lists steps: which text of a request (``prompt``, ``response`` or the feedback
``comment``) goes to which registered scorer. Each step's primary score is stored as ``<field>.<scorer>``
(``response.pii``), its other non-zero scores as ``<field>.<scorer>.<key>`` (``response.pii.email``), and a
scorer's categorical labels as ``<field>.<scorer>.<label>`` (``prompt.language.code``). Feedback thumbs and
scores are copied as ``feedback.thumb``/``feedback.score``. Scores of a text are cached under the scorer's
settings and the text's hash, so repeated prompts (templates, retries) and re-runs cost one lookup. A step
whose scorer cannot run here is dropped with its reason, before any work.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from lmcritic._serde import stable_hash
from lmcritic.errors import ConfigError
from lmcritic.scorers import Scorer, get_scorer
from lmcritic.store.monitor import MonitorStore, StoredRequest

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend

TEXT_FIELDS = ("prompt", "response", "comment")
CHUNK = 512


@dataclass(frozen=True)
class Step:
    field: str
    scorer: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.field not in TEXT_FIELDS:
            raise ConfigError(f"monitor scorer step on unknown field {self.field!r}", f"one of {TEXT_FIELDS}")


DEFAULT_STEPS = (
    Step("prompt", "toxicity"), Step("response", "toxicity"), Step("prompt", "pii"), Step("response", "pii"),
    Step("response", "refusal"), Step("prompt", "injection"), Step("prompt", "length"), Step("response", "length"),
    Step("prompt", "language"), Step("response", "language"), Step("prompt", "register"), Step("comment", "vader"),
)


@dataclass(frozen=True)
class ScoringConfig:
    """The per-request scorers; ``model`` (a model name/path) adds input perplexity through the call cache."""

    steps: tuple[Step, ...] = DEFAULT_STEPS
    model: str | None = None
    backend: str | None = None


class RequestScorer:
    """Builds the scorers once, then scores lists of requests (construct with config, call with data).

    ``store`` (optional) caches per-text scores; ``lm`` is the scoring backend for perplexity (already wrapped
    in the call cache by the caller). ``skipped`` says which steps were dropped and why.
    """

    def __init__(self, config: ScoringConfig = ScoringConfig(), store: MonitorStore | None = None,
                 lm: Backend | None = None) -> None:
        self.config, self.store = config, store
        steps = list(config.steps) + ([Step("prompt", "perplexity")] if lm is not None else [])
        self.steps: list[tuple[Step, Scorer, str]] = []
        self.skipped: dict[str, str] = {}
        for step in steps:
            scorer = _build(step, lm)
            reason = scorer.not_applicable()
            if reason:
                self.skipped[f"{step.field}.{step.scorer}"] = reason
                continue
            fp = stable_hash(step.scorer, step.options, getattr(scorer, "version", None),
                             _model_fp(lm) if step.scorer == "perplexity" else None)
            self.steps.append((step, scorer, fp[:16]))

    @property
    def fingerprint(self) -> str:
        """Names the score set: requests scored under another one are scored again (cached texts are free)."""
        return stable_hash("monitor-scores", [(s.field, s.scorer, fp) for s, _, fp in self.steps])[:16]

    def metrics(self) -> list[str]:
        return [f"{s.field}.{s.scorer}" for s, _, _ in self.steps]

    def score(self, requests: Sequence[StoredRequest]) -> dict[int, dict[str, Any]]:
        """Flat scores per request id."""
        out: dict[int, dict[str, Any]] = {r.id: _feedback(r) for r in requests}
        for step, scorer, fp in self.steps:
            texts = [_text(r, step.field) for r in requests]
            for r, text, values in zip(requests, texts, self._cached(scorer, fp, texts)):
                if text is not None:
                    out[r.id].update(_flatten(step, scorer, values))
        return out

    def score_texts(self, field_texts: dict[str, Sequence[str | None]]) -> list[dict[str, Any]]:
        """Scores of texts that are not stored requests (a pre-deployment run's inputs and outputs)."""
        n = len(next(iter(field_texts.values()))) if field_texts else 0
        out: list[dict[str, Any]] = [{} for _ in range(n)]
        for step, scorer, fp in self.steps:
            texts = list(field_texts.get(step.field) or [None] * n)
            for row, text, values in zip(out, texts, self._cached(scorer, fp, texts)):
                if text is not None:
                    row.update(_flatten(step, scorer, values))
        return out

    def _cached(self, scorer: Scorer, fp: str, texts: Sequence[str | None]) -> list[dict[str, Any]]:
        """Values per text (``{}`` for None): cache hits, then each distinct miss scored once, then stored."""
        hashes = [text_hash(t) if t is not None else None for t in texts]
        distinct = {h: t for h, t in zip(hashes, texts) if h is not None and t is not None}
        found = self.store.cached_values(fp, list(distinct)) if self.store is not None else {}
        todo = [h for h in distinct if h not in found]
        if todo:
            new = dict(zip(todo, _values(scorer, [distinct[h] for h in todo])))
            found.update(new)
            if self.store is not None:
                self.store.cache_values(fp, new)
        return [found[h] if h is not None else {} for h in hashes]


def score_store(store: MonitorStore, scorer: RequestScorer, chunk: int = CHUNK,
                progress: Callable[[int], None] | None = None) -> int:
    """Score every request not yet scored under ``scorer``'s fingerprint, chunk by chunk; returns how many."""
    done = 0
    for batch in store.unscored(scorer.fingerprint, chunk):
        store.save_scores(scorer.fingerprint, scorer.score(batch))
        done += len(batch)
        if progress:
            progress(len(batch))
    return done


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _values(scorer: Scorer, texts: list[str]) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = [dict(v) for v in scorer.score(texts)]
    labels = getattr(scorer, "detect", None)
    if callable(labels):  # a categorical scorer (language): its label goes with the scores
        for v, (code, _) in zip(values, labels(texts)):
            v["code"] = code
    return values


def _flatten(step: Step, scorer: Scorer, values: dict[str, Any]) -> dict[str, Any]:
    name = f"{step.field}.{step.scorer}" if step.field != "comment" else f"feedback.{step.scorer}"
    out: dict[str, Any] = {name: values.get(scorer.primary)}
    out.update({f"{name}.{k}": v for k, v in values.items() if k != scorer.primary and v not in (0, 0.0)})
    return out


def _feedback(r: StoredRequest) -> dict[str, Any]:
    rec = r.record
    out: dict[str, Any] = {}
    if rec.thumb is not None:
        out["feedback.thumb"] = rec.thumb
    if rec.feedback_score is not None:
        out["feedback.score"] = rec.feedback_score
    return out


def _text(r: StoredRequest, field_name: str) -> str | None:
    rec = r.record
    return {"prompt": rec.prompt, "response": rec.response, "comment": rec.feedback_comment}[field_name]


def _build(step: Step, lm: Backend | None) -> Scorer:
    if step.scorer == "perplexity":
        from lmcritic.scorers.perplexity import PerplexityScorer

        return PerplexityScorer(lm)
    return get_scorer(step.scorer, **step.options)


def _model_fp(lm: Backend | None) -> str | None:
    return lm.fingerprint() if lm is not None else None


def parse_steps(items: Iterable[Any]) -> tuple[Step, ...]:
    """Steps from YAML: ``"response.pii"`` strings or ``{field, scorer, options}`` mappings."""
    out = []
    for item in items:
        if isinstance(item, str):
            fld, _, name = item.partition(".")
            out.append(Step(fld, name))
        elif isinstance(item, dict):
            out.append(Step(str(item.get("field")), str(item.get("scorer")), dict(item.get("options") or {})))
        else:
            raise ConfigError(f"bad monitor scorer step {item!r}", "use 'field.scorer' or {field, scorer, options}")
    return tuple(out)


__all__: Sequence[str] = ("DEFAULT_STEPS", "RequestScorer", "ScoringConfig", "Step", "score_store")
