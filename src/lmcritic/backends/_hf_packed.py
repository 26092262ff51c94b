"""Multiple choice in one pass: a context and all its continuations packed in one row (tree attention).

A row holds the context's tokens followed by every continuation's input tokens (``cont[:-1]``); a 4-D
attention mask lets each continuation token see the context and the earlier tokens of its own continuation
only, and position ids restart each continuation right after the context, so every token computes exactly
what it would in its own ``ctx + cont`` sequence. The first token of each continuation is predicted at the
context's last position, the others at their own continuation's positions. Against the KV-reuse path (context
pass, then continuation passes a few tokens wide on copied caches) this is one wide forward and no cache
copies; against lm-eval it computes each context once instead of once per choice.

Models that cannot take a custom 4-D mask (flash or flex attention, models that rebuild their own mask) are
found once per model by a numerical self-test on a tiny input (:func:`packed_ok`) and keep the KV-reuse path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from lmcritic.backends._batching import budget_chunks, longest_first
from lmcritic.backends._hf_tensors import accepts, output_layer_is_separable, token_scores

MASK_BUDGET = 1 << 26  # float32 mask entries per forward (256 MiB): rows × width², batches split to fit
PACK_ROOM = 256  # continuation tokens a row may hold beyond a short context (see _hf_loglik.row_cap)
# Relative: arbitrary token ids get log-probs near -20 whose last digits move with the attention kernel (a masked
# row and a causal one round differently: ~2e-4 there, ~1e-6 on real text); an ignored mask or position id
# moves them by whole units.
SELF_TEST_TOL = 1e-3


@dataclass(frozen=True)
class PackedRow:
    """One context with its continuations: the row's tokens, positions and segment of each token (0: the
    context, j + 1: continuation j), and for each continuation where its targets are predicted."""

    tokens: tuple[int, ...]
    positions: tuple[int, ...]
    segments: tuple[int, ...]
    predict_at: tuple[tuple[int, ...], ...]  # per continuation: the row index predicting each target
    targets: tuple[tuple[int, ...], ...]


def pack(ctx: Sequence[int], conts: Sequence[Sequence[int]]) -> PackedRow:
    """The packed row of a context and its (non-empty) continuations."""
    n = len(ctx)
    tokens, positions, segments = list(ctx), list(range(n)), [0] * n
    predict_at = []
    for j, cont in enumerate(conts):
        start = len(tokens)
        tokens += cont[:-1]
        positions += range(n, n + len(cont) - 1)
        segments += [j + 1] * (len(cont) - 1)
        predict_at.append((n - 1, *range(start, start + len(cont) - 1)))
    return PackedRow(tuple(tokens), tuple(positions), tuple(segments), tuple(predict_at),
                     tuple(tuple(c) for c in conts))


def tree_mask(segments: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[rows, 1, width, width] additive mask from segment ids [rows, width] (-1: left padding): a query sees
    earlier keys of the context (segment 0) and of its own segment; padding is seen by no one."""
    width = segments.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=segments.device).tril()
    q, k = segments.unsqueeze(2), segments.unsqueeze(1)
    allowed = causal & (k >= 0) & ((k == 0) | (k == q))
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1)


def score_rows(model: Any, rows: Sequence[PackedRow], pad_id: int, device: Any,
               dtype: torch.dtype) -> list[list[tuple[list[float], list[bool]]]]:
    """Per row, per continuation: (log-probs of its tokens, whether each is the argmax). One forward."""
    width = max(len(r.tokens) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    seg = torch.full((len(rows), width), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        pad = width - len(r.tokens)
        ids[i, pad:], pos[i, pad:], seg[i, pad:] = (torch.tensor(x) for x in (r.tokens, r.positions, r.segments))
    ids, pos, mask = ids.to(device), pos.to(device), tree_mask(seg.to(device), dtype)
    where = [(i, width - len(r.tokens) + at) for i, r in enumerate(rows) for ats in r.predict_at for at in ats]
    hidden_or_logits = _forward(model, ids, mask, pos)
    picked = hidden_or_logits[[w[0] for w in where], [w[1] for w in where]]
    logits = model.get_output_embeddings()(picked) if output_layer_is_separable(model) else picked
    targets = torch.tensor([t for r in rows for cont in r.targets for t in cont], device=logits.device)
    lp, top = token_scores(logits, targets)
    lp, top = lp.tolist(), top.tolist()
    out, at = [], 0
    for r in rows:
        conts = []
        for cont in r.targets:
            conts.append((lp[at : at + len(cont)], top[at : at + len(cont)]))
            at += len(cont)
        out.append(conts)
    return out


def _forward(model: Any, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Last hidden states where the output layer can be applied to the picked positions alone, else logits."""
    if output_layer_is_separable(model):
        body = model.base_model
        return body(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).last_hidden_state
    return model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits


def batches(rows: Sequence[PackedRow], size: int) -> list[list[int]]:
    """Row indices, longest first, in batches of at most ``size`` rows whose padded mask fits the budget."""
    order = longest_first(rows, lambda r: len(r.tokens))
    return list(budget_chunks(order, size, cost=lambda i: len(rows[i].tokens) ** 2, budget=MASK_BUDGET))


# -- detection -------------------------------------------------------------------------------------------
def packed_ok(model: Any) -> bool:
    """Whether the model honours a custom 4-D mask with position ids: structurally (a plain full-attention
    decoder, as for KV reuse) and numerically (packed log-probs equal separate forwards on a tiny input).
    Checked once per model object."""
    cached = getattr(model, "_lmcritic_packed_ok", None)
    if cached is None:
        cached = _structural_ok(model) and _self_test(model)
        try:
            object.__setattr__(model, "_lmcritic_packed_ok", cached)
        except (AttributeError, TypeError):
            return cached
    return cached


def _structural_ok(model: Any) -> bool:
    from lmcritic.backends._hf_loglik import kv_reuse_ok

    return kv_reuse_ok(model) and accepts(model, "position_ids") and hasattr(model, "get_output_embeddings")


def _self_test(model: Any) -> bool:
    """Packed vs one plain forward per (context + continuation) on a 4-token context and 3 continuations."""
    first = next(model.parameters(), None)
    if first is None:
        return False
    device, dtype = first.device, first.dtype
    vocab = int(getattr(model.config, "vocab_size", 0) or 0)
    if vocab < 12:
        return False
    # one row per call: the test is about the mask and the positions, not about padding's rounding
    tests = [([3, 7, 1, 9], [[4, 2, 8], [5], [11, 6]]), ([1, 9], [[4, 2], [10, 3]])]
    try:
        with torch.inference_mode():
            return all(_matches_plain(model, ctx, conts, score_rows(model, [pack(ctx, conts)], 0, device, dtype)[0],
                                      device) for ctx, conts in tests)
    except Exception:  # any architecture quirk (mask format, missing kwargs): the KV-reuse path stays
        return False


def _matches_plain(model: Any, ctx: list[int], conts: list[list[int]], got: list, device: Any) -> bool:
    for cont, (lps, _) in zip(conts, got):
        ids = torch.tensor([ctx + cont[:-1]], device=device)
        lp = torch.log_softmax(model(input_ids=ids, use_cache=False).logits[0, len(ctx) - 1 :].float(), -1)
        want = lp[torch.arange(len(cont)), torch.tensor(cont)].tolist()
        if len(lps) != len(want) or any(abs(a - b) > SELF_TEST_TOL * max(1.0, abs(b)) for a, b in zip(lps, want)):
            return False
    return True
