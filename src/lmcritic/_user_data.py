"""The user's rows in a scan (``lmcritic scan --data/--train``, ``lmcritic.scan(data=, train=)``), one place.

``data`` (labelled rows of the model's own task) goes to the probes whose ``data_role`` is ``eval``, ``train``
(its training corpus) to those whose role is ``train`` and to the diagnosis stage; options the user set win.

The packaged probes read ``--data`` as SST-2-style rows (0/1 sentiment). A topic, intent or toxicity classifier
evaluated that way failed every case ("classifier label 'profession' matches none of the task's classes").
When the rows' labels, or the local model's own label names, are not sentiment, the scan runs
``performance.task`` on an inline classification task instead: its classes are the classifier's label names
in logit order (Hugging Face's convention: an integer label is the head's id), else the rows' label values.
The probes that read any classifier (invariance, register shift, the attacks, counterfactual swaps) get those
classes with the rows and measure flips among them; the sentiment probes skip themselves before running (their
``not_applicable`` reads the head's labels).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from lmcritic.spec import ProbeSpec, RunSpec

KEY = "own_task"
TEXT_COLUMNS = ("text", "sentence")


def with_user_data(spec: RunSpec, data: str | Path | None, train: str | Path | None,
                   heads: Sequence[str] | None, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> RunSpec:
    """``spec`` with the user's rows in place (``overrides``: the user's own probe options, by key, which win);
    ``heads``: the classifier's label names in logit order when known (see :func:`own_task`)."""
    from dataclasses import replace

    from lmcritic.spec import StageSpec

    over = overrides or {}
    probes = tuple(replace(p, config={**p.config, **_data_option(p.name, data, train), **over.get(p.key, {})})
                   for p in spec.probes)
    stages = tuple(StageSpec(s.name, {**s.config, **({"train": _abs(train)} if s.name == "diagnose" and train
                                                     else {})}) for s in spec.stages)
    spec = replace(spec, probes=probes, stages=stages)
    if not data:
        return spec
    task = own_task(str(data), heads)
    return _own_task_spec(spec, task, _abs(data)) if task else spec


def _data_option(probe: str, data: str | Path | None, train: str | Path | None) -> dict[str, Any]:
    from lmcritic.probes import PROBES

    role = PROBES.get(probe).data_role
    path = {"eval": data, "train": train}.get(role or "")
    if not path:
        return {}
    own = probe.startswith("performance.") and role == "eval"
    return {"data": _abs(path), **({"n": None} if own else {})}  # the user's rows: all of them


def _own_task_spec(spec: RunSpec, task: dict[str, Any], data: str) -> RunSpec:
    """``performance.task`` on the user's rows takes the place of ``performance.sst2``; the diagnosis reads it. The
    probes that read any classifier (``Probe.any_classes``: invariance, register, attacks, counterfactual) get the
    task's classes with the rows; the sentiment probes keep their packaged rows (they skip themselves on such a
    head)."""
    from dataclasses import replace

    probes = tuple(_own_task_probe(p, task, data) for p in spec.probes)
    stages = tuple(replace(s, config={**s.config, "probes": [KEY if x == "performance.sst2" else x
                                                              for x in s.config["probes"]]})
                   if s.name == "diagnose" and "probes" in s.config else s for s in spec.stages)
    return replace(spec, probes=probes, stages=stages)


def _own_task_probe(p: ProbeSpec, task: dict[str, Any], data: str) -> ProbeSpec:
    """One probe of the scan on the user's rows: ``performance.sst2`` becomes the task; a probe that reads any
    classifier keeps the rows and gets the classes; any other gives the rows back (its packaged ones stay)."""
    from dataclasses import replace

    from lmcritic.probes import PROBES
    from lmcritic.spec import ProbeSpec as Spec

    if p.key == "performance.sst2":
        return Spec("performance.task", {"task": task, "n": None}, key=KEY)
    if PROBES.get(p.name).any_classes and p.config.get("data") == data:
        return replace(p, config={**_classes_option(p.name, task), **p.config})
    return replace(p, config={k: v for k, v in p.config.items() if k != "data" or v != data})


def _classes_option(probe: str, task: dict[str, Any]) -> dict[str, Any]:
    """The task's classes for a probe that reads any classifier; the rows' text as written (SST's spacing is
    undone only on SST rows), so its clean accuracy is ``own_task``'s; a probe measured on one class's probability
    (counterfactual swaps) gets the second of two (more classes: the user names it, or the probe says so)."""
    from dataclasses import fields

    from lmcritic.probes import PROBES

    names, classes = {f.name for f in fields(PROBES.get(probe).Config)}, list(task["labels"])
    out: dict[str, Any] = {"classes": classes, **({"detokenize": False} if "detokenize" in names else {})}
    if "target" in names and len(classes) == 2:
        out["target"] = classes[1]  # two classes: p(one) = 1 - p(other), so either orients the same effects
    return out


def _abs(path: str | Path) -> str:
    return str(Path(path).resolve())


def own_task(data: str, heads: Sequence[str] | None) -> dict[str, Any] | None:
    """The inline task for ``data``, or None when the rows and the model are sentiment as the probes expect."""
    column, values = _columns(data)
    if not _other_task(values, heads):
        return None
    classes, target = _classes(data, values, heads)
    return {"name": KEY, "output_type": "classification", "data": {"path": _abs(data)},
            "prompt": "Text: {{ " + column + " }}\nLabel:", "target": target,
            "labels": {c: c for c in classes}, "metrics": ["acc", "macro_f1", "ece", "brier"]}


def head_labels(model: str | None, options: Mapping[str, Any]) -> list[str] | None:
    """A local Hugging Face classifier's label names in logit order (``label_names`` option first), else None."""
    names = options.get("label_names")
    if isinstance(names, str):
        import yaml

        names = yaml.safe_load(names)
    if isinstance(names, list):
        return [str(x) for x in names]
    config = Path(model) / "config.json" if model else None
    if config is None or not config.is_file():
        return None
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    id2label = raw.get("id2label") or {}
    if not id2label or not any(k.endswith("ForSequenceClassification") for k in raw.get("architectures") or ()):
        return None
    from lmcritic.backends._hf_loading import names_in_logit_order

    return names_in_logit_order(id2label, len(id2label))


def _columns(data: str) -> tuple[str, list[str]]:
    """The text column and the distinct label values of the rows (first-seen order)."""
    from lmcritic.datasets import read_rows

    column, seen = "text", dict[str, None]()
    for _, row in read_rows(data, required=("label",), labelled=True):
        column = next((c for c in TEXT_COLUMNS if row.get(c)), column)
        label = row.get("label")
        if label not in (None, ""):
            seen[str(int(label) if isinstance(label, bool) else label).strip()] = None
    return column, list(seen)


def _other_task(values: Sequence[str], heads: Sequence[str] | None) -> bool:
    from lmcritic.probes._label_map import class_index, is_sentiment

    if any(class_index(v, ("negative", "positive")) is None for v in values):  # 0/1, negative/positive, neg/pos
        return True
    return heads is not None and not is_sentiment(heads)


def _classes(data: str, values: Sequence[str], heads: Sequence[str] | None) -> tuple[list[str], str]:
    """Class names and the target (the label column, or a template from the id to the head's name)."""
    ints = all(v.lstrip("-").isdigit() for v in values)
    if not heads:
        return sorted(values, key=lambda v: (not ints, int(v) if ints else 0, v)), "label"
    if ints and all(0 <= int(v) < len(heads) for v in values):
        return list(heads), "{{ " + json.dumps(list(heads)) + "[label | int] }}"
    table = _head_names(values, heads)
    if table is None:
        from lmcritic.errors import DataError

        raise DataError(f"{data}: labels {', '.join(values[:8])} are neither ids of the classifier's {len(heads)} "
                        f"labels nor their names ({', '.join(heads)})",
                        "label the rows with the model's label names, or ids in the order of its id2label")
    same = all(table[v] == v for v in values)
    return list(heads), "label" if same else "{{ " + json.dumps(table) + "[label | string | trim] }}"


def _head_names(values: Sequence[str], heads: Sequence[str]) -> dict[str, str] | None:
    """Row label → the head's label of the same name, any case, or the only one it begins (``neg`` →
    ``NEGATIVE``); None when a value matches none."""
    from lmcritic.probes._label_map import class_index

    out = {}
    for v in values:
        k = class_index(v, heads)
        if k is None:
            return None
        out[v] = heads[k]
    return out
