"""Batched greedy and sampled decoding with one seeded ``torch.Generator`` per row.

``transformers``' ``generate`` draws every row's sample from the process-wide generator, so a sampled result
would depend on what else was in the batch; lmcritic therefore sampled one request at a time. This loop runs a
batch through the model together and draws each row's token with that row's own generator, seeded with the
request's seed: row r consumes exactly the random numbers a lone ``generate`` after ``torch.manual_seed(seed)``
consumes (one ``multinomial`` over a [1, vocab] row per step, after the same temperature/top-k/top-p warpers,
in the order ``generate`` applies them), so outputs do not depend on batch size or order and match the
one-at-a-time path. What can still differ is float rounding between a padded batch and a lone row (~1e-6 in
the logits), which changes a token only when a draw lands that close to a boundary. Finished rows leave the
batch (their cache rows are dropped), so a batch runs as long as its longest answer, not max_new_tokens each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from lmcritic.backends import _deadline
from lmcritic.backends._hf_tensors import accepts, cache_kwarg, left_pad, returned_cache
from lmcritic.requests import GenerateResult, GenParams

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from lmcritic.backends.hf import HFBackend


def decode_ok(model: PreTrainedModel) -> bool:
    """Whether this loop can drive the model: a plain decoder taking a KV cache, masks and position ids
    (checked once per model, like the shared-context path's ``kv_reuse_ok``); else ``generate`` is used."""
    cached = getattr(model, "_lmcritic_decode_ok", None)
    if cached is None:
        from lmcritic.backends._hf_loglik import kv_reuse_ok

        cached = kv_reuse_ok(model) and accepts(model, "use_cache")
        try:
            object.__setattr__(model, "_lmcritic_decode_ok", cached)
        except (AttributeError, TypeError):
            return cached
    return cached


def warpers(params: GenParams) -> list[Callable[[Any, torch.Tensor], torch.Tensor]]:
    """The logits warpers ``generate`` builds for these settings (transformers' own classes, same order)."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    out: list[Any] = []
    if params.temperature != 1.0:
        out.append(TemperatureLogitsWarper(params.temperature))
    if params.top_k:
        out.append(TopKLogitsWarper(top_k=params.top_k, min_tokens_to_keep=1))
    if params.top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=params.top_p, min_tokens_to_keep=1))
    return out


@dataclass
class _Rows:
    """The rows still decoding: their request index, generator, generated tokens and model inputs."""

    index: list[int]
    generators: list[Any]
    tokens: list[list[int]]
    mask: torch.Tensor  # [rows, width]: left padding, then ones
    last_pos: torch.Tensor  # [rows]: the position of each row's last token

    def keep(self, keep: list[int], cache: object) -> None:
        """Drop the finished rows everywhere, their KV cache rows included."""
        idx = torch.tensor(keep, device=self.mask.device)
        self.index = [self.index[r] for r in keep]
        self.generators = [self.generators[r] for r in keep]
        self.tokens = [self.tokens[r] for r in keep]
        self.mask, self.last_pos = self.mask[idx], self.last_pos[idx]
        for layer in getattr(cache, "layers", ()):
            layer.batch_select_indices(idx)


def decode(be: HFBackend, prompts: Sequence[Sequence[int]], params: GenParams,
           seeds: Sequence[int]) -> list[list[int]]:
    """New tokens per prompt (EOS included when produced), all rows sharing ``params`` except the seed."""
    ids, mask, pos = left_pad(prompts, be.pad_id, be.device)
    mask = torch.ones_like(ids) if mask is None else mask
    gens = [torch.Generator(device=be.device).manual_seed(int(s)) for s in seeds] if params.sampling else []
    rows = _Rows(list(range(len(prompts))), gens or [None] * len(prompts), [[] for _ in prompts], mask, pos[:, -1])
    done: dict[int, list[int]] = {}
    stops = _StopText(be.tokenizer, params.stop)
    chain = warpers(params) if params.sampling else []
    eos = set(be.eos_ids)
    out = be.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    while True:
        _deadline.check()  # a call with a deadline stops between tokens
        cache = returned_cache(out)
        chosen = _choose(out.logits[:, -1].to(copy=True, dtype=torch.float32), chain, rows.generators)
        keep = []
        for r, token in enumerate(chosen):
            rows.tokens[r].append(token)
            toks = rows.tokens[r]
            if token in eos or len(toks) >= params.max_new_tokens or stops.hit(toks):
                done[rows.index[r]] = toks
            else:
                keep.append(r)
        if not keep:
            return [done[i] for i in range(len(prompts))]
        if len(keep) < len(chosen):
            rows.keep(keep, cache)
        out = _step(be, rows, [rows.tokens[r][-1] for r in range(len(keep))], cache)


def _choose(logits: torch.Tensor, chain: Sequence[Any], generators: Sequence[Any]) -> list[int]:
    """Greedy argmax, or per row one multinomial draw from that row's generator (what ``generate`` does for
    a lone row: warpers, softmax, ``torch.multinomial(probs, 1)``)."""
    if generators[0] is None:
        return logits.argmax(-1).tolist()
    for warp in chain:
        logits = warp(None, logits)
    probs = torch.nn.functional.softmax(logits, dim=-1)
    return [int(torch.multinomial(probs[r : r + 1], num_samples=1, generator=g)) for r, g in enumerate(generators)]


def _step(be: HFBackend, rows: _Rows, tokens: list[int], cache: object) -> Any:
    """One decoding step: each row's last token at the next position, on the cache."""
    rows.mask = torch.cat([rows.mask, rows.mask.new_ones((rows.mask.shape[0], 1))], dim=1)
    rows.last_pos = rows.last_pos + 1
    ids = torch.tensor(tokens, device=be.device).unsqueeze(1)
    kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": rows.mask, "position_ids": rows.last_pos.unsqueeze(1),
              "use_cache": True, "logits_to_keep": 1, cache_kwarg(be.model) or "past_key_values": cache}
    return be.model(**kwargs)


class _StopText:
    """Whether a row's generated text contains a stop sequence (the tail is enough: the earlier tokens were
    checked at earlier steps), as the ``StopOnText`` criterion decides for ``generate``."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stops: Sequence[str]) -> None:
        self.tokenizer, self.stops = tokenizer, [s for s in stops if s]
        self.tail = 2 * max((len(s) for s in self.stops), default=1) + 8

    def hit(self, tokens: Sequence[int]) -> bool:
        if not self.stops:
            return False
        text = str(self.tokenizer.decode(list(tokens[-self.tail :]), skip_special_tokens=True))
        return any(s in text for s in self.stops)


def results(be: HFBackend, prompts: Sequence[Sequence[int]], params: GenParams, seeds: Sequence[int],
            finish: Callable[..., GenerateResult]) -> list[GenerateResult]:
    """``decode`` then each row cut at EOS / the earliest stop sequence, as the ``generate`` path reports it."""
    new = decode(be, prompts, params, seeds)
    return [finish(be, toks, params.stop, len(p)) for toks, p in zip(new, prompts)]
