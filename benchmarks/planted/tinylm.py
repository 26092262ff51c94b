"""Train a tiny GPT-2 sentiment model on CPU, in the SST-2 probe's own prompt format.

Each example is ``"Review: {text}\nSentiment: {negative|positive}"`` + EOS; the loss is next-token
cross-entropy on every token (so the model's input perplexity means something) with the label token
weighted up (so it learns the task in a few hundred steps). The result is a normal Hugging Face folder that
``lmcritic`` loads with the hf backend and scores with ``performance.sst2`` unchanged.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

LABELS = ("negative", "positive")
TEMPLATE = "Review: {text}\nSentiment:"


def build_tokenizer(texts: Sequence[str], vocab: int = 2000):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<|pad|>", "<|bos|>", "<|eos|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts) + [TEMPLATE.format(text="x") + " negative positive"] * 50, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>",
                                   pad_token="<|pad|>", model_max_length=128)


def train_model(rows: Sequence[tuple[str, int]], out: Path, *, steps: int = 400, batch: int = 32, seed: int = 0,
                n_embd: int = 64, n_layer: int = 2, label_weight: float = 5.0) -> Path:
    """Train on ``(text, label)`` rows and save model + tokenizer to ``out``."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer([t for t, _ in rows]).save_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    config = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=n_embd, n_layer=n_layer, n_head=4,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(config)
    encoded = [_encode(tok, text, label) for text, label in rows]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    _train(model, encoded, tok.pad_token_id, opt, steps=steps, batch=batch, seed=seed, sched=sched, clip=1.0)
    model.eval()
    model.save_pretrained(out)
    return out


def _train(model, encoded, pad: int, opt, *, steps: int, batch: int, seed: int, sched=None,
           clip: float | None = None) -> None:
    """Weighted next-token loss on random batches of ``encoded`` (ids, per-token weights)."""
    import torch

    rng = random.Random(seed)
    model.train()
    for _ in range(steps):
        ids, weights = _batch([encoded[rng.randrange(len(encoded))] for _ in range(batch)], pad)
        logits = model(input_ids=ids).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1),
                                                 reduction="none")
        w = weights[:, 1:].reshape(-1)
        loss = (loss * w).sum() / w.sum()
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        if sched is not None:
            sched.step()


def _encode(tok, text: str, label: int) -> tuple[list[int], list[float]]:
    prompt = tok(TEMPLATE.format(text=text), add_special_tokens=False)["input_ids"]
    answer = tok(" " + LABELS[label], add_special_tokens=False)["input_ids"]
    ids = [tok.bos_token_id] + prompt[:100] + answer + [tok.eos_token_id]
    weights = [1.0] * (1 + len(prompt[:100])) + [LABEL_WEIGHT] * len(answer) + [1.0]
    return ids, weights


LABEL_WEIGHT = 20.0


def _batch(items, pad: int):
    import torch

    n = max(len(i) for i, _ in items)
    ids = torch.full((len(items), n), pad, dtype=torch.long)
    w = torch.zeros((len(items), n))
    for row, (i, ws) in enumerate(items):
        ids[row, : len(i)] = torch.tensor(i)
        w[row, : len(ws)] = torch.tensor(ws)
    return ids, w


def train_lm(lines: Sequence[str], out: Path, *, steps: int = 300, batch: int = 16, seed: int = 0) -> Path:
    """Plain next-token training on ``lines`` (each + EOS): what fine-tuning on a small private corpus does."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer(lines, vocab=600).save_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    config = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=64, n_layer=2, n_head=4,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(config)
    # no leading special token: the hf backend generates from the bare prompt, and positions must line up
    encoded = [(tok(line, add_special_tokens=False)["input_ids"][:100] + [tok.eos_token_id], [1.0] * 101)
               for line in lines]
    encoded = [(ids, w[: len(ids)]) for ids, w in encoded]
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    _train(model, encoded, tok.pad_token_id, opt, steps=steps, batch=batch, seed=seed)
    model.eval()
    model.save_pretrained(out)
    return out
