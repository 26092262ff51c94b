"""Log-likelihoods in packed rows under tree attention: every shared prefix computed once.

A row is a token trie of several requests' ``context + continuation[:-1]``: the context shared by the choices
of a question, a few-shot prompt shared by questions, the words before an edit shared by edited copies of a
sentence, are each one path of nodes. A 4-D attention mask lets each node see itself and its ancestors only,
and its position id is its depth, so every token computes exactly what it would in its own sequence (the
first continuation token is predicted at the context's last node, the others at their own). Against the
KV-reuse path (context pass, then continuation passes a few tokens wide on copied caches) this is one wide
forward, no cache copies, and prefixes shared across contexts; against lm-eval it computes each context once
instead of once per choice.

Models that cannot take a custom 4-D mask (flash or flex attention, models that rebuild their own mask) are
found once per model by a numerical self-test on a tiny input (:func:`packed_ok`) and keep the KV-reuse path.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import torch

from lmcritic.backends import _deadline
from lmcritic.backends._batching import least_padding_chunks, longest_first
from lmcritic.backends._hf_tensors import accepts, output_layer_is_separable, token_scores

if TYPE_CHECKING:
    from transformers import PreTrainedModel

MASK_BUDGET = 1 << 26  # float32 mask entries per forward (256 MiB): rows × width², batches split to fit
PACK_ROOM = 256  # nodes a row may hold however short its first request (see row_cap)
FORWARD_OVERHEAD = 32  # nodes' worth of a forward's fixed cost (launches, per-layer Python): batches pad less
# The row width at which attention (a masked row computes all width² scores) costs as much as the rest of the
# forward. SmolLM2-135M at 1 thread: attention 13-15% of a 390-wide forward (torch profiler), so ~2,000; two
# 8-shot prompts sharing only their 20-token instruction ran 20-25% slower in one row than in two.
ATTENTION_WIDTH = 2048
MIN_SHARED = 8  # tokens a request shares with the row's previous one to join it, unless its whole context (plan_rows)
# Relative: arbitrary token ids get log-probs near -20 whose last digits move with the attention kernel (a masked
# row and a causal one round differently: ~2e-4 there, ~1e-6 on real text); an ignored mask or position id
# moves them by whole units.
SELF_TEST_TOL = 1e-3


@dataclass(frozen=True)
class PackedRow:
    """Requests packed as a token trie: each node's token, position (its depth) and parent (-1: a root), in an
    order where parents come first; for each request, the nodes predicting its continuation's tokens."""

    tokens: tuple[int, ...]
    positions: tuple[int, ...]
    parents: tuple[int, ...]
    predict_at: tuple[tuple[int, ...], ...]  # per request: the node predicting each continuation token
    targets: tuple[tuple[int, ...], ...]


def pack(requests: Sequence[tuple[Sequence[int], Sequence[int]]]) -> PackedRow:
    """The packed row of (context, non-empty continuation) pairs: ``context + continuation[:-1]`` of every
    pair inserted in a trie, so a shared prefix (the context of several choices, a few-shot prompt, the words
    before an edit) is one path of nodes; continuation token t is predicted at the node of its first
    ``len(context) + t`` tokens."""
    tokens: list[int] = []
    positions: list[int] = []
    parents: list[int] = []
    children: list[dict[int, int]] = [{}]  # children[node + 1]: token -> node (slot 0: the roots)
    predict_at = []
    for ctx, cont in requests:
        node, path = -1, []
        for depth, tok in enumerate((*ctx, *cont[:-1])):
            nxt = children[node + 1].get(tok)
            if nxt is None:
                nxt = len(tokens)
                tokens.append(tok)
                positions.append(depth)
                parents.append(node)
                children.append({})
                children[node + 1][tok] = nxt
            node = nxt
            path.append(node)
        predict_at.append(tuple(path[len(ctx) - 1 + t] for t in range(len(cont))))
    return PackedRow(tuple(tokens), tuple(positions), tuple(parents), tuple(predict_at),
                     tuple(tuple(c) for _, c in requests))


def tree_mask(rows: Sequence[PackedRow], width: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """[rows, 1, width, width] additive mask, rows left-padded to ``width``: a node sees itself and its
    ancestors only (a request's own earlier tokens); padding is seen by no one and sees nothing."""
    import numpy as np

    allowed = np.zeros((len(rows), width, width), dtype=bool)
    for b, row in enumerate(rows):
        pad = width - len(row.tokens)
        for i, parent in enumerate(row.parents):
            if parent >= 0:
                allowed[b, pad + i] = allowed[b, pad + parent]
            allowed[b, pad + i, pad + i] = True
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~torch.from_numpy(allowed), torch.finfo(dtype).min)
    return mask.unsqueeze(1).to(device)


def score_rows(model: PreTrainedModel, rows: Sequence[PackedRow], pad_id: int, device: torch.device | str,
               dtype: torch.dtype) -> list[list[tuple[list[float], list[bool]]]]:
    """Per row, per request: (log-probs of its continuation's tokens, whether each is the argmax). One forward."""
    width = max(len(r.tokens) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        pad = width - len(r.tokens)
        ids[i, pad:], pos[i, pad:] = torch.tensor(r.tokens), torch.tensor(r.positions)
    ids, pos, mask = ids.to(device), pos.to(device), tree_mask(rows, width, dtype, device)
    where = [(i, width - len(r.tokens) + at) for i, r in enumerate(rows) for ats in r.predict_at for at in ats]
    hidden_or_logits = _forward(model, ids, mask, pos)
    picked = hidden_or_logits[[w[0] for w in where], [w[1] for w in where]]
    logits = model.get_output_embeddings()(picked) if output_layer_is_separable(model) else picked
    targets = torch.tensor([t for r in rows for cont in r.targets for t in cont], device=logits.device)
    lp_t, top_t = token_scores(logits, targets)
    lp: list[float] = lp_t.tolist()
    top: list[bool] = top_t.tolist()
    out: list[list[tuple[list[float], list[bool]]]] = []
    at = 0
    for r in rows:
        conts = []
        for cont in r.targets:
            conts.append((lp[at : at + len(cont)], top[at : at + len(cont)]))
            at += len(cont)
        out.append(conts)
    return out


def plan_rows(seqs: Sequence[tuple[int, ...]], contexts: Sequence[int], max_length: int) -> list[list[int]]:
    """Which requests share a row: ``seqs`` (each request's ``context + continuation[:-1]``, ``contexts`` its
    context's length) in token order, so each one's longest shared prefix is with the one before it; a request
    joins the row when it shares its whole context or at least ``MIN_SHARED`` tokens with it, the row's nodes
    stay within ``row_cap`` and the tokens shared outweigh the attention the wider row adds (``_pays``), else it
    starts a row. Unrelated requests stay apart: packing them would only widen the rows (attention grows with the
    square of a row's width) without saving a token; so do long prompts sharing only a short instruction."""
    order = sorted(range(len(seqs)), key=lambda i: seqs[i])
    rows: list[list[int]] = []
    nodes = cap = 0
    prev: tuple[int, ...] = ()
    for i in order:
        seq = seqs[i]
        shared = len(os.path.commonprefix([prev, seq]))
        grown = nodes + len(seq) - shared
        if rows and shared >= min(MIN_SHARED, contexts[i]) and grown <= cap and _pays(shared, nodes, grown, len(seq)):
            rows[-1].append(i)
            nodes += len(seq) - shared
        else:
            rows.append([i])
            nodes, cap = len(seq), row_cap(len(seq), max_length)
        prev = seq
    return rows


def _pays(shared: int, nodes: int, grown: int, alone: int) -> bool:
    """Whether joining saves compute: the ``shared`` tokens not recomputed against the attention the wider row
    adds (every node of a row attends over its whole width: cost ~ width + width² / ATTENTION_WIDTH)."""
    return shared * ATTENTION_WIDTH >= grown * grown - nodes * nodes - alone * alone


def row_cap(first: int, max_length: int) -> int:
    """The most nodes in a row that starts with a ``first``-token request: twice that, at least ``PACK_ROOM``,
    within max_length (always at least the request itself, which fits the model)."""
    return max(first, min(max_length, max(2 * first, PACK_ROOM)))


def _forward(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Last hidden states where the output layer can be applied to the picked positions alone, else logits."""
    if output_layer_is_separable(model):
        body = model.base_model
        return body(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).last_hidden_state
    return model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits


def batches(rows: Sequence[PackedRow], size: int) -> Iterator[list[int]]:
    """Row indices, longest first, in batches of at most ``size`` rows whose padded mask fits the budget, cut
    where they pad least (a forward computes every padded node; ``FORWARD_OVERHEAD`` per extra batch)."""
    order = longest_first(rows, lambda r: len(r.tokens))
    widths = [len(rows[i].tokens) for i in order]
    for chunk in least_padding_chunks(widths, size, overhead=FORWARD_OVERHEAD, cost=lambda k: widths[k] ** 2,
                                      budget=MASK_BUDGET):
        _deadline.check()  # a call with a deadline stops between batches
        yield [order[k] for k in chunk]


# -- detection -------------------------------------------------------------------------------------------
def packed_ok(model: PreTrainedModel) -> bool:
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


def _structural_ok(model: PreTrainedModel) -> bool:
    from lmcritic.backends._hf_loglik import kv_reuse_ok

    return kv_reuse_ok(model) and accepts(model, "position_ids") and hasattr(model, "get_output_embeddings")


def _self_test(model: PreTrainedModel) -> bool:
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
            return all(_matches_plain(model, ctx, conts, score_rows(model, [pack([(ctx, c) for c in conts])], 0,
                                                                    device, dtype)[0], device) for ctx, conts in tests)
    except Exception:  # any architecture quirk (mask format, missing kwargs): the KV-reuse path stays
        return False


def _matches_plain(model: PreTrainedModel, ctx: list[int], conts: list[list[int]], got: list,
                   device: torch.device | str) -> bool:
    for cont, (lps, _) in zip(conts, got):
        ids = torch.tensor([ctx + cont[:-1]], device=device)
        lp = torch.log_softmax(model(input_ids=ids, use_cache=False).logits[0, len(ctx) - 1 :].float(), -1)
        want = lp[torch.arange(len(cont)), torch.tensor(cont)].tolist()
        if len(lps) != len(want) or any(abs(a - b) > SELF_TEST_TOL * max(1.0, abs(b)) for a, b in zip(lps, want)):
            return False
    return True
