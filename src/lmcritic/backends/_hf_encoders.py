"""Classification, masked-LM pseudo-log-likelihood and mean-pooled embeddings.

Classify and embed truncate to ``max_length`` like any pipeline would; pseudo-log-likelihood refuses a text
that does not fit, since scoring a silently shortened text would give a wrong number.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from lmcritic.backends._batching import group_by, map_sorted, restore
from lmcritic.backends._hf_loading import names_in_logit_order
from lmcritic.backends._hf_tensors import right_pad
from lmcritic.backends.base import check_text
from lmcritic.errors import InputError
from lmcritic.requests import (
    ClassifyRequest,
    ClassifyResult,
    EmbeddingRequest,
    EmbeddingResult,
    PseudoLoglikelihoodRequest,
    PseudoLoglikelihoodResult,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from lmcritic.backends.hf import HFBackend


def labels(model: PreTrainedModel) -> tuple[str, ...]:
    """Label names in logit order, from ``config.id2label``."""
    id2label = getattr(model.config, "id2label", None) or {}
    n = int(getattr(model.config, "num_labels", len(id2label)) or len(id2label))
    return tuple(names_in_logit_order(id2label, n))


def classify(be: HFBackend, requests: Sequence[ClassifyRequest]) -> list[ClassifyResult]:
    """Softmax over the classifier's labels; requests with and without ``text_pair`` are batched apart."""
    for i, r in enumerate(requests):
        check_text(r.text, f"request {i} text")
        if r.text_pair is not None:
            check_text(r.text_pair, f"request {i} text_pair")
    names = labels(be.model)
    done: list[tuple[int, ClassifyResult]] = []
    for _, members in group_by(range(len(requests)), lambda i: requests[i].text_pair is None).items():

        def run(chunk: Sequence[int]) -> list[ClassifyResult]:
            firsts = [requests[i].text for i in chunk]
            seconds = [requests[i].text_pair for i in chunk] if requests[chunk[0]].text_pair is not None else None
            enc = be.tokenizer(firsts, seconds, truncation=True, max_length=be.max_length, padding=True,
                               return_tensors="pt").to(be.device)
            probs = torch.softmax(be.model(**enc).logits.float(), dim=-1).tolist()
            return [ClassifyResult(names, tuple(p)) for p in probs]

        size = lambda i: len(requests[i].text) + len(requests[i].text_pair or "")  # noqa: E731
        done.extend(zip(members, map_sorted(members, size, be.batch_size, run)))
    return restore(done, len(requests))


def pseudo_loglikelihood(be: HFBackend,
                         requests: Sequence[PseudoLoglikelihoodRequest]) -> list[PseudoLoglikelihoodResult]:
    """Salazar et al. (2020): mask each non-special token in turn; sum log P(original token). Copies are batched."""
    tok = be.tokenizer
    encoded = [_encode_for_pll(be, i, r) for i, r in enumerate(requests)]
    rows = [(d, pos, ids) for d, (ids, positions) in enumerate(encoded) for pos in positions]

    def run(chunk: Sequence[tuple[int, int, list[int]]]) -> list[float]:
        masked = [ids[:pos] + [tok.mask_token_id] + ids[pos + 1 :] for _, pos, ids in chunk]
        inp, mask = right_pad(masked, be.pad_id, be.device)
        logits = be.model(input_ids=inp, attention_mask=mask).logits
        at = torch.tensor([pos for _, pos, _ in chunk], device=logits.device)
        picked = logits[torch.arange(len(chunk), device=logits.device), at].float().log_softmax(-1)
        want = torch.tensor([ids[pos] for _, pos, ids in chunk], device=logits.device)
        return picked.gather(-1, want.unsqueeze(-1)).squeeze(-1).tolist()

    scores = map_sorted(rows, lambda r: len(r[2]), be.batch_size, run)
    per_doc: list[list[float]] = [[] for _ in requests]
    for (d, _, _), lp in zip(rows, scores):
        per_doc[d].append(lp)
    out = []
    for (ids, positions), lps in zip(encoded, per_doc):
        names = tuple(str(t) for t in tok.convert_ids_to_tokens([ids[p] for p in positions]))
        out.append(PseudoLoglikelihoodResult(float(sum(lps)), names, tuple(lps)))
    return out


def _encode_for_pll(be: HFBackend, index: int, req: PseudoLoglikelihoodRequest) -> tuple[list[int], list[int]]:
    """Token ids with special tokens, and the positions to mask (the non-special ones)."""
    text = check_text(req.text, f"request {index} text")
    ids = be.tokenizer(text, verbose=False)["input_ids"]
    if len(ids) > be.max_length:
        raise InputError(f"request {index} text has {len(ids)} tokens, over the model's max_length {be.max_length}",
                         "split it into shorter texts")
    special = be.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
    return ids, [i for i, s in enumerate(special) if not s]


def embed(be: HFBackend, requests: Sequence[EmbeddingRequest]) -> list[EmbeddingResult]:
    """Mean of the last hidden state over real (non-pad) tokens, from the model's base (headless) module."""
    causal = be.model_kind == "causal"
    texts = [check_text(r.text, f"request {i} text") for i, r in enumerate(requests)]
    ids = be.tokenizer(texts, add_special_tokens=not causal, truncation=True, max_length=be.max_length,
                       verbose=False)["input_ids"] if texts else []
    ids = [seq or [be.require_prefix_id()] for seq in ids]

    def run(chunk: Sequence[list[int]]) -> list[EmbeddingResult]:
        inp, mask = right_pad(chunk, be.pad_id, be.device)
        hidden = be.model.base_model(input_ids=inp, attention_mask=mask).last_hidden_state.float()
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        return [EmbeddingResult(tuple(v)) for v in pooled.tolist()]

    return map_sorted(ids, len, be.batch_size, run)
