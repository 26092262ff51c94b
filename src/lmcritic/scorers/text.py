"""Cheap surface scorers for any text: length, and colloquial register (chat-style slang, elongations,
emoticons), the register shift the robustness probes test and production traffic drifts into."""
from __future__ import annotations

from lmcritic.scorers import Scorer


class LengthScorer(Scorer):
    """``chars`` and ``words`` (whitespace-separated); ``words`` is the primary."""

    name = "length"
    primary = "words"
    batch_size = 4096

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        return [{"words": float(len(t.split())), "chars": float(len(t))} for t in texts]


class RegisterScorer(Scorer):
    """``colloquial`` = 1 when the text carries informal-register markers (the diagnosis lexicon of slang and
    abbreviations, letter elongations, '!!', emoticons); ``marker_rate`` = markers per word."""

    name = "register"
    primary = "colloquial"
    batch_size = 4096
    code_version = 1  # bump when the marker rules below change

    @property
    def version(self) -> str:
        """Names what the scores depend on: the code and the lexicon's content (the register table and the
        informal-shape pattern), so an edited lexicon re-scores instead of reusing cached scores."""
        from lmcritic._serde import stable_hash
        from lmcritic.diagnose._text import _INFORMAL_SHAPE
        from lmcritic.perturb.register import formal_forms

        return f"{self.code_version}-{stable_hash(formal_forms(), _INFORMAL_SHAPE.pattern)[:12]}"

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        from lmcritic.diagnose._text import colloquial_markers, words

        out = []
        for t in texts:
            n = len(colloquial_markers(t))
            out.append({"colloquial": float(n > 0), "marker_rate": n / max(1, len(words(t)))})
        return out


__all__ = ["LengthScorer", "RegisterScorer"]
