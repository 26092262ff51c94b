"""White-box plumbing: encode a :class:`Target` for an HF backend and build the differentiable score f.

f maps the input tokens' embeddings [n, L, d] to the explained quantity [n]: a classifier's label log-prob
(minus the foil label's), or a causal LM's summed log-prob of the continuation (minus the foil's), tokenized
exactly as the backend's ``loglikelihood`` does (lm-eval conventions), so f(x) equals what the probe scored.
The embedding layer is called once per forward on the input ids, which is what Captum's
``LayerIntegratedGradients`` hooks.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from lmcritic._timing import real_backend
from lmcritic.errors import CapabilityError, InputError
from lmcritic.interpret.types import Target
from lmcritic.requests import Capability, LoglikelihoodRequest


@dataclass
class Prepared:
    """One target, encoded: ids [1, L] with token strings and character offsets into ``target.text``."""

    backend: Any
    target: Target
    ids: torch.Tensor
    tokens: list[str]
    offsets: list[tuple[int, int]]
    baseline: torch.Tensor  # ids of the reference input: pad tokens, special tokens kept
    score_embeds: Callable[[torch.Tensor], torch.Tensor]  # embeddings [n, L, d] -> scores [n]
    query: int  # the position whose attention row explains the output (CLS, or the last context token)

    @property
    def layer(self) -> Any:
        return self.backend.model.get_input_embeddings()

    def forward_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """f from ids: what Captum's LayerIntegratedGradients calls (the embedding layer runs exactly once)."""
        return self.score_embeds(self.layer(ids))


def white_box_backend(model: Any) -> Any:
    """The HF backend under any cache wrapper, or a CapabilityError saying which methods still work."""
    inner = real_backend(model)
    if Capability.GRADIENTS not in getattr(inner, "capabilities", frozenset()) or getattr(inner, "model", None) is None:
        raise CapabilityError(f"the {getattr(inner, 'kind', '?')} backend gives no gradients or attention",
                              "use method occlusion (black-box), or an hf backend")
    return inner


def prepare(model: Any, target: Target) -> Prepared:
    be = white_box_backend(model)
    if target.kind == "label":
        if be.model_kind != "seq-classification":
            raise InputError(f"a label target needs a sequence classifier; this is a {be.model_kind} model",
                             "explain a continuation (context/target) instead")
        return _prepare_classifier(be, target)
    if be.model_kind != "causal":
        raise InputError(f"a continuation target needs a causal LM; this is a {be.model_kind} model",
                         "explain a label (text/label) instead")
    return _prepare_causal(be, target)


# -- classifiers ---------------------------------------------------------------------------------------
def _label_index(be: Any, label: str) -> int:
    from lmcritic.backends._hf_encoders import labels

    names = labels(be.model)
    if label not in names:
        raise InputError(f"label {label!r} is not one of the classifier's labels {list(names)}")
    return names.index(label)


def _prepare_classifier(be: Any, target: Target) -> Prepared:
    enc = be.tokenizer(target.text, truncation=True, max_length=be.max_length, return_offsets_mapping=True,
                       return_special_tokens_mask=True)
    ids = torch.tensor([enc["input_ids"]], device=be.device)
    special = torch.tensor([enc["special_tokens_mask"]], device=be.device).bool()
    want = _label_index(be, target.target)
    foil = _label_index(be, target.foil) if target.foil is not None else None

    def score_embeds(emb: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(emb.shape[:2], dtype=torch.long, device=emb.device)
        lp = torch.log_softmax(be.model(inputs_embeds=emb, attention_mask=mask).logits.float(), -1)
        return lp[:, want] - (lp[:, foil] if foil is not None else 0.0)

    tokens = be.tokenizer.convert_ids_to_tokens(enc["input_ids"])
    offsets = [(int(a), int(b)) for a, b in enc["offset_mapping"]]
    baseline = _baseline(ids, offsets, target, be.pad_id, keep=special)
    return Prepared(be, target, ids, [str(t) for t in tokens], offsets, baseline, score_embeds, 0)


# -- causal LMs ----------------------------------------------------------------------------------------
def _prepare_causal(be: Any, target: Target) -> Prepared:
    from lmcritic.backends._hf_loglik import encode_pairs

    reqs = [LoglikelihoodRequest(target.text, target.target)]
    if target.foil is not None:
        reqs.append(LoglikelihoodRequest(target.text, target.foil))
    pairs = encode_pairs(be, reqs)
    ctx = list(pairs[0].ctx)
    context = target.text.rstrip()
    enc = be.tokenizer(context, add_special_tokens=False, return_offsets_mapping=True) if context else None
    if enc is None or list(enc["input_ids"]) != ctx:
        raise InputError("the context is empty or does not tokenize on its own", "give a non-empty context")
    room = be.max_length + 1 - max(len(p.cont) for p in pairs)
    keep = max(1, min(len(ctx), room))
    ctx, offsets = ctx[-keep:], [(int(a), int(b)) for a, b in enc["offset_mapping"]][-keep:]
    ids = torch.tensor([ctx], device=be.device)
    conts = [torch.tensor(p.cont, device=be.device) for p in pairs]
    with torch.no_grad():
        cont_embs = [be.model.get_input_embeddings()(c).detach() for c in conts]
    score_embeds = _causal_score(be.model, conts, cont_embs)
    tokens = [str(t) for t in be.tokenizer.convert_ids_to_tokens(ctx)]
    baseline = _baseline(ids, offsets, target, be.pad_id, keep=torch.zeros_like(ids, dtype=torch.bool))
    return Prepared(be, target, ids, tokens, offsets, baseline, score_embeds, len(ctx) - 1)


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


def _causal_score(model: Any, conts: list[torch.Tensor], cont_embs: list[torch.Tensor]) -> Callable:
    """f(ctx embeddings) = log P(target | ctx) [- log P(foil | ctx)], one forward per continuation."""
    from lmcritic.backends._hf_tensors import accepts

    tail = accepts(model, "logits_to_keep")

    def score_embeds(emb: torch.Tensor) -> torch.Tensor:
        n = emb.shape[0]
        total = []
        for cont, cemb in zip(conts, cont_embs):
            k = len(cont)
            full = torch.cat([emb, cemb.unsqueeze(0).expand(n, -1, -1).to(emb.dtype)], dim=1)
            kwargs: dict[str, Any] = {"inputs_embeds": full, "use_cache": False}
            logits = model(**kwargs, logits_to_keep=k + 1).logits if tail else model(**kwargs).logits[:, -(k + 1):]
            lp = torch.log_softmax(logits[:, :k].float(), -1)
            total.append(lp.gather(-1, cont.view(1, k, 1).expand(n, k, 1)).squeeze(-1).sum(-1))
        return total[0] - total[1] if len(total) > 1 else total[0]

    return score_embeds


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Attention weights need the eager kernel (SDPA/flash return none); switch for the call, then restore."""
    before = getattr(model.config, "_attn_implementation", None)
    switch = before not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(before)
