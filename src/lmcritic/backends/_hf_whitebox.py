"""The Hugging Face backend's :class:`~lmcritic.backends.whitebox.WhiteBox`: its model and tokenizer, behind the
interface, so attributions and gradient attacks need no backend internals."""
from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import torch

from lmcritic.backends import _hf_encoders, _hf_generate, _hf_loglik
from lmcritic.backends._hf_tensors import accepts
from lmcritic.backends.whitebox import ContinuationIds, Encoding
from lmcritic.requests import ChatMessage, LoglikelihoodRequest

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from lmcritic.backends.hf import HFBackend


class _NoEmbedsPaddingWarning:
    """Drops transformers' "will not detect padding tokens in `inputs_embeds`" (decoder classifiers such as
    LlamaForSequenceClassification): the white box never pads embeddings (one sequence, or equal lengths), so
    pooling at the last position is the last token's, as ``classify`` pools it (checked on a fine-tuned SmolLM2
    classifier: the same probabilities both ways). Users read it as a fault of the scan."""

    def filter(self, record: Any) -> bool:
        return "will not detect padding tokens in `inputs_embeds`" not in record.getMessage()


def _quiet_embeds_padding_warning() -> None:
    import logging

    for name in ("transformers.modeling_layers", "transformers.models.bloom.modeling_bloom",
                 "transformers.models.gpt_neox.modeling_gpt_neox"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _NoEmbedsPaddingWarning) for f in log.filters):
            log.addFilter(_NoEmbedsPaddingWarning())


class HFWhiteBox:
    """Gradient access to an :class:`~lmcritic.backends.hf.HFBackend`'s model."""

    def __init__(self, backend: HFBackend) -> None:
        self._be = backend
        _quiet_embeds_padding_warning()

    @property
    def model_kind(self) -> str:
        return self._be.model_kind

    @property
    def device(self) -> Any:
        return self._be.device

    @property
    def max_length(self) -> int:
        return self._be.max_length

    @property
    def pad_id(self) -> int:
        return self._be.pad_id

    @property
    def vocab_size(self) -> int:
        return len(self._be.tokenizer)

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(int(i) for i in self._be.tokenizer.all_special_ids)

    def embedding_layer(self) -> Any:
        return self._be.model.get_input_embeddings()

    def embedding_matrix(self) -> Any:
        return self.embedding_layer().weight.detach()

    def forward(self, embeds: torch.Tensor, *, logits_to_keep: int | None = None, **model_inputs: Any) -> Any:
        model = self._be.model
        if self._be.model_kind == "causal":
            model_inputs.setdefault("use_cache", False)
        if logits_to_keep is None:
            return model(inputs_embeds=embeds, **model_inputs).logits
        if accepts(model, "logits_to_keep"):
            return model(inputs_embeds=embeds, logits_to_keep=logits_to_keep, **model_inputs).logits
        return model(inputs_embeds=embeds, **model_inputs).logits[:, -logits_to_keep:]

    def attentions(self, ids: torch.Tensor) -> tuple[Any, ...]:
        model = self._be.model
        with torch.no_grad(), eager_attention(model):
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True, use_cache=False)
        return tuple(a for a in (out.attentions or ()) if a is not None)

    def tokenize(self, text: str, *, special_tokens: bool = True, max_length: int | None = None) -> Encoding:
        options: dict[str, Any] = {"add_special_tokens": special_tokens, "return_offsets_mapping": True,
                                   "return_special_tokens_mask": True}
        if special_tokens:
            options["truncation"] = True
            if max_length is not None:
                options["max_length"] = max_length
        enc = dict(self._be.tokenizer(text, **options))
        ids, offsets = enc.pop("input_ids"), enc.pop("offset_mapping")
        special = enc.pop("special_tokens_mask", [0] * len(ids))
        return Encoding(tuple(int(i) for i in ids), tuple((int(a), int(b)) for a, b in offsets),
                        tuple(bool(s) for s in special), {k: tuple(int(x) for x in v) for k, v in enc.items()})

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [str(t) for t in self._be.tokenizer.convert_ids_to_tokens(list(ids))]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._be.tokenizer.decode(list(ids)))

    def render_chat(self, messages: Sequence[ChatMessage]) -> str | None:
        if not getattr(self._be.tokenizer, "chat_template", None):
            return None
        return _hf_generate.render_chat(self._be, messages)

    def encode_pairs(self, requests: Sequence[LoglikelihoodRequest]) -> list[ContinuationIds]:
        return [ContinuationIds(p.ctx, p.cont) for p in _hf_loglik.encode_pairs(self._be, requests)]

    def label_names(self) -> tuple[str, ...]:
        return tuple(_hf_encoders.labels(self._be.model))

    @contextmanager
    def gradients(self) -> Iterator[None]:
        """Autograd on (the backend runs under inference mode) with weights frozen."""
        flags = [(p, p.requires_grad) for p in self._be.model.parameters()]
        for p, _ in flags:
            p.requires_grad_(False)
        try:
            with torch.inference_mode(False), torch.enable_grad():
                yield
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)


@contextmanager
def eager_attention(model: PreTrainedModel) -> Iterator[None]:
    """Attention weights need the eager kernel (SDPA/flash return none); switch for the call, then restore."""
    before = getattr(model.config, "_attn_implementation", None)
    switch = before not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(str(before))
