"""White-box plumbing: encode a :class:`Target` through a backend's :class:`WhiteBox` and build the differentiable
score f.

f maps the input tokens' embeddings [n, L, d] to the explained quantity [n]: a classifier's label log-prob
(minus the foil label's), or a causal LM's summed log-prob of the continuation (minus the foil's), tokenized
exactly as the backend's ``loglikelihood`` does (lm-eval conventions), so f(x) equals what the probe scored.
The embedding layer is called once per forward on the input ids, which is what Captum's
``LayerIntegratedGradients`` hooks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from lmcritic.backends.base import Backend
from lmcritic.backends.whitebox import WhiteBox
from lmcritic.errors import CapabilityError, InputError
from lmcritic.interpret.types import Target, label_position
from lmcritic.requests import Capability, LoglikelihoodRequest


@dataclass
class Prepared:
    """One target, encoded: ids [1, L] with token strings and character offsets into ``target.text``."""

    wb: WhiteBox
    target: Target
    ids: torch.Tensor
    tokens: list[str]
    offsets: list[tuple[int, int]]
    baseline: torch.Tensor  # ids of the reference input: pad tokens, special tokens kept
    score_embeds: Callable[[torch.Tensor], torch.Tensor]  # embeddings [n, L, d] -> scores [n]
    query: int  # the position whose attention row explains the output (CLS, or the last context token)

    @property
    def layer(self) -> Any:
        return self.wb.embedding_layer()

    def forward_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """f from ids: what Captum's LayerIntegratedGradients calls (the embedding layer runs exactly once)."""
        return self.score_embeds(self.layer(ids))


def white_box_of(model: Backend) -> WhiteBox:
    """The model's white box, or a CapabilityError saying which methods still work."""
    if not model.supports(Capability.GRADIENTS):
        raise CapabilityError(f"the {model.kind} backend gives no gradients or attention",
                              "use method occlusion (black-box), or an hf backend")
    return model.white_box()


def prepare(model: Backend, target: Target) -> Prepared:
    wb = white_box_of(model)
    if target.kind == "label":
        if wb.model_kind != "seq-classification":
            raise InputError(f"a label target needs a sequence classifier; this is a {wb.model_kind} model",
                             "explain a continuation (context/target) instead")
        return _prepare_classifier(wb, target)
    if wb.model_kind != "causal":
        raise InputError(f"a continuation target needs a causal LM; this is a {wb.model_kind} model",
                         "explain a label (text/label) instead")
    return _prepare_causal(wb, target)


# -- classifiers ---------------------------------------------------------------------------------------
def _label_index(wb: WhiteBox, label: str) -> int:
    return label_position(wb.label_names(), label)


def _prepare_classifier(wb: WhiteBox, target: Target) -> Prepared:
    enc = wb.tokenize(target.text, max_length=wb.max_length)
    ids = torch.tensor([enc.ids], device=wb.device)
    special = torch.tensor([enc.special], device=wb.device).bool()
    want = _label_index(wb, target.target)
    foil = _label_index(wb, target.foil) if target.foil is not None else None

    def score_embeds(emb: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(emb.shape[:2], dtype=torch.long, device=emb.device)
        lp = torch.log_softmax(wb.forward(emb, attention_mask=mask).float(), -1)
        return lp[:, want] - (lp[:, foil] if foil is not None else 0.0)

    offsets = list(enc.offsets)
    baseline = _baseline(ids, offsets, target, wb.pad_id, keep=special)
    return Prepared(wb, target, ids, wb.token_strings(enc.ids), offsets, baseline, score_embeds, 0)


# -- causal LMs ----------------------------------------------------------------------------------------
def _prepare_causal(wb: WhiteBox, target: Target) -> Prepared:
    reqs = [LoglikelihoodRequest(target.text, target.target)]
    if target.foil is not None:
        reqs.append(LoglikelihoodRequest(target.text, target.foil))
    pairs = wb.encode_pairs(reqs)
    ctx = list(pairs[0].context)
    context = target.text.rstrip()
    enc = wb.tokenize(context, special_tokens=False) if context else None
    if enc is None or list(enc.ids) != ctx:
        raise InputError("the context is empty or does not tokenize on its own", "give a non-empty context")
    room = wb.max_length + 1 - max(len(p.continuation) for p in pairs)
    keep = max(1, min(len(ctx), room))
    ctx, offsets = ctx[-keep:], list(enc.offsets)[-keep:]
    ids = torch.tensor([ctx], device=wb.device)
    conts = [torch.tensor(p.continuation, device=wb.device) for p in pairs]
    with torch.no_grad():
        cont_embs = [wb.embedding_layer()(c).detach() for c in conts]
    score_embeds = _causal_score(wb, conts, cont_embs)
    baseline = _baseline(ids, offsets, target, wb.pad_id, keep=torch.zeros_like(ids, dtype=torch.bool))
    return Prepared(wb, target, ids, wb.token_strings(ctx), offsets, baseline, score_embeds, len(ctx) - 1)


def _baseline(ids: torch.Tensor, offsets: list[tuple[int, int]], target: Target, pad_id: int,
              keep: torch.Tensor) -> torch.Tensor:
    """The IG reference: pad tokens where the input varies, the rest kept. With a span only the span's
    tokens vary (the prompt template is held fixed, so attributions explain the input, not the template);
    without one every token but the first varies (LLMs park attention on the first token, and replacing it
    makes the path so rough that IG needs hundreds of steps)."""
    if target.span is not None:
        lo, hi = target.span
        inside = torch.tensor([[a >= lo and b <= hi and b > a for a, b in offsets]], device=ids.device)
        keep = keep | ~inside
    elif keep.shape[1] > 1 and not bool(keep.any()):
        keep = keep.clone()
        keep[0, 0] = True
    return torch.where(keep, ids, torch.full_like(ids, pad_id))


def _causal_score(wb: WhiteBox, conts: list[torch.Tensor],
                  cont_embs: list[torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """f(ctx embeddings) = log P(target | ctx) [- log P(foil | ctx)], one forward per continuation."""
    if all(len(c) == 1 for c in conts):
        return _last_position_score(wb, [int(c[0]) for c in conts])

    def score_embeds(emb: torch.Tensor) -> torch.Tensor:
        n = emb.shape[0]
        total = []
        for cont, cemb in zip(conts, cont_embs):
            k = len(cont)
            full = torch.cat([emb, cemb.unsqueeze(0).expand(n, -1, -1).to(emb.dtype)], dim=1)
            lp = torch.log_softmax(wb.forward(full, logits_to_keep=k + 1)[:, :k].float(), -1)
            total.append(lp.gather(-1, cont.view(1, k, 1).expand(n, k, 1)).squeeze(-1).sum(-1))
        return total[0] - total[1] if len(total) > 1 else total[0]

    return score_embeds


def _last_position_score(wb: WhiteBox, ids: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Single-token continuations (label words) are all predicted at the context's last position, so one
    forward of the context serves the target and the foil (half the passes of one forward per continuation)."""

    def score_embeds(emb: torch.Tensor) -> torch.Tensor:
        lp = torch.log_softmax(wb.forward(emb, logits_to_keep=1)[:, -1].float(), -1)
        return lp[:, ids[0]] - lp[:, ids[1]] if len(ids) > 1 else lp[:, ids[0]]

    return score_embeds
