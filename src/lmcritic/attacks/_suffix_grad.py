"""GCG's token gradients on a white-box causal LM: d(loss of the target)/d(one-hot suffix tokens).

The chat is rendered with the model's template around a placeholder, and split there, so the suffix's tokens
can be swapped for one-hot rows while the rest stays as embeddings (Zou et al. 2023, Algorithm 1). Everything
goes through the backend's :class:`~lmcritic.backends.whitebox.WhiteBox`.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.backends.whitebox import WhiteBox

if TYPE_CHECKING:
    import torch

    from lmcritic.attacks.prompts.base import AttackPrompt

PLACEHOLDER = "\x00SUFFIX\x00"


def render(wb: WhiteBox, prompt: AttackPrompt, suffix: str) -> str:
    """The model's input before its answer: the chat template when it has one, else a plain transcript."""
    from lmcritic.attacks.prompts.base import transcript
    from lmcritic.requests import ChatMessage

    messages = (*prompt.history, ChatMessage("user", f"{prompt.text} {suffix}"))
    rendered = wb.render_chat(messages)
    return rendered if rendered is not None else transcript(messages) + " "


def token_ids(wb: WhiteBox, text: str) -> list[int]:
    """``text``'s tokens without special tokens, uncut."""
    return list(wb.tokenize(text, special_tokens=False).ids)


def one_hot_gradient(wb: WhiteBox, prompt: AttackPrompt, suffix: Sequence[int], target: str) -> Any:
    """Gradient of the target's negative log-likelihood w.r.t. a one-hot matrix of the suffix tokens."""
    import torch

    before, after = render(wb, prompt, PLACEHOLDER).split(PLACEHOLDER, 1)
    pre, post, tgt = token_ids(wb, before), token_ids(wb, after), token_ids(wb, target)
    table, weight = wb.embedding_layer(), wb.embedding_matrix()
    ids = lambda xs: table(torch.tensor(xs, device=wb.device, dtype=torch.long))  # noqa: E731
    with wb.gradients():
        one_hot = torch.zeros(len(suffix), weight.shape[0], device=weight.device, dtype=weight.dtype)
        one_hot[torch.arange(len(suffix)), torch.tensor(list(suffix))] = 1.0
        one_hot.requires_grad_(True)
        embeds = torch.cat([ids(pre), one_hot @ weight, ids(post), ids(tgt)]).unsqueeze(0)
        logits = wb.forward(embeds)[0].float()
        start = len(pre) + len(suffix) + len(post)
        loss = torch.nn.functional.cross_entropy(logits[start - 1 : start - 1 + len(tgt)],
                                                 torch.tensor(tgt, device=logits.device))
        loss.backward()
    assert one_hot.grad is not None  # a leaf that requires grad, on the loss's graph
    return one_hot.grad.detach()


def top_candidates(grad: torch.Tensor, allowed: torch.Tensor, k: int) -> list[list[int]]:
    """Per suffix position, the ``k`` allowed tokens whose one-hot gradient most decreases the loss."""
    import torch

    scores = -grad.clone()
    scores[:, ~allowed] = -torch.inf
    result: list[list[int]] = scores.topk(k, dim=1).indices.tolist()
    return result


_MASKS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def ascii_tokens(wb: WhiteBox) -> Any:
    """Printable ASCII, non-special tokens (GCG's ``not_allowed_tokens`` filter), as a boolean mask over the
    embedding rows (computed once per white box: it decodes the whole vocabulary)."""
    if wb not in _MASKS:
        _MASKS[wb] = _ascii_mask(wb)
    return _MASKS[wb]


def _ascii_mask(wb: WhiteBox) -> Any:
    import torch

    rows = int(wb.embedding_matrix().shape[0])
    special = wb.special_ids
    mask = torch.zeros(rows, dtype=torch.bool)
    for i in range(min(wb.vocab_size, rows)):  # rows past the tokenizer's vocabulary (padding) stay excluded
        text = wb.decode([i])
        mask[i] = i not in special and bool(text.strip()) and text.isascii() and text.isprintable()
    return mask


def round_trips(wb: WhiteBox, ids: Sequence[int]) -> bool:
    """A candidate is kept only if decoding and re-encoding gives the same tokens (GCG's filter)."""
    return token_ids(wb, wb.decode(list(ids))) == list(ids)
