"""Task specs: what data, which prompt, which output type, which metrics — one YAML/JSON file per task.

A spec is validated in full when it is loaded (unknown keys and metric names get a "did you mean"), so a
typo fails before a model is loaded. Field-or-template rule (as lm-eval's ``doc_to_*``): a ``prompt``,
``target`` or ``choices`` string that is exactly a column name means that column's raw value; any other
string is a Jinja template rendered against the row (sandboxed, undefined names are errors).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lmcritic.datasets import read_spec
from lmcritic.errors import ConfigError, did_you_mean

OUTPUT_TYPES = ("multiple_choice", "classification", "generate", "perplexity")
# Metrics a task type computes itself (not through the METRICS registry).
OWN_METRICS = {
    "multiple_choice": ("acc", "acc_norm", "acc_bytes", "acc_mutual_info"),
    "classification": ("acc",),
    "generate": (),
    "perplexity": ("word_perplexity", "byte_perplexity", "bits_per_byte", "token_perplexity"),
}
DEFAULT_METRICS = {
    "multiple_choice": ("acc", "acc_norm"),
    "classification": ("acc", "macro_f1", "ece"),
    "generate": ("exact_match", "token_f1"),
    "perplexity": ("word_perplexity", "byte_perplexity", "bits_per_byte"),
}
# Columns each output type offers to registry metrics (see lmcritic.metrics: a metric names its inputs).
COLUMNS = {
    "multiple_choice": ("predictions", "references", "confidences", "correct", "probs", "labels"),
    "classification": ("predictions", "references", "confidences", "correct", "probs", "labels"),
    "generate": ("predictions", "references"),
    "perplexity": (),
}
CLASSIFIERS = ("auto", "loglikelihood", "head")
PACKAGED_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class DataSource:
    """Where rows come from: a local ``path`` (.jsonl/.csv/.tsv) or a Hugging Face dataset ``hf``."""

    path: str | None = None
    hf: str | None = None  # datasets.load_dataset(hf, name, split=split, **hf_kwargs)
    name: str | None = None
    split: str | None = None
    revision: str | None = None
    hf_kwargs: dict[str, Any] = field(default_factory=dict)
    source_name: str | None = None  # the ``source`` tag of records (default: path or hf name)
    line_column: str | None = None  # a column holding the row's line in an original file (for the ``line`` tag)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.hf is None):
            raise ValueError("give exactly one of 'path' (a local .jsonl/.csv/.tsv) or 'hf' (a dataset name)")
        if self.hf is not None and not self.split:
            raise ValueError(f"hf dataset {self.hf!r} needs a 'split' (e.g. validation)")

    def describe(self) -> str:
        if self.source_name:
            return self.source_name
        if self.path is not None:
            return self.path
        return f"hf:{self.hf}" + (f"/{self.name}" if self.name else "") + f":{self.split}"


@dataclass(frozen=True)
class FewShot:
    """Few-shot examples put before every prompt: ``n`` rows from ``path``/``split`` (default: the task's
    own data, the shots then removed from the evaluated rows), seeded, joined by ``separator``."""

    n: int = 0
    path: str | None = None
    split: str | None = None  # another split of the same hf dataset
    seed: int = 1234
    sampler: str = "random"  # random (seeded) | first_n (in file order, as lm-eval's first_n sampler)
    separator: str = "\n\n"

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"fewshot.n must be >= 0, got {self.n}")
        if self.path and self.split:
            raise ValueError("fewshot: give 'path' or 'split', not both")
        if self.sampler not in ("random", "first_n"):
            raise ValueError(f"fewshot.sampler must be random or first_n, got {self.sampler!r}")


@dataclass(frozen=True)
class Generation:
    """Greedy decoding settings for ``output_type: generate``."""

    max_new_tokens: int = 32
    stop: tuple[str, ...] = ("\n",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.max_new_tokens < 1:
            raise ValueError("generation.max_new_tokens must be >= 1")


@dataclass(frozen=True)
class Rolling:
    """Sliding window for ``output_type: perplexity``; stride = window reproduces lm-eval's disjoint windows."""

    window: int | None = None
    stride: int | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One evaluation task. See the module docstring for the field-or-template rule."""

    name: str
    output_type: str
    data: DataSource
    prompt: str = ""  # doc_to_text; for perplexity the text to score
    text: str | None = None  # classification: what a classifier head reads (default: the prompt's one column)
    target: str | None = None  # doc_to_target: gold choice index/text, class, or reference answer(s)
    choices: str | tuple[str, ...] | None = None  # multiple_choice: a list column/template, or per-choice templates
    labels: dict[str, str] = field(default_factory=dict)  # classification: class value -> label word
    label_map: dict[str, str] = field(default_factory=dict)  # classifier head: model label -> class value
    classifier: str = "auto"  # auto | loglikelihood (label words) | head (backend.classify)
    description: str = ""  # a template put once before the few-shot examples
    target_delimiter: str = " "
    fewshot: FewShot = field(default_factory=FewShot)
    metrics: tuple[str, ...] = ()
    thresholds: dict[str, float] = field(default_factory=dict)  # min (max for lower-is-better) per metric
    tags: tuple[str, ...] = ()  # columns copied into each record's tags (JSON scalars), for slicing
    generation: Generation = field(default_factory=Generation)
    rolling: Rolling = field(default_factory=Rolling)
    source: str = ""  # the file the spec came from (relative data paths resolve against its folder)

    def __post_init__(self) -> None:
        if self.output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type {self.output_type!r} is not one of {', '.join(OUTPUT_TYPES)}"
                             + _close(self.output_type, OUTPUT_TYPES))
        if isinstance(self.choices, list):
            object.__setattr__(self, "choices", tuple(self.choices))
        object.__setattr__(self, "metrics", tuple(self.metrics or DEFAULT_METRICS[self.output_type]))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "labels", {str(k): str(v) for k, v in self.labels.items()})
        object.__setattr__(self, "label_map", {str(k): str(v) for k, v in self.label_map.items()})
        self._check_parts()
        check_metrics(self.output_type, self.metrics, self.thresholds)

    def _check_parts(self) -> None:
        kind = self.output_type
        if not self.prompt:
            raise ValueError("'prompt' is required (a column name or a Jinja template)")
        if kind != "perplexity" and self.target is None:
            raise ValueError(f"{kind} needs 'target' (a column name or a Jinja template)")
        if kind == "multiple_choice" and not self.choices:
            raise ValueError("multiple_choice needs 'choices' (a list column, a template, or a list of templates)")
        if kind == "classification" and len(self.labels) < 2:
            raise ValueError("classification needs 'labels': at least two {class value: label word} entries")
        if kind == "perplexity" and self.fewshot.n:
            raise ValueError("perplexity scores whole texts; few-shot examples do not apply (set fewshot.n: 0)")
        if self.classifier != "auto" and kind != "classification":
            raise ValueError(f"'classifier' applies to classification only, not {kind}")
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {self.classifier!r}")

    def resolve_path(self, path: str) -> Path:
        """A data path from the spec: absolute, or relative to the spec file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() or not self.source else Path(self.source).parent / p

    def to_dict(self) -> dict[str, Any]:
        from lmcritic._serde import to_jsonable

        return to_jsonable(self)

    def fingerprint(self) -> str:
        """Content hash of the resolved spec (stored with findings so a changed task is visible)."""
        from lmcritic._serde import stable_hash

        return stable_hash({k: v for k, v in self.to_dict().items() if k != "source"})[:16]


def check_metrics(output_type: str, metrics: tuple[str, ...], thresholds: Mapping[str, float]) -> None:
    """Every metric is a task metric of this type or a registry metric whose inputs the type provides."""
    from lmcritic.metrics import METRICS

    own = OWN_METRICS[output_type]
    known = sorted(set(own) | {m for m in METRICS.names() if set(METRICS.get(m).inputs) <= set(COLUMNS[output_type])})
    for name in (*metrics, *thresholds):
        if name in own:
            continue
        if name not in known:
            where = "" if name not in METRICS else f" (it needs columns {', '.join(METRICS.get(name).inputs)})"
            raise ValueError(f"metric {name!r} does not apply to {output_type}{where}" + _close(name, known))
    for name in thresholds:
        if name not in metrics:
            raise ValueError(f"threshold for {name!r} but it is not in metrics; add it to 'metrics'")


def from_dict(data: object, source: str = "task") -> TaskSpec:
    """Build a :class:`TaskSpec` from parsed YAML/JSON, naming the bad key and the fix."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a task spec must be a mapping, got {type(data).__name__}")
    data = dict(data)
    parts = {"data": DataSource, "fewshot": FewShot, "generation": Generation, "rolling": Rolling}
    _check_keys(data, TaskSpec, source, "task")
    for key, cls in parts.items():
        if key in data:
            data[key] = _part(cls, data[key], f"{source}: {key}")
    if "data" not in data:
        raise ConfigError(f"{source}: no 'data'", "add data: {path: rows.jsonl} or data: {hf: NAME, split: ...}")
    data.setdefault("name", Path(source).stem if source != "task" else "task")
    data.setdefault("source", source if Path(source).is_file() else "")
    try:
        return TaskSpec(**data)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source}: {err}") from None


def _part(cls: type, value: object, where: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
    _check_keys(value, cls, where, "option")
    try:
        return cls(**value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def _check_keys(data: Mapping[str, Any], cls: type, where: str, what: str) -> None:
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown {what} {key!r}" + _close(key, known, f"known: {', '.join(known)}"))


def _close(name: str, options: Any, fallback: str = "") -> str:
    hint = did_you_mean(name, options, fallback)
    return f"; {hint}" if hint else ""


# -- loading -------------------------------------------------------------------------------------------
def packaged_tasks() -> list[str]:
    """Names of the task specs shipped in ``lmcritic/data/tasks``."""
    from lmcritic.datasets import packaged

    folder = packaged("tasks")
    return sorted(p.stem for p in folder.iterdir() if p.suffix in PACKAGED_SUFFIXES) if folder.is_dir() else []


def find_task(ref: str) -> Path:
    """A task file path, or the name of a packaged task."""
    from lmcritic.datasets import packaged

    p = Path(ref).expanduser()
    if p.is_file():
        return p
    for suffix in PACKAGED_SUFFIXES:
        cand = packaged("tasks") / f"{ref}{suffix}"
        if cand.is_file():
            return cand
    names = packaged_tasks()
    raise ConfigError(f"task {ref!r} is neither a file nor a packaged task" + _close(ref, names),
                      f"packaged: {', '.join(names) or 'none'}; or give the path of a .yaml/.json task spec")


def load_task(ref: str | Path | Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> TaskSpec:
    """Load a task spec from a path, a packaged name, or a mapping; ``overrides`` are deep-merged first."""
    if isinstance(ref, Mapping):
        raw, source = dict(ref), "task"
    else:
        path = find_task(str(ref))
        raw, source = read_spec(path), str(path)
    if overrides:
        raw = merge(raw if isinstance(raw, dict) else {}, overrides)
    return from_dict(raw, source)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: nested mappings merge key by key; anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, val in over.items():
        if isinstance(val, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


