"""Critique a model from Python: ``lmcritic.scan(model)`` and ``lmcritic.run(spec, model=...)``.

The model may be a loaded transformers model with its tokenizer, a ``transformers.pipeline``, a plain
function, a backend, or a name/path (see :mod:`lmcritic.backends.objects`). The run goes through the same
:class:`~lmcritic.runner.Runner` into the same run store (default ``$LMCRITIC_HOME``) as the command line,
so ``lmcritic show/report/diff`` work on it, and the same call cache, so a rerun or a resume recomputes
nothing. Both return a :class:`~lmcritic.results.Results`.

How a run that did not simply finish is surfaced (``strict=False``, the default):

- ``done``: returned.
- ``partial`` (some probes, stages or cases failed) or ``interrupted`` by the budget: returned, with a
  :class:`~lmcritic.errors.RunWarning` naming what did not run; ``results.errors`` lists every reason and
  ``results.resume()`` retries (with a larger ``budget=`` for a budget stop).
- ``failed`` (nothing was measured): :class:`~lmcritic.errors.RunFailed`, whose ``results`` is the stored run.
- Ctrl-C / kernel interrupt / SIGTERM: the run is stored as ``interrupted`` and ``KeyboardInterrupt`` is
  raised again, so a script or a cell stops as it should.

``strict=True`` raises :class:`RunFailed` for anything but ``done`` (for CI and test suites).
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from lmcritic.errors import ConfigError, RunFailed, RunWarning

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend
    from lmcritic.results import Results
    from lmcritic.spec import RunSpec
    from lmcritic.store.runs import RunStore

def scan(model: object = None, *, tokenizer: object = None, probes: Sequence[Any] | None = None,
         config: Mapping[str, Mapping[str, Any]] | None = None, stages: bool | Sequence[Any] = True,
         budget: int | Mapping[str, Any] | None = None, store: "RunStore | str | Path | None" = None,
         cache: str | Path | None = None, options: Mapping[str, Any] | None = None, name: str | None = None,
         progress: bool = True, strict: bool = False, data: str | Path | None = None,
         train: str | Path | None = None) -> "Results":
    """Run the default suite (``lmcritic scan``), or the chosen ``probes``, on ``model``.

    Args:
        model: a transformers model (with ``tokenizer=``, or as a ``(model, tokenizer)`` tuple), a pipeline, a
            function (``options={"task": "classify", "labels": [...]}`` for a classifier), a backend, or a
            known name / folder / .gguf / hub id (default: ``smollm2-135m``).
        probes: probe names (suite probes keep their scan-sized configs), ``{name, config, key}`` entries or
            :class:`~lmcritic.spec.ProbeSpec`; None: the whole default suite.
        config: per-probe options on top, by probe key: ``{"performance.sst2": {"n": 50}}``.
        stages: True: the suite's stages (explain the worst failures, diagnose); False: none; or a list.
        budget: model calls that may miss the cache (an int), or ``{max_queries, max_tokens}``.
        store, cache: the run store (a path or a :class:`RunStore`) and the call cache; default under
            ``$LMCRITIC_HOME``.
        options: backend options (see :func:`lmcritic.backends.objects.as_backend`); name: the model's label.
        strict: raise :class:`RunFailed` unless every probe and stage ran (see the module docstring).
        data, train: as ``scan --data/--train``: labelled rows of the model's own task (another task than
            sentiment becomes an inline ``performance.task``: see :mod:`lmcritic._user_data`), its training corpus.
    """
    from lmcritic._user_data import with_user_data
    from lmcritic.backends import DEFAULT_MODEL
    from lmcritic.backends.objects import as_backend
    from lmcritic.probes._label_map import classifier_labels
    from lmcritic.spec import scan_spec

    backend, model_spec = as_backend(DEFAULT_MODEL if model is None else model, tokenizer, options, name)
    spec = scan_spec(model_spec, probes, config, stages, _budget(budget), source="lmcritic.scan")
    if data is not None or train is not None:
        heads = classifier_labels(backend) if data else None
        spec = with_user_data(spec, data, train, heads, _own_options(spec, config))
    return _execute(spec, backend, store, cache, progress, strict)


def _own_options(spec: "RunSpec", config: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """The options the caller set on each chosen probe, as the spec holds them (they win over ``data``)."""
    return {p.key: {k: p.config[k] for k in (config or {}).get(p.key, {}) if k in p.config} for p in spec.probes}


def run(spec: "RunSpec | Mapping[str, Any] | str | Path | None" = None, model: object = None, *,
        tokenizer: object = None, resume: str | None = None, budget: int | Mapping[str, Any] | None = None,
        store: "RunStore | str | Path | None" = None, cache: str | Path | None = None,
        options: Mapping[str, Any] | None = None, name: str | None = None, progress: bool = True,
        strict: bool = False) -> "Results":
    """Run a spec (a :class:`RunSpec`, a mapping as in a spec file, or a ``.yaml``/``.json`` path), or continue
    the stored run ``resume``. ``model`` replaces the spec's model (any form :func:`scan` takes); without it the
    spec's model is loaded (a resumed in-memory model must be passed again, unless it is still loaded)."""
    from lmcritic.backends import load_model
    from lmcritic.backends.objects import as_backend

    if (spec is None) == (resume is None):
        raise ConfigError("give exactly one of a spec or resume=RUN")
    resolved = _stored_spec(store, resume) if resume is not None else _spec(spec)
    if model is not None:
        backend, model_spec = as_backend(model, tokenizer, options, name)
        resolved = replace(resolved, model=model_spec)
    else:
        backend = load_model(resolved.model)
    if budget is not None:
        resolved = replace(resolved, budget=_budget_spec(budget))
    return _execute(resolved, backend, store, cache, progress, strict, resume=resume)


def _execute(spec: "RunSpec", backend: "Backend", store: "RunStore | str | Path | None", cache: str | Path | None,
             progress: bool, strict: bool, resume: str | None = None) -> "Results":
    from lmcritic.results import Results
    from lmcritic.runner import Runner
    from lmcritic.store.runs import RunStore

    runner = Runner(store.path if isinstance(store, RunStore) else store, cache, progress=progress)
    outcome = runner.run(spec, resume=resume, model=backend)
    results = Results(runner.store, outcome.run_id, model=backend, outcome=outcome, cache_path=runner.cache_path)
    _surface(results, outcome, strict)
    return results


def _surface(results: "Results", outcome: Any, strict: bool) -> None:
    """Return quietly, warn, or raise, as the module docstring says."""
    if outcome.status == "done":
        return
    why = f"run {outcome.run_id} {outcome.status}: {outcome.message}"
    if outcome.status == "interrupted" and outcome.interrupted_by == "signal":
        raise KeyboardInterrupt(why)
    if outcome.status == "failed" or strict:
        raise RunFailed(why + "".join(f"; {e}" for e in outcome.errors[:3]), results=results)
    warnings.warn(RunWarning(why + "".join(f"\n  {e}" for e in outcome.errors)), stacklevel=4)  # the caller's line


def _spec(value: object) -> "RunSpec":
    from lmcritic.spec import RunSpec

    if isinstance(value, RunSpec):
        return value
    if isinstance(value, Mapping):
        return RunSpec.from_dict(dict(value), source="lmcritic.run")
    if isinstance(value, (str, Path)):
        return RunSpec.from_file(value)
    raise ConfigError(f"lmcritic.run needs a RunSpec, a mapping or a spec file path, got {type(value).__name__}")


def _stored_spec(store: "RunStore | str | Path | None", run: str) -> "RunSpec":
    from lmcritic.results import open_store
    from lmcritic.spec import RunSpec

    return RunSpec.from_dict(open_store(store, create=False).get_run(run).spec, source=f"run {run}")


def _budget(budget: int | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if budget is None or isinstance(budget, Mapping):
        return dict(budget) if budget is not None else None
    return {"max_queries": budget}


def _budget_spec(budget: int | Mapping[str, Any]) -> Any:
    from lmcritic.spec import _budget as budget_spec

    return budget_spec(_budget(budget), "budget")


__all__ = ["run", "scan"]
