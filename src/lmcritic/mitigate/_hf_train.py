"""The ``hf`` trainer: fine-tune local Hugging Face weights on a :class:`TrainingSet` with the transformers ``Trainer``.

Examples by model kind: a sequence classifier learns ``text → label``; a causal LM learns the probe's prompt
followed by the label word (loss on the label word's tokens only, so it is a classification fine-tune in the
prompted format the probe scores); unlabelled rows train a causal LM on every token. Row weights scale each
example's loss (group reweighing). LoRA adapters are merged into the saved weights so the hf backend loads the
result as a plain model folder; the adapter is kept beside it.

Checkpoints (safetensors) go to ``out/checkpoints`` every ``save_steps``; ``out/checkpoints/job.json`` holds a hash
of the base model, data and settings, and the same job run again resumes from the last checkpoint (a changed job
starts over). Seeds are fixed (``seed`` and ``data_seed``), so a resumed run follows the same batches.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from lmcritic._serde import stable_hash, to_jsonable
from lmcritic.errors import ConfigError
from lmcritic.mitigate._hf_examples import Collate, build_examples, label_ids
from lmcritic.mitigate.base import model_spec_of
from lmcritic.mitigate.data import TrainingSet
from lmcritic.mitigate.trainers import ModelTrainer, TaskFormat, TrainConfig, Trained, total_steps

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

LORA_MIN_PARAMETERS = 50_000_000


class HFTrainer(ModelTrainer):
    """Full fine-tuning or LoRA on a model the hf backend loads (a local folder, a .gguf, a packaged model)."""

    def train(self, base: dict[str, Any], data: TrainingSet, task: TaskFormat, out: Path, config: TrainConfig,
              seed: int = 0, progress: bool = True) -> Trained:
        with _progress_bars(progress):
            return self._train(base, data, task, out, config, seed, progress)

    def _train(self, base: dict[str, Any], data: TrainingSet, task: TaskFormat, out: Path, config: TrainConfig,
               seed: int, progress: bool) -> Trained:
        import torch

        torch.set_num_threads(max(1, config.threads))
        be = _load(base)
        model, tok, kind = be.model, be.tokenizer, be.model_kind
        origin = be.fingerprint()  # before LoRA is injected into these very modules (randomly initialised)
        if config.from_scratch:
            torch.manual_seed(seed)
            model = type(model)(model.config)
        elif config.base:
            model = from_base(model, kind, config.base, seed)
        pairing = bool(config.pairing) and kind == "seq-classification"  # a classifier head's class log-probs
        examples = build_examples(data, task, kind, tok, config.max_length, _model_labels(model, kind), pairing)
        lora = use_lora(config, kind, sum(p.numel() for p in model.parameters()))
        if lora:
            model = _with_lora(model, kind, config)
        elif config.frozen_layers:
            freeze(model, config.frozen_layers)
        config = replace(config, steps=total_steps(config, len(examples)), epochs=None,
                         pairing=config.pairing if pairing else 0.0)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        job = stable_hash("lmcritic-train", origin, to_jsonable(data), to_jsonable(task),
                          to_jsonable(config), seed)  # after epochs became steps: the same job hashes the same
        ckpt = _checkpoint_dir(out / "checkpoints", job)
        trainer = _trainer(model, examples, tok, ckpt, config, seed, progress, lora)
        resume = _last_checkpoint(ckpt)
        t0 = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume)
        wall = time.perf_counter() - t0
        if lora:
            model.save_pretrained(str(out / "adapter"))  # the adapter alone, before it is merged
        model_dir = _save(model.merge_and_unload() if lora else model, tok, out / "model")
        # the job's steps: resumed from its final checkpoint, the Trainer's global_step counts one more
        details = {"kind": kind, "adapter": "lora" if lora else "full", "steps": config.steps,
                   "training_loss": float(result.training_loss), "wall_s": round(wall, 2),
                   "resumed_from": Path(resume).name if resume else None, "n_examples": len(examples),
                   "trainable_parameters": trainable,
                   "learning_rate": _lr(config, lora), "job": job[:16],
                   "init": "scratch" if config.from_scratch else "base" if config.base else "model",
                   "frozen_layers": 0 if lora else config.frozen_layers,
                   "pairing": config.pairing,
                   "paired_examples": sum(1 for e in examples if e.get("twin_input_ids"))}
        return Trained({"name": str(model_dir), "backend": "hf"}, str(model_dir), details)


def use_lora(config: TrainConfig, kind: str, n_parameters: int) -> bool:
    if config.adapter != "auto":
        return config.adapter == "lora"
    return kind == "causal" and n_parameters > LORA_MIN_PARAMETERS


def _load(base: dict[str, Any]) -> Any:
    from lmcritic.backends import load_model
    from lmcritic.backends.hf import HFBackend

    be = load_model(model_spec_of(base))
    if not isinstance(be, HFBackend):
        raise ConfigError(f"the hf trainer needs a Hugging Face model, got the {be.kind} backend",
                          "give the run's own model (a local folder or a known hf model)")
    if be.model_kind == "masked":
        raise ConfigError("fine-tuning a masked LM is not supported", "use a sequence classifier or a causal LM")
    return be


def from_base(model: PreTrainedModel, kind: str, base: str, seed: int) -> Any:
    """The run's architecture and labels with the weights of the checkpoint ``base`` (a fresh, seeded head when
    ``base`` is a plain encoder): the fine-tune starts where the run's model started, not from its defect."""
    import torch

    from lmcritic.backends._hf_loading import quiet_transformers

    path = Path(base).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"base {base!r} is not a local model folder",
                          "set base to the folder of the pretrained model the run's model was fine-tuned from")
    torch.manual_seed(seed)
    cfg: Any = model.config  # the label maps are typed loosely on transformers' base config
    labels: dict[str, Any] = ({"num_labels": cfg.num_labels, "id2label": dict(cfg.id2label),
                               "label2id": dict(cfg.label2id)} if kind == "seq-classification" else {})
    try:  # transformers' load report of the fresh head is expected: the mitigation report says where it started
        with quiet_transformers():
            out = type(model).from_pretrained(str(path), local_files_only=True, **labels)
    except (OSError, ValueError) as err:
        raise ConfigError(f"base {base!r} cannot be loaded as a {type(model).__name__}: {err}",
                          "give a checkpoint of the same architecture as the run's model") from None
    if out.config.vocab_size != model.config.vocab_size:
        raise ConfigError(f"base {base!r} has a vocabulary of {out.config.vocab_size}, the run's model "
                          f"{model.config.vocab_size}", "give the checkpoint the run's model was fine-tuned from")
    return out


_BLOCKS = ("encoder.layer", "transformer.layer", "layers", "h")  # BERT-likes, DistilBERT, Llama/ModernBERT, GPT-2
_EMBEDDINGS = ("embeddings", "embed_tokens", "wte", "wpe")


def freeze(model: PreTrainedModel, layers: int) -> None:
    """Keep the embeddings and the lowest ``layers`` transformer blocks fixed (BERT-likes, DistilBERT, GPT-2,
    Llama-style decoders, ModernBERT: wherever the body keeps its blocks in one list)."""
    import torch

    body = getattr(model, "base_model", model)
    blocks = next((b for b in (_attr(body, p) for p in _BLOCKS) if isinstance(b, torch.nn.ModuleList)), None)
    embeds = [m for m in (getattr(body, name, None) for name in _EMBEDDINGS) if isinstance(m, torch.nn.Module)]
    if blocks is None or not embeds:
        raise ConfigError(f"frozen_layers needs embeddings and a list of transformer blocks, which "
                          f"{type(model).__name__} does not keep where they are looked for",
                          "drop frozen_layers (full fine-tuning) or use adapter=lora")
    if layers > len(blocks):
        raise ConfigError(f"frozen_layers={layers}, but the model has {len(blocks)} layers", "use a smaller number")
    for module in (*embeds, *blocks[:layers]):
        for p in module.parameters():
            p.requires_grad = False


def _attr(obj: Any, path: str) -> Any:
    for name in path.split("."):
        obj = getattr(obj, name, None)
    return obj


def _model_labels(model: PreTrainedModel, kind: str) -> tuple[str, ...]:
    if kind != "seq-classification":
        return ()
    from lmcritic.backends._hf_encoders import labels

    return labels(model)


# -- the transformers Trainer ---------------------------------------------------------------------
def _trainer(model: PreTrainedModel, examples: list[dict[str, Any]], tok: PreTrainedTokenizerBase, ckpt: Path,
             config: TrainConfig, seed: int, progress: bool, lora: bool) -> Any:
    import torch
    from transformers import Trainer, TrainingArguments

    class WeightedTrainer(Trainer):
        """Per-example loss (label tokens only for prompted causal LMs) scaled by the row weight."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ARG002
            weights, labels = inputs.pop("weight"), inputs.pop("labels")
            twins = inputs.pop("twin_input_ids", None), inputs.pop("twin_attention_mask", None)
            outputs = model(**inputs)
            per = per_example_loss(outputs.logits, labels)
            if twins[0] is not None and config.pairing:
                per = per + config.pairing * pairing_gap(model, outputs.logits, *twins)
            loss = (per * weights).sum() / weights.sum().clamp(min=1e-8)
            return (loss, outputs) if return_outputs else loss

    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    args = TrainingArguments(
        output_dir=str(ckpt), max_steps=config.steps, per_device_train_batch_size=config.batch_size,
        learning_rate=_lr(config, lora), warmup_steps=int(config.warmup_ratio * config.steps),
        weight_decay=config.weight_decay, lr_scheduler_type="linear", save_strategy="steps",
        save_steps=config.save_steps, save_total_limit=2, logging_steps=max(1, config.steps // 10), seed=seed,
        data_seed=seed, report_to=[], use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
        disable_tqdm=not progress, remove_unused_columns=False, label_names=["labels"])
    trainer = WeightedTrainer(model=model, args=args, train_dataset=examples, data_collator=Collate(pad))
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # no per-step log lines either
    return trainer


def pairing_gap(model: Any, logits: torch.Tensor, twin_ids: torch.Tensor, twin_mask: torch.Tensor) -> torch.Tensor:
    """Counterfactual logit pairing: per example, the mean absolute gap between its class log-probabilities and
    its twin's (0 for rows without a twin). Cross-entropy on a copy stops pulling once the copy is on the right
    side of the boundary, however far the swapped words still move its output; the gap keeps pulling until they
    move it no more."""
    import torch

    gap = torch.zeros(logits.size(0), device=logits.device)
    has = twin_mask.sum(1) > 0
    if not bool(has.any()):
        return gap
    width = int(twin_mask[has].sum(1).max())
    twin = model(input_ids=twin_ids[has][:, :width], attention_mask=twin_mask[has][:, :width]).logits
    diff = logits[has].float().log_softmax(-1) - twin.float().log_softmax(-1)
    return gap.index_put((has.nonzero().squeeze(1),), diff.abs().mean(-1))


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per example: of the label (classifier) or the mean over target tokens (causal)."""
    import torch.nn.functional as F

    if logits.dim() == 2:
        return F.cross_entropy(logits.float(), labels, reduction="none")
    lg, lb = logits[:, :-1].float(), labels[:, 1:]
    tokens = F.cross_entropy(lg.reshape(-1, lg.size(-1)), lb.reshape(-1), ignore_index=-100,
                             reduction="none").view(lb.shape)
    mask = (lb != -100).float()
    return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def _lr(config: TrainConfig, lora: bool) -> float:
    return config.learning_rate if config.learning_rate is not None else (2e-4 if lora else 2e-5)


def _with_lora(model: PreTrainedModel, kind: str, config: TrainConfig) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError("LoRA fine-tuning needs peft", "pip install 'lmcritic[mitigate]'") from None
    task = "SEQ_CLS" if kind == "seq-classification" else "CAUSAL_LM"
    layers = None
    n = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", None)
    if config.lora_layers is not None and n:
        layers = list(range(max(0, n - config.lora_layers), n))
    cfg = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, task_type=task,
                     layers_to_transform=layers)
    return get_peft_model(model, cfg)


def _checkpoint_dir(path: Path, job: str) -> Path:
    """``path``, emptied first when it holds checkpoints of another job (they cannot be resumed)."""
    meta = path / "job.json"
    if path.exists() and (not meta.is_file() or json.loads(meta.read_text()).get("job") != job):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"job": job}))
    return path


def _last_checkpoint(path: Path) -> str | None:
    """The newest complete checkpoint: a process killed while saving leaves a newer folder without its
    trainer state, and resuming must fall back to the one before it, not start over."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    found = [(int(d.name.rsplit("-", 1)[1]), d) for d in path.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
             if d.name.rsplit("-", 1)[1].isdigit() and (d / "trainer_state.json").is_file()]
    return str(max(found)[1]) if found else None


@contextlib.contextmanager
def _progress_bars(progress: bool) -> Iterator[None]:
    """transformers draws a bar for every checkpoint it writes ("Writing model shards"): off with --no-progress."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not progress:
            hf_logging.enable_progress_bar()


def _save(model: PreTrainedModel, tok: PreTrainedTokenizerBase, path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    model.eval()
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


__all__ = ["Collate", "HFTrainer", "build_examples", "freeze", "from_base", "label_ids", "per_example_loss", "use_lora"]
