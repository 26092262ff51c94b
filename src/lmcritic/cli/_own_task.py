"""``scan --data`` for a classifier of another task than sentiment: the user's rows become an inline task.

The packaged probes read ``--data`` as SST-2-style rows (0/1 sentiment). A topic, intent or toxicity classifier
evaluated that way failed every case ("classifier label 'profession' matches none of the task's classes").
When the rows' labels, or the local model's own label names, are not sentiment, the scan runs
``performance.task`` on an inline classification task instead: its classes are the classifier's label names
in logit order (Hugging Face's convention: an integer label is the head's id), else the rows' label values.
The sentiment probes then skip themselves before running (their ``not_applicable`` reads the head's labels).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

KEY = "own_task"
SENTIMENT_VALUES = frozenset({"0", "1", "negative", "positive"})
TEXT_COLUMNS = ("text", "sentence")


def own_task(data: str, model: str | None, options: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The inline task for ``data``, or None when the rows and the model are sentiment as the probes expect."""
    column, values = _columns(data)
    heads = head_labels(model, options or {})
    if not _other_task(values, heads):
        return None
    classes, target = _classes(values, heads)
    return {"name": KEY, "output_type": "classification", "data": {"path": str(Path(data).resolve())},
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
    return [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(len(id2label))]


def _columns(data: str) -> tuple[str, list[str]]:
    """The text column and the distinct label values of the rows (first-seen order)."""
    from lmcritic.datasets import read_rows

    column, seen = "text", dict[str, None]()
    for _, row in read_rows(data, required=("label",)):
        column = next((c for c in TEXT_COLUMNS if row.get(c)), column)
        label = row.get("label")
        if label not in (None, ""):
            seen[str(int(label) if isinstance(label, bool) else label).strip()] = None
    return column, list(seen)


def _other_task(values: Sequence[str], heads: Sequence[str] | None) -> bool:
    if any(v.lower() not in SENTIMENT_VALUES for v in values):
        return True
    return heads is not None and not _sentiment_heads(heads)


def _sentiment_heads(heads: Sequence[str]) -> bool:
    from lmcritic.errors import ConfigError
    from lmcritic.probes._label_map import SENTIMENT, label_index

    try:
        label_index(heads, SENTIMENT, None, {"0": 0, "1": 1})
    except ConfigError:
        return False
    return True


def _classes(values: Sequence[str], heads: Sequence[str] | None) -> tuple[list[str], str]:
    """Class names and the target (the label column, or a template from the id to the head's name)."""
    ints = all(v.lstrip("-").isdigit() for v in values)
    if heads and ints and all(0 <= int(v) < len(heads) for v in values):
        return list(heads), "{{ " + json.dumps(list(heads)) + "[label | int] }}"
    if heads and all(v.lower() in {h.lower() for h in heads} for v in values):
        return list(heads), "label"
    return sorted(values, key=lambda v: (not ints, int(v) if ints else 0, v)), "label"
