"""``diagnose_run``: from a finished run's records to a stored defect graph.

Steps: per probe, features → honest slices → defects; with a training corpus, its profile (token–label
association, artefact tokens, identity skew, shift against the evaluated data, duplicates) and an insertion test
of candidate shortcut tokens on held-out inputs, whose confirmed tokens become defects of their own; per defect,
every registered hypothesis runs its tests (edited cases re-scored through the run's cached, budgeted backend);
then every cause's p-value is BH-corrected across the whole diagnosis and the verdicts, severities and the
diagnosis-wide ranking are decided (:mod:`calibrate`). Every extra record and the graph are stored in the run
(``diagnose.<hypothesis>`` records, ``diagnose`` findings), so reports show them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.diagnose import _text, calibrate
from lmcritic.diagnose.corpus import Corpus
from lmcritic.diagnose.defects import find_defects
from lmcritic.diagnose.features import FeatureTable, compute_features, input_text
from lmcritic.diagnose.graph import DefectGraph, DefectNode, ranking
from lmcritic.diagnose.hypotheses import HYPOTHESES
from lmcritic.diagnose.hypotheses.base import INCONCLUSIVE, SUPPORTED, CauseVerdict, DefectContext
from lmcritic.diagnose.rescore import Rescorer, build_probes
from lmcritic.diagnose.slices import SliceSearch
from lmcritic.errors import ConfigError, LmcriticError, did_you_mean
from lmcritic.probes.base import Record
from lmcritic.stages import EXPLANATIONS_KEY

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend
    from lmcritic.diagnose.profile import CorpusProfile
    from lmcritic.store.runs import RunInfo, RunStore

# Probes whose failures are not the model's answers on inputs as they come: adversarial search constructs them
# (any model has some), or they are corpus statistics.
NOT_DIAGNOSED = frozenset({"robustness.attack", "robustness.detect", "bias.data_skew"})
OWN_TASK = ("performance.sst2", "performance.task")


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

    def __post_init__(self) -> None:
        for name in ("max_defects_per_probe", "min_failures", "max_cases"):
            if getattr(self, name) < 1:
                raise ConfigError(f"diagnosis setting {name} must be at least 1, got {getattr(self, name)}",
                                  f"give {name} (--{name.replace('_', '-')}) of 1 or more")
        if self.max_queries is not None and self.max_queries < 0:
            raise ConfigError(f"diagnosis setting max_queries must be 0 or more, got {self.max_queries}",
                              "give --max-queries 0 (no extra model calls) or a positive budget")


def diagnose_run(store: RunStore, run_id: str, model: Backend | None = None, *,
                 train: str | Path | Corpus | None = None, reference: str | Path | Corpus | None = None,
                 config: DiagnoseConfig = DiagnoseConfig(), cache_path: str | Path | None = None,
                 save: bool = True) -> DefectGraph:
    """Diagnose run ``run_id`` of ``store``; ``model`` None loads the run's model (cached, fingerprint-checked)."""
    run_id = store.resolve(run_id)
    info = store.get_run(run_id)
    notes: list[str] = []
    if model is None:
        model = load_run_model(info, cache_path, notes)
    names = _probe_names(info.spec)
    by_probe = _records(store, run_id, config, names)
    eval_key, eval_records = _own_task(store, run_id, names)
    rescorer = Rescorer(model, build_probes(info.spec, [*by_probe, *([eval_key] if eval_key else [])]),
                        config.max_queries) if model else None
    train_c, ref_c = _corpus(train), _corpus(reference)
    for corpus in (train_c, ref_c):  # the reference corpus is read for memorised rows: its labels named alike
        _name_labels(corpus, eval_records)
    profile = _profile(train_c, eval_records)
    sentiment = _is_sentiment(eval_records)
    explanations = store.records(run_id, EXPLANATIONS_KEY) if _has_probe(store, run_id, EXPLANATIONS_KEY) else []
    t0 = time.perf_counter()
    tokens = _token_tests(profile, rescorer, eval_key, eval_records, sentiment, config, notes)
    extra = [t.token.token for t in tokens if not _text.is_phrase(t.token.token)]  # a phrase is no word column
    shared = dict(rescorer=rescorer, train=train_c, reference=ref_c, explanations=explanations,
                  max_cases=config.max_cases, seed=config.seed, profile=profile, eval_key=eval_key,
                  eval_records=eval_records, sentiment=sentiment, token_tests=tokens)
    noise = _noise_test(shared, eval_key, config)  # before the defects spend the re-scoring budget, like tokens
    found: list[tuple[Any, list[CauseVerdict], tuple]] = []
    slices = {}
    for key, records in by_probe.items():
        table = compute_features(records, model, perplexity=config.perplexity, extra_words=extra)
        search = SliceSearch(config.slice_k, config.max_level, config.min_size)
        defects, top = find_defects(key, records, table, search, config.max_defects_per_probe,
                                    config.min_failures, start=len(found) + 1)
        slices[key] = tuple(top)
        for d in defects:
            ctx = DefectContext(d, records, table, probe_name=names.get(key, key), **shared)
            found.append((d, _test_all(ctx, config, notes), _neighbours(ctx, train_c, config)))
    found += _token_nodes(tokens, eval_key, len(found) + 1)
    noise = _beyond_phenomena(noise, found, notes)
    found += [(replace(ctx.defect, id=f"D{len(found) + 1}"), [v], ()) for ctx, v in noise]
    verdicts = calibrate.explain(calibrate.finalize([v for _, v, _ in found]))
    nodes = tuple(DefectNode(d, calibrate.rank(v), nb) for (d, _, nb), v in zip(found, verdicts))
    graph = DefectGraph(run_id, _model_name(info.spec), nodes, slices,
                        _settings(config, train_c, ref_c, profile, sentiment), rescorer.spent if rescorer else 0,
                        tuple(dict.fromkeys(notes + _budget_notes(rescorer))), ranking(nodes))
    if save:
        from lmcritic.diagnose.storage import save_graph

        save_graph(store, graph, rescorer.log if rescorer else {}, time.perf_counter() - t0)
    return graph


def own_task_records(store: RunStore, run_id: str) -> list[Record]:
    """The run's records of its own task (labelled texts the model answered), [] when it has none."""
    return _own_task(store, run_id, _probe_names(store.get_run(run_id).spec))[1]


def artefact_candidates(corpus: Corpus, eval_records: Sequence[Record]) -> tuple[list[tuple[str, str]], str]:
    """The shortcut candidates the diagnosis would test in ``corpus`` (label-associated artefact tokens and
    trigger phrases, :func:`~lmcritic.diagnose.shortcuts.candidates`) against the evaluated texts, each with the
    label it is tied to, and how they were judged; computed from the corpus and the texts alone (no model)."""
    from lmcritic.diagnose.shortcuts import candidates

    if not corpus.named:
        _name_labels(corpus, eval_records)
    profile = _profile(corpus, eval_records)
    if profile is None or not profile.labelled or not eval_records:
        return [], ""
    found, how = candidates(profile, _is_sentiment(eval_records))
    return list(dict.fromkeys((t.token, str(t.label)) for t in found)), how


def _budget_notes(rescorer: Rescorer | None) -> list[str]:
    if rescorer is None:
        return []
    notes = rescorer.errors[:5]
    if rescorer.max_queries is not None and rescorer.spent >= rescorer.max_queries:
        notes.append(f"the diagnosis budget of {rescorer.max_queries} re-scored cases was spent; raise max_queries")
    return notes


def _profile(train: Corpus | None, eval_records: Sequence[Record]) -> Any:
    if train is None:
        return None
    from lmcritic.diagnose.profile import CorpusProfile

    texts = [input_text(r) or "" for r in eval_records]
    return CorpusProfile(train, texts, [_gold(r) for r in eval_records])


def _name_labels(train: Corpus | None, records: Sequence[Record]) -> None:
    """The corpus's labels named as the evaluated task's classes (its head's ids when they are integers)."""
    if train is None or not records:
        return
    classes = list(dict.fromkeys([*(records[0].label_probs or {}), *(r.target for r in records if r.target)]))
    out = records[0].output or {}
    if classes:  # each head label's class as the probe mapped it (label_map included); older runs: the head's names
        train.name_labels(classes, out.get("model_classes") or out.get("model_labels"))


def _gold(r: Record) -> str | None:
    return r.target


def _is_sentiment(records: Sequence[Record]) -> bool:
    golds = {_gold(r) for r in records} - {None}
    return bool(golds) and golds <= {"negative", "positive"}


def _token_tests(profile: CorpusProfile | None, rescorer: Rescorer | None, eval_key: str | None,
                 eval_records: Sequence[Record], sentiment: bool, config: "DiagnoseConfig", notes: list[str]) -> list:
    if profile is None or not profile.labelled:
        return []
    if rescorer is None or eval_key is None or not rescorer.can_rescore(eval_key, eval_records[0]):
        notes.append("shortcut tokens were not tested: the run has no own-task probe with texts, or no model")
        return []
    from lmcritic.diagnose.shortcuts import test_tokens

    return test_tokens(profile, rescorer, eval_key, eval_records, sentiment, config.seed)


def _token_nodes(tokens: list, eval_key: str | None, start: int) -> list[tuple[Any, list[CauseVerdict], tuple]]:
    """Each tested shortcut token with an effect is a defect of its own (found in the corpus, not by a probe)."""
    from lmcritic.diagnose.hypotheses.spurious import token_defect, token_verdict

    out: list[tuple[Any, list[CauseVerdict], tuple]] = []
    for t in tokens:
        v = token_verdict(t)
        if v.effect is not None and v.effect.value > 0 and (v.p_value or 1) < 0.05:
            out.append((token_defect(t, eval_key or "", f"D{start + len(out)}"), [v], ()))
    return out


def _noise_test(shared: dict[str, Any], eval_key: str | None,
                config: DiagnoseConfig) -> list[tuple[DefectContext, CauseVerdict]]:
    """Label noise across the whole training corpus, a defect of its own when it shows (found in the corpus
    against the evaluated gold labels, like a shortcut token; not a property of one probe's failures)."""
    from lmcritic.diagnose.hypotheses.label_noise import LabelNoise, noise_defect

    profile, records, rescorer = shared["profile"], shared["eval_records"], shared["rescorer"]
    wanted = config.hypotheses is None or "label_noise" in config.hypotheses
    if not wanted or profile is None or not profile.labelled or eval_key is None or not records or rescorer is None:
        return []
    probe = DefectContext(noise_defect(eval_key, records, "corpus"), records, FeatureTable((), {}),
                          probe_name=eval_key, **shared)
    v = LabelNoise().corpus_test(probe)
    return [(probe, v)] if _shows(v) else []


def _shows(v: CauseVerdict) -> bool:
    return v.effect is not None and v.effect.value > 0 and (v.p_value or 1) < 0.05


def _beyond_phenomena(noise: list[tuple[DefectContext, CauseVerdict]],
                      found: list[tuple[Any, list[CauseVerdict], tuple]],
                      notes: list[str]) -> list[tuple[DefectContext, CauseVerdict]]:
    """The whole-corpus label-noise test again without the rows of each phenomenon (negation, a word) whose label
    noise a defect's own cause supports: noise on one phenomenon is noise in the corpus too, and the corpus-wide
    claim is that labels are flipped beyond it. Kept (re-tested) when it still shows, dropped with a note when the
    phenomenon explains it (a directed-noise plant had both, the corpus-wide cause ranked first)."""
    from lmcritic.diagnose.hypotheses._phenomena import Phenomenon
    from lmcritic.diagnose.hypotheses.label_noise import LabelNoise

    phs = {c.culprit.value: ph for _, causes, _ in found for c in causes
           if c.cause == "label_noise" and c.verdict == SUPPORTED and c.culprit is not None
           and (ph := Phenomenon.from_data(c.culprit.data.get("phenomenon"))) is not None}
    if not noise or not phs:
        return noise
    ctx, v = noise[0]
    again = LabelNoise().corpus_test(replace(ctx, left_out=tuple(phs.values())))
    if _shows(again):
        return [(ctx, again)]
    names = ", ".join(phs)
    notes.append(f"label noise across the whole corpus (p={v.p_value:.2g}) is the label noise found on {names}: "
                 f"without those rows, p={again.p_value if again.p_value is not None else 1.0:.2g}")
    return []


def _test_all(ctx: DefectContext, config: DiagnoseConfig, notes: list[str]) -> list[CauseVerdict]:
    """Every hypothesis on one defect, run cheapest first (``budget_rank``: the re-scoring budget is shared, and a
    reader of training rows must not spend what the defect's own interventional tests need), listed by name."""
    names = list(config.hypotheses or HYPOTHESES.names())
    out: dict[str, CauseVerdict] = {}
    for name in sorted(names, key=lambda n: HYPOTHESES.get(n).budget_rank):  # stable: by name within a rank
        hyp = HYPOTHESES.get(name)()
        try:
            out[name] = hyp.evaluate(ctx)
        except LmcriticError as err:
            out[name] = CauseVerdict(name, INCONCLUSIVE, 0.2, f"test failed: {err}", mitigation=hyp.mitigation)
            notes.append(f"{name} on {ctx.defect.id}: {err}")
    return [out[n] for n in names]


def _neighbours(ctx: DefectContext, corpus: Corpus | None, config: DiagnoseConfig) -> tuple:
    if corpus is None or not config.neighbours:
        return ()
    queries = [(r.case_id, r.text) for r in ctx.failing(5) if r.text]
    return tuple(corpus.nearest(queries, k=config.neighbours))


def _probe_names(spec: dict) -> dict[str, str]:
    """Probe key → registry name, from the run's stored spec."""
    return {str(p.get("key") or p.get("name")): str(p.get("name")) for p in spec.get("probes") or ()}


def _own_task(store: RunStore, run_id: str, names: dict[str, str]) -> tuple[str | None, list[Record]]:
    """The probe that measured the model's own task (labelled texts): held-out inputs for the tests."""
    done = {p.probe_key for p in store.probe_runs(run_id, kind="probe") if p.status == "done"}
    for key, name in names.items():
        if name in OWN_TASK and key in done:
            recs = [r for r in store.records(run_id, key) if r.text and r.target is not None]
            if recs and all(isinstance(r.prediction, str) for r in recs[:5]):
                return key, recs
    return None, []


def _records(store: RunStore, run_id: str, config: DiagnoseConfig, names: dict[str, str]) -> dict[str, list[Record]]:
    runs = store.probe_runs(run_id, kind="probe")
    _check_probes(config.probes or (), [p.probe_key for p in runs], run_id)
    out = {}
    for p in runs:
        if config.probes and p.probe_key not in config.probes:
            continue
        if names.get(p.probe_key, p.probe_name) in NOT_DIAGNOSED and not config.probes:
            continue
        recs = store.records(run_id, p.probe_key)
        if sum(r.passed is False for r in recs) >= config.min_failures:
            out[p.probe_key] = recs
    return out


def _check_probes(wanted: Sequence[str], keys: list[str], run_id: str) -> None:
    """A misspelt --probe would otherwise diagnose nothing and report "no defects" with exit 0."""
    for key in wanted:
        if key not in keys:
            hint = did_you_mean(key, keys, "")
            raise ConfigError(f"run {run_id} has no probe {key!r}" + (f"; {hint}" if hint else ""),
                              f"its probes: {', '.join(keys)}")


def _has_probe(store: RunStore, run_id: str, key: str) -> bool:
    return any(p.probe_key == key for p in store.probe_runs(run_id))


def load_run_model(info: RunInfo, cache_path: str | Path | None, notes: list[str]) -> Any:
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


def _settings(config: DiagnoseConfig, train: Corpus | None, ref: Corpus | None, profile: CorpusProfile | None,
              sentiment: bool) -> dict:
    from lmcritic._serde import to_jsonable

    return {"config": to_jsonable(config), "train": train.describe() if train else None,
            "reference": ref.describe() if ref else None, "corpus": profile.describe() if profile else None,
            "sentiment_task": sentiment}


def with_overrides(config: DiagnoseConfig, **values: Any) -> DiagnoseConfig:
    return replace(config, **{k: v for k, v in values.items() if v is not None})


__all__: Sequence[str] = ("DiagnoseConfig", "artefact_candidates", "diagnose_run", "own_task_records")
