"""Training examples for the ``hf`` trainer, by model kind, and the collator that pads them.

A sequence classifier learns ``text → label`` (the head's index found by the rules the probes map a head with);
a causal LM learns the probe's prompt followed by the label word (loss on the label word's tokens only);
unlabelled rows train a causal LM on every token. Each example carries its row weight.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.errors import ConfigError
from lmcritic.mitigate.data import TrainingSet
from lmcritic.mitigate.trainers import TaskFormat

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def build_examples(data: TrainingSet, task: TaskFormat, kind: str, tok: PreTrainedTokenizerBase, max_length: int,
                   model_labels: Sequence[str] = (), pairing: bool = False) -> list[dict[str, Any]]:
    """Token ids, targets and weights per row, as the model kind needs them; with ``pairing`` a classifier
    example also carries the ids of the row it is a counterfactual copy of (empty for other rows)."""
    if kind == "seq-classification":
        ids = label_ids(model_labels, task.labels or tuple(sorted({str(r.label) for r in data.rows})))
        out = [_classifier_example(tok, r.text, ids[str(r.label)], r.weight, max_length) for r in data.rows]
        if pairing:
            for example, r in zip(out, data.rows):
                example["twin_input_ids"] = list(tok(r.twin, truncation=True, max_length=max_length)["input_ids"]) \
                    if r.twin else []
        return out
    if any(r.label is None for r in data.rows):
        return [_lm_example(tok, r.text, r.weight, max_length) for r in data.rows]
    if not task.template or len(task.label_words) != len(task.labels):
        raise ConfigError("a causal LM learns labels in its prompt format, but the probe gives no template and "
                          "label words", "target a prompted probe such as performance.sst2")
    words = dict(zip(task.labels, task.label_words))
    render = _renderer(task.template)
    return [_prompted_example(tok, render(r.text), words[str(r.label)], r.weight, max_length) for r in data.rows]


def label_ids(model_labels: Sequence[str], task_labels: Sequence[str]) -> dict[str, int]:
    """Task label name → the classifier head's index, by the rules the probes map a head with (same name in any
    case, a unique prefix such as ``NEG``, ``LABEL_i`` / ``i`` by the task's order)."""
    from lmcritic.probes._label_map import head_class

    out: dict[str, int] = {}
    for i, label in enumerate(model_labels):
        j = head_class(str(label), model_labels, task_labels)
        if j is not None:
            out.setdefault(str(task_labels[j]), i)
    missing = [str(n) for n in task_labels if str(n) not in out]
    if missing:
        raise ConfigError(f"the classifier's labels {list(model_labels)} do not include {', '.join(missing)}",
                          "train a classifier whose id2label names the task's labels")
    return out


def _classifier_example(tok: PreTrainedTokenizerBase, text: str, label: int, weight: float,
                        max_length: int) -> dict[str, Any]:
    enc = tok(text, truncation=True, max_length=max_length)
    return {**{k: list(v) for k, v in enc.items()}, "labels": label, "weight": float(weight)}


def _prompted_example(tok: PreTrainedTokenizerBase, prompt: str, word: str, weight: float,
                      max_length: int) -> dict[str, Any]:
    answer = tok(word, add_special_tokens=False)["input_ids"]
    context = tok(prompt, add_special_tokens=False)["input_ids"][-(max_length - len(answer)):]  # keep the cue
    ids = context + answer
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * len(context) + answer,
            "weight": float(weight)}


def _lm_example(tok: PreTrainedTokenizerBase, text: str, weight: float, max_length: int) -> dict[str, Any]:
    ids = tok(text, add_special_tokens=False)["input_ids"][: max_length - 1]
    if tok.eos_token_id is not None:
        ids = ids + [tok.eos_token_id]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids), "weight": float(weight)}


def _renderer(template: str) -> Any:
    import jinja2

    compiled = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(template)
    return lambda text: compiled.render(text=text)


class Collate:
    """Right-pads a batch: ids with the pad id, targets with -100 (causal) and weights as a tensor; the twins of
    counterfactual rows (``twin_input_ids``) to their own width, with their attention mask."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        n = max(len(b["input_ids"]) for b in batch)
        out: dict[str, Any] = {}
        for key in batch[0]:
            if key == "twin_input_ids":
                out.update(_twins([b[key] for b in batch], self.pad_id))
            elif key == "weight":
                out[key] = torch.tensor([b[key] for b in batch], dtype=torch.float32)
            elif key == "labels" and isinstance(batch[0][key], int):
                out[key] = torch.tensor([b[key] for b in batch])
            else:
                fill = -100 if key == "labels" else self.pad_id if key == "input_ids" else 0
                out[key] = torch.tensor([list(b[key]) + [fill] * (n - len(b[key])) for b in batch])
        return out


def _twins(twins: list[list[int]], pad_id: int) -> dict[str, Any]:
    import torch

    n = max(1, max(len(t) for t in twins))
    return {"twin_input_ids": torch.tensor([t + [pad_id] * (n - len(t)) for t in twins]),
            "twin_attention_mask": torch.tensor([[1] * len(t) + [0] * (n - len(t)) for t in twins])}
