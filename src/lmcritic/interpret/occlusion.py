"""Occlusion and leave-one-out for black boxes (API models give only log-probabilities).

Each window of ``window`` consecutive words inside the target's span is deleted in turn (``window=1`` is
leave-one-out, Li et al. 2016); a word's score is the mean drop in f over the windows that removed it. All
edited inputs go to the backend in one list (batched, cached). Tokens are words here: a black box's own
tokenizer is unknown.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lmcritic.errors import ConfigError
from lmcritic.interpret._blackbox import log_scores
from lmcritic.interpret._build import build
from lmcritic.interpret._words import remove_words, word_spans
from lmcritic.interpret.base import Attributor
from lmcritic.interpret.types import Explanation, Target

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend


class Occlusion(Attributor):
    """``Occlusion(window=1)(model, target)``; works on any backend with loglikelihood (or classify)."""

    name = "occlusion"
    white_box = False

    def __init__(self, window: int = 1) -> None:
        if not isinstance(window, int) or window < 1:
            raise ConfigError(f"occlusion window must be a positive integer, got {window!r}")
        self.window = window

    def __call__(self, model: Backend, target: Target) -> Explanation:
        t0 = time.perf_counter()
        spans = word_spans(target.text)
        editable = _editable(spans, target)
        windows = [editable[i : i + self.window] for i in range(max(1, len(editable) - self.window + 1))]
        windows = [w for w in windows if w]
        texts = [target.text] + [remove_words(target.text, spans, w) for w in windows]
        scores = log_scores(model, target, texts)
        full, drops = scores[0], [scores[0] - s for s in scores[1:]]
        per_word = [0.0] * len(spans)
        counts = [0] * len(spans)
        for w, d in zip(windows, drops):
            for i in w:
                per_word[i] += d
                counts[i] += 1
        per_word = [s / c if c else 0.0 for s, c in zip(per_word, counts)]
        words = [target.text[a:b] for a, b in spans]
        return build(self.name, target, words, spans, per_word, score=full,
                     timings={"total_s": time.perf_counter() - t0},
                     details={"window": self.window, "n_queries": len(texts)})


def _editable(spans: list[tuple[int, int]], target: Target) -> list[int]:
    if target.span is None:
        return list(range(len(spans)))
    lo, hi = target.span
    return [i for i, (a, b) in enumerate(spans) if a >= lo and b <= hi]


class LeaveOneOut(Occlusion):
    """Occlusion with a one-word window (Li et al., 2016)."""

    name = "leave_one_out"

    def __init__(self) -> None:
        super().__init__(window=1)
