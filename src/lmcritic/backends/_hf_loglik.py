"""log P(continuation | context) with lm-evaluation-harness's conventions, sharing each context's KV cache.

Encoding follows lm-eval's ``HFLM._encode_pair``: trailing spaces of the context move to the continuation,
``cont = enc(context + continuation)[len(enc(context)):]``, an empty context becomes the prefix token, and the
input is ``(ctx + cont)[-(max_length + 1):][:-1]``. Requests sharing a context (multiple choice) run that
context once: packed with all its continuations (and any other request sharing a prefix with it) in one row
under a tree-attention mask (``_hf_packed``), or, for models that cannot take such a mask, with its KV cache
copied per continuation row.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

import torch

from lmcritic.backends._batching import chunked, group_by, longest_first, map_sorted, restore
from lmcritic.backends._hf_packed import batches as packed_batches
from lmcritic.backends._hf_packed import pack, packed_ok, plan_rows, score_rows
from lmcritic.backends._hf_tensors import (
    LOGITS_BUDGET,
    accepts,
    cache_kwarg,
    left_pad,
    padded_targets,
    returned_cache,
    right_pad,
    score_tails,
    token_scores,
)
from lmcritic.backends._host import TokenizerHost
from lmcritic.backends.base import check_text
from lmcritic.errors import InputError
from lmcritic.requests import LoglikelihoodRequest, LoglikelihoodResult

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from lmcritic.backends.hf import HFBackend


@dataclass(frozen=True)
class Pair:
    """One encoded request: its position in the call, context tokens and continuation tokens."""

    index: int
    ctx: tuple[int, ...]
    cont: tuple[int, ...]


def loglikelihood(be: HFBackend, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
    """Score every request; requests sharing a prefix go through the packed path, else the KV-reuse path."""
    pairs = encode_pairs(be, requests)
    limit = be.max_length + 1
    empty = [(p.index, LoglikelihoodResult(0.0, True, 0, False)) for p in pairs if not p.cont]
    scorable = [p for p in pairs if p.cont]
    fits = [p for p in scorable if len(p.ctx) + len(p.cont) <= limit]  # the others are left-truncated: plain
    if fits and be.fast_paths and packed_ok(be.model):
        shared = [g for g in _plan(fits, be.max_length) if len(g) >= 2]
        grouped = score_packed(be, shared)
    else:
        shared = [g for g in group_by(fits, lambda p: p.ctx).values() if len(g) >= 2] if kv_reuse_ok(be.model) else []
        grouped = score_shared(be, shared)
    in_shared = {p.index for g in shared for p in g}
    done = empty + grouped + score_plain(be, [p for p in scorable if p.index not in in_shared])
    return restore(done, len(pairs))


def encode_pairs(be: TokenizerHost, requests: Sequence[LoglikelihoodRequest]) -> list[Pair]:
    """Validate and tokenize like lm-eval (``add_special_tokens=False``; unique contexts encoded once)."""
    ctxs, wholes = [], []
    for i, req in enumerate(requests):
        context = check_text(req.context, f"request {i} context", allow_empty=True)
        continuation = check_text(req.continuation, f"request {i} continuation")
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        ctxs.append(context)
        wholes.append(context + continuation)
    unique = sorted(set(c for c in ctxs if c))
    encoded = dict(zip(unique, _encode(be, unique)))
    whole_ids = _encode(be, wholes)
    pairs = []
    for i, (context, whole) in enumerate(zip(ctxs, whole_ids)):
        if context:
            ctx = encoded[context]
            pair = Pair(i, tuple(ctx), tuple(whole[len(ctx) :]))
        else:  # lm-eval: the continuation alone after the prefix token (also for an all-space context)
            pair = Pair(i, (be.require_prefix_id(),), tuple(whole))
        _check_fits(pair, be.max_length)
        pairs.append(pair)
    return pairs


def _encode(be: TokenizerHost, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return be.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]


def _check_fits(pair: Pair, max_length: int) -> None:
    if len(pair.cont) > max_length:
        raise InputError(f"request {pair.index} continuation has {len(pair.cont)} tokens, over the model's "
                         f"max_length {max_length}", "shorten the continuation")


def _result(lps: Sequence[float], top: Sequence[bool], truncated: bool) -> LoglikelihoodResult:
    return LoglikelihoodResult(float(sum(lps)), bool(all(top)), len(lps), truncated)


# -- the plain path: one full sequence per request ------------------------------------------------
def score_plain(be: HFBackend, pairs: Sequence[Pair]) -> list[tuple[int, LoglikelihoodResult]]:
    """Each request's (ctx + cont) in one forward, left-truncated to max_length, batched longest-first."""
    limit = be.max_length + 1
    rows = [((p.ctx + p.cont)[-limit:][:-1], p.cont) for p in pairs]

    def run(chunk: Sequence[tuple[tuple[int, ...], tuple[int, ...]]]) -> list[tuple[list[float], Any]]:
        return score_tails(be.model, chunk, be.pad_id, be.device)

    scored = map_sorted(rows, lambda r: len(r[0]), be.batch_size, run, cost=lambda r: len(r[1]) * be.vocab,
                        budget=LOGITS_BUDGET)
    return [(p.index, _result(lp, top, len(p.ctx) + len(p.cont) > limit)) for p, (lp, top) in zip(pairs, scored)]


# -- packed rows: tree attention -------------------------------------------------------------------------
def _plan(pairs: Sequence[Pair], max_length: int) -> list[list[Pair]]:
    """The requests of each packed row (see ``plan_rows``); a row of one request shares nothing."""
    plan = plan_rows([p.ctx + p.cont[:-1] for p in pairs], [len(p.ctx) for p in pairs], max_length)
    return [[pairs[i] for i in members] for members in plan]


def score_packed(be: HFBackend, rows: Sequence[Sequence[Pair]]) -> list[tuple[int, LoglikelihoodResult]]:
    """Each row's requests packed as a token trie (see ``_hf_packed``), rows batched longest first."""
    packed = [pack([(p.ctx, p.cont) for p in row]) for row in rows]
    out: list[tuple[int, LoglikelihoodResult]] = []
    for batch in packed_batches(packed, be.batch_size):
        scored = score_rows(be.model, [packed[r] for r in batch], be.pad_id, be.device, be.dtype)
        for r, conts in zip(batch, scored):
            out.extend((p.index, _result(lp, top, False)) for p, (lp, top) in zip(rows[r], conts))
    return out


# -- the shared-context path for models without custom masks: KV reuse ------------------------------------
def kv_reuse_ok(model: PreTrainedModel) -> bool:
    """Plain full-attention decoders only: sliding-window or hybrid caches must not be copied blindly."""
    config: Any = getattr(model, "config", None)
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    if getattr(text, "sliding_window", None) or getattr(text, "attention_chunk_size", None):
        return False
    if any(t != "full_attention" for t in getattr(text, "layer_types", None) or ()):
        return False
    needs = ("logits_to_keep", "position_ids", "attention_mask")
    plain = not getattr(text, "is_encoder_decoder", False) and cache_kwarg(model) is not None
    return plain and all(accepts(model, n) for n in needs)


def score_shared(be: HFBackend, groups: Sequence[Sequence[Pair]]) -> list[tuple[int, LoglikelihoodResult]]:
    """Groups of requests with identical context tokens: contexts batched, continuations on copied caches."""
    order = longest_first(groups, lambda g: len(g[0].ctx))
    out: list[tuple[int, LoglikelihoodResult]] = []
    for chunk in chunked([groups[i] for i in order], be.batch_size):
        out.extend(_score_group_chunk(be, chunk))
    return out


def _score_group_chunk(be: HFBackend, groups: Sequence[Sequence[Pair]]) -> list[tuple[int, LoglikelihoodResult]]:
    ctx = _run_contexts(be, [g[0].ctx for g in groups])
    if ctx is None:  # the model returned a cache we do not know how to copy
        return score_plain(be, [p for g in groups for p in g])
    rows = [(gi, p) for gi, g in enumerate(groups) for p in g]
    first = _first_tokens(ctx, rows)
    rest: dict[int, tuple[list[float], list[bool]]] = {}
    multi = [r for r in rows if len(r[1].cont) > 1]
    multi = [multi[i] for i in longest_first(multi, lambda r: len(r[1].cont))]
    for sub in chunked(multi, be.batch_size):
        rest.update(_run_continuations(be, ctx, sub))
    results = []
    for _, p in rows:
        lp0, top0 = first[p.index]
        lps, tops = rest.get(p.index, ([], []))
        results.append((p.index, _result([lp0, *lps], [top0, *tops], False)))
    return results


@dataclass
class _Contexts:
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values), batch = contexts
    mask: torch.Tensor  # [contexts, width], left-padded
    lengths: torch.Tensor  # real tokens per context
    lp_all: torch.Tensor  # [contexts, vocab] log-probs of the token after each context
    argmax: torch.Tensor  # [contexts]


def _run_contexts(be: HFBackend, ctxs: Sequence[tuple[int, ...]]) -> _Contexts | None:
    """One left-padded forward over the contexts, keeping their KV cache and last-position log-probs."""
    ids, mask, pos = left_pad(ctxs, be.pad_id, be.device)
    out = be.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    layers = _plain_layers(returned_cache(out))
    if layers is None:
        return None
    last = out.logits[:, -1].float()
    full_mask = mask if mask is not None else torch.ones_like(ids)
    lengths = torch.tensor([len(c) for c in ctxs], device=be.device)
    return _Contexts(layers, full_mask, lengths, torch.log_softmax(last, -1), last.argmax(-1))


def _plain_layers(cache: object) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if type(cache) is not DynamicCache or not all(type(layer) is DynamicLayer for layer in cache.layers):
        return None
    layers: list[Any] = list(cache.layers)
    return [(layer.keys, layer.values) for layer in layers]


def _first_tokens(ctx: _Contexts, rows: Sequence[tuple[int, Pair]]) -> dict[int, tuple[float, bool]]:
    """The first continuation token is predicted by the context's own last position."""
    return {p.index: (float(ctx.lp_all[gi, p.cont[0]]), bool(ctx.argmax[gi] == p.cont[0])) for gi, p in rows}


def _run_continuations(be: HFBackend, ctx: _Contexts, rows: Sequence[tuple[int, Pair]]) -> dict[int, tuple[list, list]]:
    """Continuation tokens 2..k on a copy of their context's cache (input: cont[:-1], targets: cont[1:])."""
    sources = [gi for gi, _ in rows]
    idx = torch.tensor(sources, device=be.device)
    ids, cmask = right_pad([p.cont[:-1] for _, p in rows], be.pad_id, be.device)
    width = ids.shape[1]
    cache = _roomy_cache(ctx.layers, sources, width)
    mask = torch.cat([ctx.mask[idx], cmask], dim=1)
    pos = ctx.lengths[idx].unsqueeze(1) + torch.arange(width, device=be.device).unsqueeze(0)
    kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "position_ids": pos,
                              str(cache_kwarg(be.model)): cache}
    logits = be.model(**kwargs, use_cache=True).logits
    targets = padded_targets([p.cont[1:] for _, p in rows], width, right_align=False).to(logits.device)
    lp, top = token_scores(logits, targets)
    out = {}
    for r, (_, p) in enumerate(rows):
        k = len(p.cont) - 1
        out[p.index] = (lp[r, :k].tolist(), top[r, :k].tolist())
    return out


def _roomy_cache(layers: Sequence[tuple[torch.Tensor, torch.Tensor]], rows: Sequence[int], room: int) -> Any:
    """A DynamicCache whose row r holds context ``rows[r]``'s keys/values, copied once into buffers with ``room``
    free positions, so the continuation's own keys are written in place. Built as ``DynamicCache(ddp_cache_data=
    [(k[idx], v[idx])])`` it copied each context three times per layer (index, init, ``torch.cat`` on update):
    on 124M multiple choice those copies were a quarter of the time."""
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layers = [_roomy_layer()(k, v, rows, room) for k, v in layers]
    return cache


@lru_cache(maxsize=None)
def _roomy_layer() -> type:
    """The layer class, defined on first use so that importing this module does not import transformers."""
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        def __init__(self, keys: torch.Tensor, values: torch.Tensor, rows: Sequence[int], room: int) -> None:
            super().__init__()
            self.length = keys.shape[-2]
            self._k, self._v = _with_room(keys, rows, room), _with_room(values, rows, room)
            self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]
            self.device, self.is_initialized = keys.device, True

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            end = self.length + key_states.shape[-2]
            if end > self._k.shape[-2]:  # more tokens than the room made for them: grow as DynamicLayer does
                return super().update(key_states, value_states, *args, **kwargs)
            self._k[:, :, self.length : end].copy_(key_states)
            self._v[:, :, self.length : end].copy_(value_states)
            self.length = end
            self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
            return self.keys, self.values

    return RoomyLayer


def _with_room(t: torch.Tensor, rows: Sequence[int], room: int) -> torch.Tensor:
    """[len(rows), heads, n + room, dim] with row r's first n positions copied from ``t[rows[r]]``."""
    n = t.shape[-2]
    out = t.new_empty((len(rows), t.shape[1], n + room, t.shape[-1]))
    for r, source in enumerate(rows):
        out[r, :, :n].copy_(t[source])
    return out
