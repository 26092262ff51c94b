"""Trainers: fit a model of a given family on a :class:`TrainingSet` and write a folder a backend loads.

Registered by backend name (``TRAINERS.get("hf")``), so a plug-in backend brings its own trainer (the planted
benchmark registers one for its bag-of-words models). The ``hf`` trainer fine-tunes local Hugging Face weights
with the transformers ``Trainer``: full fine-tuning for sequence classifiers and small models, LoRA (PEFT) for
causal LMs, fixed seeds, safetensors checkpoints, resumed from the last checkpoint when the same job is run again.
A backend without a trainer (an API, a Python callable) is a black box: training-time mitigations refuse it.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lmcritic.errors import CapabilityError
from lmcritic.mitigate.data import TrainingSet
from lmcritic.registry import Registry

TRAINERS: Registry[type["ModelTrainer"]] = Registry("trainers")
TRAINERS.add("hf", "lmcritic.mitigate._hf_train:HFTrainer")
ADAPTERS = ("auto", "lora", "full")


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning settings every training-time mitigation accepts (``--set steps=200``)."""

    steps: int = 200  # optimizer steps (fixed, so a run's cost is known up front)
    epochs: float | None = None  # instead of steps: passes over the (edited) corpus, ceil(epochs * rows / batch)
    batch_size: int = 16
    learning_rate: float | None = None  # None: 2e-5 full fine-tuning, 2e-4 LoRA
    max_length: int = 64  # tokens per example
    adapter: str = "auto"  # auto: LoRA for causal LMs over 50M parameters, else full fine-tuning
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_layers: int | None = None  # adapt only the top N transformer layers (backward stops there: ~2x faster)
    save_steps: int = 50  # checkpoint every N steps (resume point)
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    threads: int = 2
    frozen_layers: int = 0  # encoders: keep the embeddings and the lowest N layers as they are (about half the
    # backward pass saved at N = half the layers; the recipe of a model fine-tuned that way)
    from_scratch: bool = False  # re-initialise the weights (for models that were trained from scratch)
    base: str | None = None  # start from this checkpoint (the pretrained model the run's model was fine-tuned from)
    # instead of the run's weights: a defect learnt into them is not unlearnt by training on (a shortcut token
    # removed from the corpus gets no gradient at all), so corpus fixes retrain from the base; auto: the base the
    # model's own files name (model card base_model, adapter config, config.json), when it is on this machine
    pairing: float | None = None  # counterfactual logit pairing (Garg et al. 2019): weight of a loss on the gap
    # between the class log-probabilities of a counterfactual row and of the row it was made from (classifiers);
    # None: the mitigation's choice (counterfactual augmentation: on when the run's weights train on), else off

    def __post_init__(self) -> None:
        if (self.epochs is not None and self.epochs <= 0) or self.frozen_layers < 0 or (self.pairing or 0) < 0:
            raise ValueError("epochs must be > 0, frozen_layers >= 0 and pairing >= 0")
        if self.steps < 1 or self.batch_size < 1 or self.max_length < 8 or self.save_steps < 1:
            raise ValueError("steps, batch_size and save_steps must be >= 1 and max_length >= 8")
        if self.adapter not in ADAPTERS:
            raise ValueError(f"adapter must be one of {ADAPTERS}")


@dataclass(frozen=True)
class TaskFormat:
    """How rows become training examples: label names, and for prompted causal LMs the prompt and label words."""

    labels: tuple[str, ...] = ()
    template: str | None = None  # Jinja with {{ text }}: the probe's prompt
    label_words: tuple[str, ...] = ()  # continuation per label, in ``labels`` order


@dataclass(frozen=True)
class Trained:
    spec: dict[str, Any]  # the model spec that loads the result
    model_dir: str
    details: dict[str, Any]


class ModelTrainer(ABC):
    """Fits one model family. Construct with nothing; call :meth:`train` with the base model spec and data."""

    @abstractmethod
    def train(self, base: dict[str, Any], data: TrainingSet, task: TaskFormat, out: Path, config: TrainConfig,
              seed: int = 0, progress: bool = True) -> Trained:
        """Fine-tune ``base`` (a model spec) on ``data``; write ``out/model``; resume from ``out/checkpoints``."""


def total_steps(config: TrainConfig, n_examples: int) -> int:
    """Optimizer steps of a fine-tune: ``steps``, or ``epochs`` passes over ``n_examples`` when set."""
    if config.epochs is None:
        return config.steps
    return max(1, math.ceil(config.epochs * n_examples / config.batch_size))


def train_config(config: object) -> TrainConfig:
    """The :class:`TrainConfig` fields of a mitigation's config (which subclasses it)."""
    return TrainConfig(**{f.name: getattr(config, f.name) for f in fields(TrainConfig)})


def trainer_for(backend: str, method: str) -> ModelTrainer:
    """The trainer of a backend, or a one-line error saying why a training-time fix cannot apply."""
    if backend not in TRAINERS:
        raise CapabilityError(
            f"{method} retrains the model's weights, but the {backend} backend is a black box (no trainer for it)",
            "use an inference-time mitigation (lmcritic mitigations lists them) or --method auto")
    return TRAINERS.get(backend)()


__all__ = ["ADAPTERS", "TRAINERS", "ModelTrainer", "TaskFormat", "TrainConfig", "Trained", "train_config",
           "total_steps", "trainer_for"]
