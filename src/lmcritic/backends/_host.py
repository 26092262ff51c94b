"""What the tokenizing helpers shared by the hf and vllm backends read from their backend.

Encoding (context, continuation) pairs, planning rolling windows and rendering chat need only a tokenizer, the
longest scored window and the token a text's first token is conditioned on; typing them against this protocol
lets both backends use one implementation without either importing the other.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class TokenizerHost(Protocol):
    """A backend that owns a Hugging Face tokenizer and a scoring-window limit."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int

    def require_prefix_id(self) -> int:
        """The BOS (else EOS) id a text's first token is conditioned on; raises InputError when there is none."""
        ...
