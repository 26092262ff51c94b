"""Tiny models built from scratch, offline, once per test session.

* ``tiny_causal_dir``: a byte-level BPE tokenizer (vocab ~1000, BOS/EOS/PAD, a simple chat template) and a
  2-layer GPT-2 (n_embd 64, n_positions 256) trained for a few seconds on the SST-2 sample, so its
  predictions are peaked rather than near-uniform (greedy ties would make batch-invariance tests flaky).
* Both tokenizers are learnt in plain Python (:mod:`_tiny_vocab`), so every session builds the same fixtures.
* ``tiny_masked_dir`` / ``tiny_classifier_dir``: a WordPiece tokenizer and 2-layer BERTs (masked LM; sequence
  classifier with labels negative/positive), randomly initialised.
* ``tiny_causal`` / ``tiny_masked`` / ``tiny_classifier``: :class:`HFBackend` instances on those dirs.

Other test files reuse these fixture names; keep them stable.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # so test files can `import contract`

from _tiny_vocab import learn_merges  # noqa: E402  (after the path insert above)

SAMPLE = HERE / "fixtures" / "sst2_sample.txt"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
VOCAB = 1000


def sample_lines() -> list[str]:
    return [line for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _bpe_tokenizer(lines: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|pad|>", "<|bos|>", "<|eos|>"]
    split = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words = Counter(w for line in lines for w, _ in split.pre_tokenize_str(line))
    vocab, merges = learn_merges(words, VOCAB - len(specials), sorted(pre_tokenizers.ByteLevel.alphabet()))
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(specials + vocab)}, merges=merges))
    tok.add_special_tokens(specials)
    tok.pre_tokenizer = split
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>",
                                   pad_token="<|pad|>", model_max_length=256)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _wordpiece_tokenizer(lines: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    norm, split = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = Counter(w for line in lines for w, _ in split.pre_tokenize_str(norm.normalize_str(line)))
    chars = sorted({c for w in words for c in w})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab, _ = learn_merges(words, VOCAB - len(specials), chars + ["##" + c for c in chars], prefix="##")
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(specials + vocab)}, unk_token="[UNK]"))
    tok.add_special_tokens(specials)
    tok.normalizer, tok.pre_tokenizer, tok.decoder = norm, split, decoders.WordPiece()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)


def _save_tokenizer(tokenizer, path: Path):
    """Save and reload from the folder, as users will load it."""
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def _train_briefly(model, tokenizer, lines: list[str], steps: int = 300, seed: int = 0) -> None:
    """A few seconds of next-token training so the tiny GPT-2 has peaked, text-like predictions.

    One-cycle schedule: 100 flat steps left it predicting end-of-text after most prompts (loss ~5.2), which makes
    generation tests vacuous; 300 one-cycle steps reach ~4.7. It still ends some prompts at once ('the film') and
    continues others with words ('the movie is'): a test that needs words picks a prompt that gets them.
    One thread: on a busy 2-core machine, two OpenMP threads make these tiny ops ~20x slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    stream: list[int] = []
    for line in lines:
        stream += tokenizer(line, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    data = torch.tensor(stream)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    model.train()
    try:
        for _ in range(steps):
            starts = torch.randint(0, len(data) - 65, (16,)).tolist()
            batch = torch.stack([data[s : s + 64] for s in starts])
            loss = model(input_ids=batch, labels=batch).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    finally:
        model.eval()
        torch.set_num_threads(threads)


def build_tiny_causal(path: Path, *, seed: int = 0, train: bool = True) -> Path:
    """A trained 2-layer GPT-2 and its BPE tokenizer saved to ``path`` (also used to make variants)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    lines = sample_lines()
    tok = _save_tokenizer(_bpe_tokenizer(lines), path)
    config = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=64, n_layer=2, n_head=2, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    if train:
        _train_briefly(model, tok, lines, seed=seed)
    model.save_pretrained(path)
    return path


def _build_bert(path: Path, head: str) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    tok = _save_tokenizer(_wordpiece_tokenizer(sample_lines()), path)
    config = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                        num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    torch.manual_seed(1)
    model = (BertForMaskedLM if head == "masked" else BertForSequenceClassification)(config)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_causal_dir(tmp_path_factory) -> Path:
    return build_tiny_causal(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_masked_dir(tmp_path_factory) -> Path:
    return _build_bert(tmp_path_factory.mktemp("tiny-bert-mlm"), "masked")


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory) -> Path:
    return _build_bert(tmp_path_factory.mktemp("tiny-bert-cls"), "classifier")


@pytest.fixture(scope="session")
def tiny_causal(tiny_causal_dir):
    from lmcritic.backends.hf import HFBackend

    return HFBackend(model=str(tiny_causal_dir))


@pytest.fixture(scope="session")
def tiny_masked(tiny_masked_dir):
    from lmcritic.backends.hf import HFBackend

    return HFBackend(model=str(tiny_masked_dir))


@pytest.fixture(scope="session")
def tiny_classifier(tiny_classifier_dir):
    from lmcritic.backends.hf import HFBackend

    return HFBackend(model=str(tiny_classifier_dir))


def sst2_rows(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """``n`` labelled SST-2 training sentences (5–25 words) from the packaged 20k sample, seeded."""
    import gzip
    import random

    from lmcritic.datasets import packaged

    with gzip.open(packaged("bias/sst2_train_sample.tsv.gz"), "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    rows = [(t.strip(), int(y)) for t, y, *_ in rows if 5 <= len(t.split()) <= 25]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def train_tiny_classifier(model, tok, rows: list[tuple[str, int]], steps: int = 240, seed: int = 0) -> None:
    """A few hundred AdamW steps on batches of 32 drawn with a seeded generator, one thread (seconds)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    try:
        for _ in range(steps):
            idx = torch.randint(0, len(rows), (32,), generator=gen).tolist()
            enc = tok([rows[i][0] for i in idx], padding=True, truncation=True, max_length=48, return_tensors="pt")
            loss = model(**enc, labels=torch.tensor([rows[i][1] for i in idx])).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        model.eval()
        torch.set_num_threads(threads)


def build_tiny_sentiment(path: Path, rows: list[tuple[str, int]], steps: int = 240, seed: int = 0,
                         labels: tuple[str, str] = ("LABEL_0", "LABEL_1")) -> Path:
    """A 2-layer BERT sentiment classifier trained from scratch on ``rows`` (seconds), saved with its tokenizer and
    ``train.tsv``; default HF label names, so label mapping is exercised."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = _save_tokenizer(_wordpiece_tokenizer([t for t, _ in rows]), path)
    config = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                        num_labels=2, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    train_tiny_classifier(model, tok, rows, steps, seed)
    model.save_pretrained(path)
    (path / "train.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path
