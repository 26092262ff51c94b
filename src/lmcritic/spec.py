"""Run specs: what to critique and how, as YAML or JSON that replays exactly.

A spec names the model, the probes (each with its config) and the budget. ``RunSpec.to_dict`` writes the
fully resolved spec (defaults filled in) into the run store, so ``lmcritic run --replay RUN`` repeats it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from lmcritic.backends import DEFAULT_MODEL, ModelSpec
from lmcritic.errors import ConfigError, did_you_mean

DEFAULT_SUITE_FILE = "suites/default.yaml"  # package data: the probes and stages of `lmcritic scan`


def default_suite() -> tuple[tuple["ProbeSpec", ...], tuple["StageSpec", ...]]:
    """The default suite's probes (with their scan-sized configs) and stages."""
    from importlib import resources

    text = resources.files("lmcritic").joinpath(DEFAULT_SUITE_FILE).read_text(encoding="utf-8")
    import yaml

    data = yaml.safe_load(text) or {}
    probes = tuple(_probe(p, DEFAULT_SUITE_FILE, i) for i, p in enumerate(data.get("probes") or ()))
    stages = tuple(_stage(s, DEFAULT_SUITE_FILE, i) for i, s in enumerate(data.get("stages") or ()))
    return probes, stages


def scan_spec(model: ModelSpec | dict[str, Any], probes: Sequence[Any] | None = None,
              overrides: Mapping[str, Mapping[str, Any]] | None = None, stages: bool | Sequence[Any] = True,
              budget: Mapping[str, Any] | None = None, name: str | None = None,
              source: str = "scan") -> "RunSpec":
    """The run of ``lmcritic scan`` (command line and ``lmcritic.scan``): the default suite, or the chosen
    ``probes`` (names or keys pick suite probes with their scan-sized configs, in suite order; other names,
    ``{name, config, key}`` entries and :class:`ProbeSpec` are added after), ``overrides`` (probe key →
    options, text converted like ``--set``) on top, and the suite's stages (``stages=True``), none, or those
    given."""
    suite, suite_stages = default_suite()
    chosen = _chosen(probes, suite, source)
    overrides = overrides or {}
    keys = [p.key for p in chosen]
    for key in overrides:
        if key not in keys:
            raise ConfigError(f"{source}: options for probe {key!r}, which is not in this run",
                              did_you_mean(key, keys, f"probes: {', '.join(keys)}"))
    stage_list = list(suite_stages) if stages is True else list(stages or ())
    model_data = model if isinstance(model, dict) else {"name": model.name, "backend": model.backend,
                                                        "options": dict(model.options)}
    data = {"model": model_data, "budget": dict(budget or {}), "name": name,
            "probes": [{"name": p.name, "key": p.key, "config": {**p.config, **dict(overrides.get(p.key, {}))}}
                       for p in chosen],
            "stages": [_stage_for(s, keys) for s in stage_list]}
    return RunSpec.from_dict(data, source=source)


def _stage_for(stage: Any, keys: Sequence[str]) -> Any:
    """A suite stage for the chosen probes: its ``probes`` list keeps those in the run (a scan of two probes had
    its diagnosis fail on the suite's others: "run … has no probe 'mc_knowledge'")."""
    if isinstance(stage, str):
        return stage
    raw = stage if isinstance(stage, dict) else {"name": stage.name, "config": stage.config}
    config = dict(raw.get("config") or {})
    if isinstance(config.get("probes"), list):
        config["probes"] = [k for k in config["probes"] if k in keys]
    return {**raw, "config": config}


def _chosen(probes: Sequence[Any] | None, suite: Sequence["ProbeSpec"], source: str) -> list["ProbeSpec"]:
    """Text entries are patterns (a name, key, area or glob: ``safety.*``): the matching suite probes with their
    scan-sized configs, then matching registered probes outside the suite; other entries are added as given."""
    from lmcritic.probes._select import select

    if not probes:
        return list(suite)
    patterns = [p for p in probes if isinstance(p, str)]
    out = select(patterns, suite) if patterns else []
    out += [ProbeSpec(n) for n in _registered(patterns) if not any(n in (p.name, p.key) for p in out)]
    return out + [p if isinstance(p, ProbeSpec) else _probe(p, source, i)
                  for i, p in enumerate(probes) if not isinstance(p, str)]


def _registered(patterns: list[str]) -> list[str]:
    """Registered probes matching the patterns; an exact name that is not registered is kept, so the spec
    check names it with a did-you-mean."""
    from lmcritic.probes import PROBES
    from lmcritic.probes._select import matches

    names = [n for n in PROBES.names() if any(matches(p, n) for p in patterns)]
    exact = [p for p in patterns if not any(ch in p for ch in "*?[") and "." in p and p not in names]
    return names + exact


@dataclass(frozen=True)
class ProbeSpec:
    """One probe of a run. ``key`` tells apart two uses of the same probe with different configs."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)


@dataclass(frozen=True)
class StageSpec:
    """Work after the probes that reads their records (see :mod:`lmcritic.stages`)."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BudgetSpec:
    """Caps on work that reaches the model (cache hits are free)."""

    max_queries: int | None = None
    max_tokens: int | None = None


ENGINES = ("local", "ray")


@dataclass(frozen=True)
class ParallelSpec:
    """How many probes run at once (a sharded scan, :mod:`lmcritic.sharding`): ``workers`` processes, each
    with its own copy of the model, on this machine (``engine: local``) or as Ray actors (``engine: ray``,
    each reserving ``num_cpus``/``num_gpus``; ``address`` or ``$RAY_ADDRESS``, else a local Ray instance).
    A worker that dies is replaced ``max_restarts`` times in all. ``workers: 1`` runs in this process."""

    workers: int = 1
    engine: str = "local"
    num_cpus: float = 1
    num_gpus: float = 0
    address: str | None = None
    max_restarts: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1:
            raise ConfigError(f"parallel.workers must be a whole number >= 1, got {self.workers!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"parallel.engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise ConfigError(f"parallel.max_restarts must be a whole number >= 0, got {self.max_restarts!r}")
        for name in ("num_cpus", "num_gpus"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"parallel.{name} must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class RunSpec:
    model: ModelSpec = field(default_factory=ModelSpec)
    probes: tuple[ProbeSpec, ...] = ()
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    seed: int = 0
    name: str | None = None
    stages: tuple[StageSpec, ...] = ()
    parallel: ParallelSpec = field(default_factory=ParallelSpec)

    @classmethod
    def default(cls, model: str = DEFAULT_MODEL, **overrides: Any) -> "RunSpec":
        """The default suite (``lmcritic scan``)."""
        probes, stages = default_suite()
        return cls(model=ModelSpec(name=model), probes=probes, stages=stages, **overrides)

    @classmethod
    def from_dict(cls, data: object, source: str = "spec") -> "RunSpec":
        """Validate and build; errors name the offending key and suggest the right one."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a run spec must be a mapping, got {type(data).__name__}")
        _check_keys(data, cls, source)
        model = _model(data.get("model", DEFAULT_MODEL), source)
        probes = tuple(_probe(p, source, i) for i, p in enumerate(data.get("probes") or ()))
        budget = _budget(data.get("budget") or {}, source)
        seed = data.get("seed", 0)
        if not isinstance(seed, int):
            raise ConfigError(f"{source}: seed must be an integer, got {seed!r}")
        stages = tuple(_stage(s, source, i) for i, s in enumerate(data.get("stages") or ()))
        spec = cls(model=model, probes=probes, budget=budget, seed=seed, name=data.get("name"), stages=stages,
                   parallel=_parallel(data.get("parallel", {}), source))
        spec.validate(source)
        return spec

    @classmethod
    def from_file(cls, path: str | Path) -> "RunSpec":
        """Load a ``.yaml``/``.yml``/``.json`` spec file."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"spec file {str(p)!r} not found", "give the path of a .yaml or .json run spec")
        from lmcritic.datasets import read_spec

        return cls.from_dict(read_spec(p), source=str(p))

    def validate(self, source: str = "spec") -> None:
        """Probe names exist, keys are unique, and every probe config builds."""
        from lmcritic.probes import PROBES

        seen: set[str] = set()
        for p in self.probes:
            if p.key in seen:
                raise ConfigError(f"{source}: probe key {p.key!r} is used twice", "give each a distinct 'key'")
            seen.add(p.key)
            if p.name not in PROBES:
                raise ConfigError(f"{source}: {PROBES.unknown_message(p.name)}")
            PROBES.get(p.name)(**p.config)  # builds the typed config: bad options fail here, before model load
        if not self.probes:
            raise ConfigError(f"{source}: no probes", "add e.g. probes: [performance.sst2]")
        from lmcritic.stages import STAGES, check_config

        for st in self.stages:
            if st.name not in STAGES:
                raise ConfigError(f"{source}: {STAGES.unknown_message(st.name)}")
            check_config(st.name, st.config)

    def resolved(self) -> "RunSpec":
        """The same spec with every probe's defaults written out (what the store keeps)."""
        from lmcritic.probes import PROBES
        from lmcritic.probes.base import config_dict

        probes = tuple(
            ProbeSpec(p.name, config_dict(PROBES.get(p.name)(**p.config).config), p.key) for p in self.probes
        )
        return RunSpec(self.model, probes, self.budget, self.seed, self.name, self.stages, self.parallel)

    def to_dict(self) -> dict[str, Any]:
        from lmcritic._serde import to_jsonable

        return to_jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _check_keys(data: dict[str, Any], cls: type, source: str) -> None:
    known = [f.name for f in fields(cls)]
    for key in data:
        if key not in known:
            raise ConfigError(f"{source}: unknown key {key!r}",
                              did_you_mean(key, known, f"known keys: {', '.join(known)}"))


def _model(value: object, source: str) -> ModelSpec:
    if isinstance(value, str):
        return ModelSpec(name=value)
    if isinstance(value, dict):
        _check_keys(value, ModelSpec, f"{source}: model")
        return ModelSpec(value.get("name", DEFAULT_MODEL), value.get("backend"), dict(value.get("options") or {}))
    raise ConfigError(f"{source}: model must be a name or a mapping with name/backend/options")


def _probe(value: object, source: str, index: int) -> ProbeSpec:
    return _named(value, ProbeSpec, source, f"probes[{index}]", "probe")


def _stage(value: object, source: str, index: int) -> StageSpec:
    return _named(value, StageSpec, source, f"stages[{index}]", "stage")


def _named(value: object, cls: type, source: str, where: str, kind: str) -> Any:
    """A list entry given as ``name`` or ``{name, config[, key]}``, built as ``cls``."""
    if isinstance(value, str):
        return cls(value)
    if isinstance(value, dict) and "name" in value:
        _check_keys(value, cls, f"{source}: {where}")
        config = value.get("config") or {}
        if not isinstance(config, dict):
            raise ConfigError(f"{source}: {where}.config must be a mapping")
        extra = {"key": value.get("key") or ""} if "key" in {f.name for f in fields(cls)} else {}
        return cls(value["name"], dict(config), **extra)
    raise ConfigError(f"{source}: {where} must be a {kind} name or a mapping with 'name'")


def _budget(value: object, source: str) -> BudgetSpec:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: budget must be a mapping with max_queries/max_tokens")
    _check_keys(value, BudgetSpec, f"{source}: budget")
    for k, v in value.items():
        if v is not None and (not isinstance(v, int) or v <= 0):
            raise ConfigError(f"{source}: budget.{k} must be a positive integer, got {v!r}")
    return BudgetSpec(**value)


def _parallel(value: object, source: str) -> ParallelSpec:
    """``parallel: 4`` (workers) or ``parallel: {workers, engine, num_cpus, num_gpus, address, max_restarts}``."""
    if value is None:
        value = {}
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"workers": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: parallel must be a number of workers or a mapping with workers/engine/...")
    _check_keys(value, ParallelSpec, f"{source}: parallel")
    return ParallelSpec(**value)
