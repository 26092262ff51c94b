"""The monitor in one call each: score what is new, check it, and build a reference from a pre-deployment run."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from lmcritic.monitor import alerts as al
from lmcritic.monitor.check import CheckConfig, Checker, CheckResult
from lmcritic.monitor.scoring import RequestScorer, ScoringConfig, score_store
from lmcritic.monitor.windows import WindowAcc
from lmcritic.store.monitor import MonitorStore

if TYPE_CHECKING:
    from lmcritic.store.runs import RunStore

OUTPUT_KEYS = ("answer", "generation", "completion", "text", "response", "output")


def build_scorer(store: MonitorStore, config: ScoringConfig = ScoringConfig(),
                 cache_path: str | Path | None = None) -> RequestScorer:
    """The request scorer, with the scoring model (for perplexity) loaded behind the call cache when named."""
    lm = None
    if config.model:
        from lmcritic.backends import ModelSpec, load_model
        from lmcritic.runner import lmcritic_home
        from lmcritic.store.cache import CachedBackend

        inner = load_model(ModelSpec(config.model, config.backend))
        lm = CachedBackend(inner, cache_path or lmcritic_home() / "cache.sqlite")
    return RequestScorer(config, store, lm)


def check_store(store: MonitorStore, scorer: RequestScorer, config: CheckConfig = CheckConfig(),
                rules: Sequence[al.Rule] = (), run_store: RunStore | None = None,
                progress: Callable[[int], None] | None = None) -> CheckResult:
    """Score every new request, then run the check (``run:RUN`` references read ``run_store``)."""
    from lmcritic.monitor.check import _reference_mode
    from lmcritic.monitor.embed import StoreEmbedder

    score_store(store, scorer, progress=progress)
    mode, arg = _reference_mode(config.reference)
    reference: WindowAcc | None = None
    extra: dict[int, dict[str, str | None]] = {}
    checker = Checker(store, scorer.fingerprint, config, rules)
    if mode == "run":
        from lmcritic.results import open_store  # no store given: the default one, as `lmcritic monitor` reads

        reference, extra = run_reference(open_store(run_store, create=False), arg, scorer, checker)
    checker = Checker(store, scorer.fingerprint, config, rules, StoreEmbedder(store, extra), reference)
    result = checker.run()
    skipped = tuple(f"scorer {k} skipped: {v}" for k, v in scorer.skipped.items())
    return CheckResult(result.window, result.reference, result.scorer, result.rules, result.windows,
                       skipped + result.notes)


def run_reference(run_store: RunStore, ref: str, scorer: RequestScorer, checker: Checker
                  ) -> tuple[WindowAcc, dict[int, dict[str, str | None]]]:
    """A pre-deployment run's inputs (and generated outputs) scored like traffic: the reference window."""
    from lmcritic.errors import ConfigError

    run_id = run_store.resolve(ref)
    texts: list[dict[str, str | None]] = []
    for key in run_store.record_keys(run_id):
        for r in run_store.records(run_id, key):
            prompt = r.text
            if prompt:
                texts.append({"prompt": prompt, "response": _output_text(r.output)})
    if not texts:
        raise ConfigError(f"run {run_id} has no records with input text to use as a reference")
    scores = scorer.score_texts({"prompt": [t["prompt"] for t in texts], "response": [t["response"] for t in texts]})
    acc = WindowAcc(-1, 0.0, 0.0)
    extra = {}
    for i, (t, s) in enumerate(zip(texts, scores)):
        rid = -(i + 1)
        extra[rid] = t
        acc.add(rid, s, {}, checker.metrics, checker.groups)
    return acc, extra


def _output_text(output: object) -> str | None:
    if isinstance(output, dict):
        for key in OUTPUT_KEYS:
            if isinstance(output.get(key), str):
                return output[key]
    return None


__all__: Sequence[str] = ("build_scorer", "check_store", "run_reference")
