"""GCG's token gradients on a white-box causal LM: d(loss of the target)/d(one-hot suffix tokens).

The chat is rendered with the model's template around a placeholder, and split there, so the suffix's tokens
can be swapped for one-hot rows while the rest stays as embeddings (Zou et al. 2023, Algorithm 1).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

PLACEHOLDER = "\x00SUFFIX\x00"


def render(be: Any, prompt: Any, suffix: str) -> str:
    """The model's input before its answer: the chat template when it has one, else a plain transcript."""
    from lmcritic.attacks.prompts.base import transcript
    from lmcritic.requests import ChatMessage

    messages = (*prompt.history, ChatMessage("user", f"{prompt.text} {suffix}"))
    if getattr(be.tokenizer, "chat_template", None):
        rows = [{"role": m.role, "content": m.content} for m in messages]
        return be.tokenizer.apply_chat_template(rows, add_generation_prompt=True, tokenize=False)
    return transcript(messages) + " "


def one_hot_gradient(be: Any, prompt: Any, suffix: Sequence[int], target: str) -> Any:
    """Gradient of the target's negative log-likelihood w.r.t. a one-hot matrix of the suffix tokens."""
    import torch

    before, after = render(be, prompt, PLACEHOLDER).split(PLACEHOLDER, 1)
    enc = lambda s: be.tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    pre, post, tgt = enc(before), enc(after), enc(target)
    table = be.model.get_input_embeddings()
    weight = table.weight
    one_hot = torch.zeros(len(suffix), weight.shape[0], device=weight.device, dtype=weight.dtype)
    one_hot[torch.arange(len(suffix)), torch.tensor(list(suffix))] = 1.0
    one_hot.requires_grad_(True)
    ids = lambda xs: table(torch.tensor(xs, device=weight.device, dtype=torch.long))  # noqa: E731
    with torch.enable_grad():
        embeds = torch.cat([ids(pre), one_hot @ weight, ids(post), ids(tgt)]).unsqueeze(0)
        logits = be.model(inputs_embeds=embeds).logits[0].float()
        start = len(pre) + len(suffix) + len(post)
        loss = torch.nn.functional.cross_entropy(logits[start - 1 : start - 1 + len(tgt)],
                                                 torch.tensor(tgt, device=logits.device))
        loss.backward()
    return one_hot.grad.detach()


def top_candidates(grad: Any, allowed: Any, k: int) -> list[list[int]]:
    """Per suffix position, the ``k`` allowed tokens whose one-hot gradient most decreases the loss."""
    import torch

    scores = -grad.clone()
    scores[:, ~allowed] = -torch.inf
    return scores.topk(k, dim=1).indices.tolist()


@lru_cache(maxsize=4)
def _ascii_mask(tokenizer: Any) -> Any:
    import torch

    vocab = len(tokenizer)
    special = set(tokenizer.all_special_ids)
    mask = torch.zeros(vocab, dtype=torch.bool)
    for i in range(vocab):
        text = tokenizer.decode([i])
        mask[i] = i not in special and bool(text.strip()) and text.isascii() and text.isprintable()
    return mask


def ascii_tokens(tokenizer: Any) -> Any:
    """Printable ASCII, non-special tokens (GCG's ``not_allowed_tokens`` filter), as a boolean mask."""
    return _ascii_mask(tokenizer)


def round_trips(tokenizer: Any, ids: Sequence[int]) -> bool:
    """A candidate is kept only if decoding and re-encoding gives the same tokens (GCG's filter)."""
    return tokenizer(tokenizer.decode(list(ids)), add_special_tokens=False)["input_ids"] == list(ids)
