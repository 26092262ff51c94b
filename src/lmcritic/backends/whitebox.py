"""Gradient access to a local model: the one interface attributions and gradient-guided attacks use.

A backend that declares :attr:`~lmcritic.requests.Capability.GRADIENTS` returns a :class:`WhiteBox` from
:meth:`Backend.white_box() <lmcritic.backends.base.Backend.white_box>`; wrappers (the call cache, the output
filter) hand their inner backend's through, so no caller unwraps a backend or touches its model object. A backend
without it (an API server, a Python callable) does not declare GRADIENTS, and probes and attribution methods that
need gradients are skipped with a reason before any work: TextAttack's ``is_black_box``, Captum's ``forward_func``.

Tensors are torch tensors on :attr:`WhiteBox.device`; nothing here imports torch.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

from lmcritic.requests import ChatMessage, LoglikelihoodRequest

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Encoding:
    """A text as the model reads it: token ids, each token's character span in the text, which tokens are
    special (BOS, CLS, SEP ...), and the other inputs the model takes with them (attention mask, token types)."""

    ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    special: tuple[bool, ...]
    model_inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ContinuationIds:
    """A log-likelihood request tokenized exactly as the backend's ``loglikelihood`` scores it."""

    context: tuple[int, ...]
    continuation: tuple[int, ...]


@runtime_checkable
class WhiteBox(Protocol):
    """Embeddings, a differentiable forward pass from input embeddings, tokenization with offsets."""

    @property
    def model_kind(self) -> str:
        """``causal``, ``masked`` or ``seq-classification``."""

    @property
    def device(self) -> Any:
        """Where the model's tensors live."""

    @property
    def max_length(self) -> int:
        """The longest input the model takes, in tokens."""

    @property
    def pad_id(self) -> int:
        """The token that stands for "nothing here" (integrated gradients' baseline)."""

    @property
    def vocab_size(self) -> int:
        """How many tokens the tokenizer knows (ids ``0 .. vocab_size - 1``)."""

    @property
    def special_ids(self) -> frozenset[int]:
        """The special tokens' ids (BOS, EOS, PAD ...), which token-level attacks must not insert."""

    def embedding_layer(self) -> Any:
        """The input-embedding module (what Captum's ``LayerIntegratedGradients`` hooks)."""

    def embedding_matrix(self) -> Any:
        """The token-embedding weights ``[vocab, d]``, detached."""

    def forward(self, embeds: torch.Tensor, *, logits_to_keep: int | None = None, **model_inputs: Any) -> Any:
        """Logits from input embeddings ``[n, L, d]``: ``[n, classes]`` for a classifier, ``[n, L, vocab]`` for a
        language model (only the last ``logits_to_keep`` positions when given). Differentiable."""

    def attentions(self, ids: torch.Tensor) -> tuple[Any, ...]:
        """Every layer's attention weights ``[1, heads, L, L]`` for input ids ``[1, L]`` (empty: none given)."""

    def tokenize(self, text: str, *, special_tokens: bool = True, max_length: int | None = None) -> Encoding:
        """Encode ``text``; with special tokens it is truncated to ``max_length`` (None: the tokenizer's own
        limit), without them nothing is cut (lm-eval's encoding of a context)."""

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """The vocabulary strings of ``ids``."""

    def decode(self, ids: Sequence[int]) -> str:
        """The text ``ids`` spell (what a token-level attack's suffix reads as)."""

    def render_chat(self, messages: Sequence[ChatMessage]) -> str | None:
        """The model's input before its answer to ``messages``, rendered with its chat template as ``generate``
        renders a chat; None when the model has no template."""

    def encode_pairs(self, requests: Sequence[LoglikelihoodRequest]) -> list[ContinuationIds]:
        """Context and continuation ids of each request, as ``loglikelihood`` tokenizes them."""

    def label_names(self) -> tuple[str, ...]:
        """A classifier's label names, in logit order."""

    def gradients(self) -> AbstractContextManager[None]:
        """A context in which autograd runs with the weights frozen: a backward pass computes gradients for the
        inputs only and never leaves ``.grad`` on the shared model."""
