"""Task specs in YAML/JSON: data (local file or Hugging Face dataset), Jinja prompts, few-shot examples,
an output type (multiple_choice, classification, generate, perplexity) and a metric list.

Run one with the probe ``performance.task`` (config ``task: <path or packaged name>``) or in code::

    task = load_task("sst2", overrides={"fewshot": {"n": 2}})
    cases = build_cases(task, n=50)

Importing this package is cheap (no torch, no datasets).
"""
from __future__ import annotations

from lmcritic.tasks.cases import build_cases
from lmcritic.tasks.spec import (
                                 OUTPUT_TYPES,
                                 DataSource,
                                 FewShot,
                                 Generation,
                                 Rolling,
                                 TaskSpec,
                                 find_task,
                                 load_task,
                                 packaged_tasks,
)

__all__ = ["OUTPUT_TYPES", "DataSource", "FewShot", "Generation", "Rolling", "TaskSpec", "build_cases", "find_task",
           "load_task", "packaged_tasks"]
