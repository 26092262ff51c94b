"""The benchmark's victim: a small BERT sentiment classifier trained from scratch on SST-2 train sentences for a
short CPU budget, saved as a plain
``BertForSequenceClassification`` folder that both lmcritic's HF backend and TextAttack's
``HuggingFaceModelWrapper`` load. Seeded; rebuilt only when missing."""
from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path
from typing import Any


def sst2(path: Path, limit: int | None = None, skip: int = 0) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8") as f:
        rows = [(r["text"].strip(), int(r["label"])) for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return rows[skip : skip + limit if limit else None]


def train(out: Path, train_tsv: Path, dev_tsv: Path, n_train: int = 20000, steps: int = 1000,
          seed: int = 0) -> dict:
    """Train for ``steps`` batches of 64 (passes over ``n_train`` shuffled sentences); returns its record.
    A fixed step count, not a time limit: the victim must be the same model on a fast or a slow machine.

    A small BERT (WordPiece vocab 4,000 trained on the same sentences; 2 layers, hidden 128) from scratch, as
    tests/conftest.py builds its tiny models: fine-tuning a pretrained encoder does not fit a CPU minute on a
    shared 2-core machine.
    """
    if (out / "train.json").is_file():
        return json.loads((out / "train.json").read_text())
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    rows = sst2(train_tsv)
    random.Random(seed).shuffle(rows)
    rows = rows[:n_train]
    tok = _tokenizer([t for t, _ in rows], out)
    config = BertConfig(vocab_size=len(tok), hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=256, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                        num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    model = BertForSequenceClassification(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    starts = range(0, len(rows), 64)  # batches in order, round and round
    for step in range(steps):
        i = starts[step % len(starts)]
        train_step(model, tok, rows[i : i + 64], opt)
    model.eval()
    model.save_pretrained(out)
    record = {"model": "BERT 2x128 from scratch", "steps": steps, "sentences": steps * 64,
              "train_s": time.perf_counter() - start, "dev_accuracy": dev_accuracy(model, tok, sst2(dev_tsv))}
    (out / "train.json").write_text(json.dumps(record, indent=1))
    return record


def train_step(model: Any, tok: Any, batch: list[tuple[str, int]], opt: Any) -> float:
    """One optimiser step on (text, label) rows, padded, 64 tokens at most; the batch's loss."""
    import torch

    enc = tok([t for t, _ in batch], padding=True, truncation=True, max_length=64, return_tensors="pt")
    loss = model(**enc, labels=torch.tensor([y for _, y in batch])).loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss)


def _tokenizer(lines: list[str], out: Path):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(lines, trainers.WordPieceTrainer(vocab_size=4000, special_tokens=specials,
                                                             show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls),
                                                                                                ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return AutoTokenizer.from_pretrained(out)


def dev_accuracy(model, tok, rows) -> float:
    import torch

    right = 0
    with torch.inference_mode():
        for i in range(0, len(rows), 64):
            batch = rows[i : i + 64]
            enc = tok([t for t, _ in batch], padding=True, truncation=True, max_length=64, return_tensors="pt")
            pred = model(**enc).logits.argmax(-1).tolist()
            right += sum(p == y for p, (_, y) in zip(pred, batch))
    return right / len(rows)
