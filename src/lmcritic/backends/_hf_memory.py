"""A transformers model handed over as a Python object, fingerprinted over every byte of its weights.

Folders are fingerprinted from a strided sample of each tensor (fast, and a folder's files change as a
whole); an object in memory is what notebooks fine-tune, prune or patch in place, so here every element
counts. The fingerprint is taken once per backend: wrap the model again after changing it.
"""
from __future__ import annotations

import torch

from lmcritic.backends._hf_tensors import fingerprint
from lmcritic.backends.hf import HFBackend


class InMemoryHFBackend(HFBackend):
    """:meth:`HFBackend.from_objects` with a full-content fingerprint (see the module docstring)."""

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            with torch.inference_mode():
                self._fingerprint = fingerprint(self.model, self.tokenizer, sample=None)
        return self._fingerprint
