"""``diagnose_run``: from a finished run's records to a stored defect graph.

Steps: per probe, features → slices → defects; per defect, every registered hypothesis runs its tests
(edited cases re-scored through the run's cached, budgeted backend) and the causes are ranked; with a
training corpus, the nearest training examples are attached. Every extra record and the graph are stored
in the run (``diagnose.<hypothesis>`` records, ``diagnose`` findings), so reports show them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.diagnose.corpus import Corpus
from lmcritic.diagnose.defects import find_defects
from lmcritic.diagnose.features import compute_features
from lmcritic.diagnose.graph import DefectGraph, DefectNode, rank
from lmcritic.diagnose.hypotheses import HYPOTHESES
from lmcritic.diagnose.hypotheses.base import INCONCLUSIVE, CauseVerdict, DefectContext
from lmcritic.diagnose.rescore import Rescorer, build_probes
from lmcritic.diagnose.slices import SliceSearch
from lmcritic.errors import LmcriticError
from lmcritic.probes.base import Record
from lmcritic.stages import EXPLANATIONS_KEY

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend
    from lmcritic.store.runs import RunStore


@dataclass(frozen=True)
class DiagnoseConfig:
    """How much to search and test. ``max_queries`` caps the extra cases the hypotheses re-score."""

    hypotheses: tuple[str, ...] | None = None  # None: every registered hypothesis
    probes: tuple[str, ...] | None = None  # None: every probe of the run with failures
    max_defects_per_probe: int = 3
    min_failures: int = 3
    max_cases: int = 24  # failing cases each hypothesis tests per defect
    max_queries: int | None = 4000
    perplexity: bool = True
    slice_k: int = 10
    max_level: int = 3
    min_size: int = 8
    neighbours: int = 3
    seed: int = 0


def diagnose_run(store: RunStore, run_id: str, model: Backend | None = None, *,
                 train: str | Path | Corpus | None = None, reference: str | Path | Corpus | None = None,
                 config: DiagnoseConfig = DiagnoseConfig(), cache_path: str | Path | None = None,
                 save: bool = True) -> DefectGraph:
    """Diagnose run ``run_id`` of ``store``; ``model`` None loads the run's model (cached, fingerprint-checked)."""
    run_id = store.resolve(run_id)
    info = store.get_run(run_id)
    notes: list[str] = []
    if model is None:
        model = _load(info, cache_path, notes)
    by_probe = _records(store, run_id, config)
    rescorer = Rescorer(model, build_probes(info.spec, list(by_probe)), config.max_queries) if model else None
    train_c, ref_c = _corpus(train), _corpus(reference)
    explanations = store.records(run_id, EXPLANATIONS_KEY) if _has_probe(store, run_id, EXPLANATIONS_KEY) else []
    nodes: list[DefectNode] = []
    slices: dict[str, tuple[Any, ...]] = {}
    t0 = time.perf_counter()
    for key, records in by_probe.items():
        table = compute_features(records, model, perplexity=config.perplexity)
        search = SliceSearch(config.slice_k, config.max_level, config.min_size)
        defects, top = find_defects(key, records, table, search, config.max_defects_per_probe,
                                    config.min_failures, start=len(nodes) + 1)
        slices[key] = tuple(top)
        for d in defects:
            ctx = DefectContext(d, records, table, rescorer, train_c, ref_c, explanations, config.max_cases,
                                config.seed)
            nodes.append(DefectNode(d, rank(_test_all(ctx, config, notes)), _neighbours(ctx, train_c, config)))
    if rescorer is not None:
        notes += rescorer.errors[:5]
    if rescorer is not None and rescorer.max_queries is not None and rescorer.spent >= rescorer.max_queries:
        notes.append(f"the diagnosis budget of {rescorer.max_queries} re-scored cases was spent; raise max_queries")
    graph = DefectGraph(run_id, _model_name(info.spec), tuple(nodes), slices, _settings(config, train_c, ref_c),
                        rescorer.spent if rescorer else 0, tuple(dict.fromkeys(notes)))
    if save:
        from lmcritic.diagnose.storage import save_graph

        save_graph(store, graph, rescorer.log if rescorer else {}, time.perf_counter() - t0)
    return graph


def _test_all(ctx: DefectContext, config: DiagnoseConfig, notes: list[str]) -> list[CauseVerdict]:
    out = []
    for name in config.hypotheses or HYPOTHESES.names():
        hyp = HYPOTHESES.get(name)()
        try:
            out.append(hyp.evaluate(ctx))
        except LmcriticError as err:
            out.append(CauseVerdict(name, INCONCLUSIVE, 0.2, f"test failed: {err}", mitigation=hyp.mitigation))
            notes.append(f"{name} on {ctx.defect.id}: {err}")
    return out


def _neighbours(ctx: DefectContext, corpus: Corpus | None, config: DiagnoseConfig) -> tuple:
    if corpus is None or not config.neighbours:
        return ()
    queries = [(r.case_id, r.text) for r in ctx.failing(5) if r.text]
    return tuple(corpus.nearest(queries, k=config.neighbours))


def _records(store: RunStore, run_id: str, config: DiagnoseConfig) -> dict[str, list[Record]]:
    out = {}
    for p in store.probe_runs(run_id, kind="probe"):
        if config.probes and p.probe_key not in config.probes:
            continue
        recs = store.records(run_id, p.probe_key)
        if sum(r.passed is False for r in recs) >= config.min_failures:
            out[p.probe_key] = recs
    return out


def _has_probe(store: RunStore, run_id: str, key: str) -> bool:
    return any(p.probe_key == key for p in store.probe_runs(run_id))


def _load(info: Any, cache_path: str | Path | None, notes: list[str]) -> Any:
    """The run's model behind the shared call cache, or None (hypotheses that need it say so)."""
    from lmcritic.backends import ModelSpec, load_model
    from lmcritic.runner import lmcritic_home
    from lmcritic.store.cache import CachedBackend

    m = info.spec.get("model") or {}
    try:
        inner = load_model(ModelSpec(str(m.get("name") or ""), m.get("backend"), dict(m.get("options") or {})))
    except LmcriticError as err:
        notes.append(f"model not loaded ({err}); tests that re-score cases were skipped")
        return None
    if inner.fingerprint() != info.model_fingerprint:
        notes.append("the loaded model's fingerprint differs from the run's (model files or lmcritic changed): "
                     "re-scored tests use the model as loaded now")
    return CachedBackend(inner, Path(cache_path) if cache_path else lmcritic_home() / "cache.sqlite")


def _corpus(value: str | Path | Corpus | None) -> Corpus | None:
    if value is None or isinstance(value, Corpus):
        return value
    return Corpus(value)


def _model_name(spec: dict) -> str:
    m = spec.get("model") or {}
    return str(m.get("name", "?")) if isinstance(m, dict) else str(m)


def _settings(config: DiagnoseConfig, train: Corpus | None, ref: Corpus | None) -> dict:
    from lmcritic._serde import to_jsonable

    return {"config": to_jsonable(config), "train": train.describe() if train else None,
            "reference": ref.describe() if ref else None}


def with_overrides(config: DiagnoseConfig, **values: Any) -> DiagnoseConfig:
    return replace(config, **{k: v for k, v in values.items() if v is not None})


__all__: Sequence[str] = ("DiagnoseConfig", "diagnose_run")
