"""MiniLM embeddings of sampled request texts for MMD drift, cached in the store by text hash."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from lmcritic.monitor.scoring import text_hash
from lmcritic.store.monitor import MonitorStore


class StoreEmbedder:
    """``embedder(ids, field)`` → one unit vector per id that has text in ``field`` (``prompt``/``response``).

    Negative ids are texts that are not stored requests (a reference run's inputs): ``extra[id][field]``.
    """

    def __init__(self, store: MonitorStore, extra: Mapping[int, Mapping[str, str | None]] | None = None) -> None:
        self.store, self.extra = store, dict(extra or {})

    def __call__(self, ids: Sequence[int], field: str) -> np.ndarray:
        texts = self._texts(ids, field)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        hashes = [text_hash(t) for t in texts]
        found = self.store.embeddings(list(dict.fromkeys(hashes)))
        todo = list(dict.fromkeys(h for h in hashes if h not in found))
        if todo:
            from lmcritic import _minilm

            by_hash = dict(zip(hashes, texts))
            vecs = _minilm.encode([by_hash[h] for h in todo])
            new = dict(zip(todo, vecs))
            self.store.save_embeddings(new)
            found.update(new)
        return np.stack([found[h] for h in hashes])

    def _texts(self, ids: Sequence[int], field: str) -> list[str]:
        stored = {r.id: r.record for r in self.store.requests([i for i in ids if i >= 0])}
        out = []
        for i in ids:
            text = getattr(stored[i], field, None) if i in stored else (self.extra.get(i) or {}).get(field)
            if isinstance(text, str) and text.strip():
                out.append(text)
        return out
