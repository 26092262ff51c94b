"""Export a task spec as an lm-evaluation-harness task (YAML mapping), so both tools run the same task.

Supported: multiple_choice (acc, acc_norm, acc_bytes, acc_mutual_info), classification by label words
(exported as multiple choice over the label words) and perplexity (``loglikelihood_rolling``: word/byte
perplexity, bits per byte). Few-shot examples export only with ``sampler: first_n`` from a separate
``fewshot.path``: lm-eval draws other shots otherwise, and the two runs would no longer be comparable.
"""
from __future__ import annotations

from typing import Any

from lmcritic.errors import ConfigError
from lmcritic.tasks.spec import TaskSpec

LMEVAL_MC = ("acc", "acc_norm", "acc_bytes", "acc_mutual_info")
LMEVAL_PPL = {"word_perplexity": "weighted_perplexity", "byte_perplexity": "weighted_perplexity",
              "bits_per_byte": "bits_per_byte"}


def to_lmeval(task: TaskSpec, name: str | None = None) -> dict[str, Any]:
    """The lm-eval task config equivalent to ``task`` (dump it with ``yaml.safe_dump``)."""
    if task.output_type == "generate":
        raise ConfigError(f"task {task.name}: output_type {task.output_type} is not exported to lm-eval",
                          "lm-eval's generate_until metrics normalise answers differently; compare by hand")
    out: dict[str, Any] = {"task": name or task.name, **_dataset(task)}
    if task.output_type == "perplexity":
        metrics = [m for m in task.metrics if m in LMEVAL_PPL] or list(LMEVAL_PPL)
        out.update(output_type="loglikelihood_rolling", doc_to_text="", doc_to_target=task.prompt,
                   metric_list=[{"metric": m, "aggregation": LMEVAL_PPL[m], "higher_is_better": False}
                                for m in metrics])
    else:  # multiple_choice, classification
        if task.output_type == "classification" and task.classifier == "head":
            raise ConfigError(f"task {task.name}: a classifier-head task has no lm-eval equivalent")
        out.update(output_type="multiple_choice", doc_to_text=task.prompt, **_choices(task),
                   target_delimiter=task.target_delimiter, fewshot_delimiter=task.fewshot.separator,
                   metric_list=[{"metric": m, "aggregation": "mean", "higher_is_better": True}
                                for m in task.metrics if m in LMEVAL_MC] or
                   [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}])
        if task.description:
            out["description"] = task.description
    out["metadata"] = {"version": 1.0, "lmcritic_task_fingerprint": task.fingerprint()}
    return out


def _dataset(task: TaskSpec) -> dict[str, Any]:
    d, fs = task.data, task.fewshot
    out: dict[str, Any] = {}
    if d.hf is not None:
        out.update(dataset_path=d.hf, test_split=d.split)
        if d.name:
            out["dataset_name"] = d.name
        if d.hf_kwargs:
            out["dataset_kwargs"] = dict(d.hf_kwargs)
        if fs.n and fs.split:
            out["fewshot_split"] = fs.split
    else:
        if d.path is None:
            raise ConfigError(f"task {task.name!r} names no data path", "add data: {path: rows.jsonl}")
        path = task.resolve_path(d.path).resolve()
        files = {"test": str(path)}
        if fs.n and fs.path:
            files["train"] = str(task.resolve_path(fs.path).resolve())
            out["fewshot_split"] = "train"
        suffix = path.suffix.lower()
        kwargs: dict[str, Any] = {"data_files": files}
        if suffix == ".tsv":
            kwargs["delimiter"] = "\t"
        out.update(dataset_path="csv" if suffix in (".csv", ".tsv") else "json", dataset_kwargs=kwargs,
                   test_split="test")
    if fs.n:
        if fs.sampler != "first_n" or not (fs.path or fs.split):
            raise ConfigError(f"task {task.name}: few-shot examples export only with sampler: first_n from a "
                              "separate fewshot.path or fewshot.split", "lm-eval would draw different shots")
        out.update(num_fewshot=fs.n, fewshot_config={"sampler": "first_n"})
    return out


def _choices(task: TaskSpec) -> dict[str, Any]:
    if task.output_type == "multiple_choice":
        choices: Any = task.choices
        if isinstance(choices, tuple):  # ours: one template per choice; lm-eval's list is literal text
            literal = not any("{" in c for c in choices)
            choices = list(choices) if literal else \
                "{{ [" + ", ".join(f"({_expr(task, c)}) | string" for c in choices) + "] }}"
        return {"doc_to_choice": choices, "doc_to_target": task.target}
    words = list(task.labels.values())
    index = ", ".join(f"{k!r}: {i}" for i, k in enumerate(task.labels))
    target = task.target or ""
    inner = _expr(task, target if "{" in target else "{{ " + target + " }}")
    return {"doc_to_choice": words, "doc_to_target": "{{ {" + index + "}[(" + inner + ") | string | trim] }}"}


def _expr(task: TaskSpec, template: str) -> str:
    """The expression inside a template that is exactly one ``{{ ... }}``."""
    t = template.strip()
    if not (t.startswith("{{") and t.endswith("}}")) or "{{" in t[2:]:
        raise ConfigError(f"task {task.name}: template {template!r} is not a single {{{{ ... }}}} expression",
                          "use a column name or one expression to export it to lm-eval")
    return t[2:-2].strip()
