"""Chinese surface form: full-width <-> half-width punctuation and simplified <-> traditional characters.

Chinese text is written with full-width punctuation (，。！？：；（）“”) but often typed with the ASCII forms,
and the same language is written in simplified (mainland, Singapore) or traditional characters (Taiwan, Hong
Kong, Macau). Neither changes what a sentence says. Script conversion uses OpenCC's phrase-aware tables.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar

from lmcritic.lang._detect import HAN
from lmcritic.perturb import _zh_resources as R
from lmcritic.perturb.base import Edit, Perturbation, finish
from lmcritic.perturb.zh_char import ZH_ONLY

FULL_TO_HALF = {"，": ",", "。": ".", "！": "!", "？": "?", "：": ":", "；": ";", "（": "(", "）": ")", "“": '"',
                "”": '"', "‘": "'", "’": "'", "、": ",", "【": "[", "】": "]", "～": "~", "\u3000": " "}
HALF_TO_FULL = {",": "，", ".": "。", "!": "！", "?": "？", ":": "：", ";": "；", "(": "（", ")": "）"}
_NEXT_TO_HAN = re.compile(rf"(?<=[{HAN}])[,.!?:;()\"]|[,.!?:;()\"](?=[{HAN}])|(?<=[{HAN}])[.!?]$")


def to_halfwidth(text: str) -> str:
    """Full-width punctuation, digits and letters (ＡＢＣ１２３) to ASCII; every character keeps its offset."""
    return "".join(_half(ch) for ch in text)


def _half(ch: str) -> str:
    if ch in FULL_TO_HALF:
        return FULL_TO_HALF[ch]
    code = ord(ch)
    return chr(code - 0xFEE0) if 0xFF01 <= code <= 0xFF5E else ch


def _full_edits(text: str, kind: str) -> list[Edit]:
    """ASCII punctuation touching a Han character to its full-width form (quotes alternate “ ”); decimal
    points, URLs and English stay as they are."""
    edits, quote_open = [], True
    for m in _NEXT_TO_HAN.finditer(text):
        ch = m.group()
        if ch == '"':
            new, quote_open = ("“" if quote_open else "”"), not quote_open
        else:
            new = HALF_TO_FULL[ch]
        edits.append(Edit(m.start(), m.end(), ch, new, kind))
    return edits


@dataclass(frozen=True)
class Width(Perturbation):
    """Full-width <-> half-width: ``auto`` turns full-width forms to ASCII when there are any, else ASCII
    punctuation next to Chinese to full-width."""

    name = "zh_width"
    languages: ClassVar[frozenset[str]] = ZH_ONLY
    direction: str = "auto"  # auto | to_half | to_full

    def __post_init__(self) -> None:
        if self.direction not in ("auto", "to_half", "to_full"):
            raise ValueError("direction must be auto, to_half or to_full")

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        if self.direction in ("auto", "to_half"):
            half = to_halfwidth(text)
            done = finish(text, [Edit(i, i + 1, a, b, self.name) for i, (a, b) in enumerate(zip(text, half)) if a != b])
            if done or self.direction == "to_half":
                return done
        return finish(text, _full_edits(text, self.name))


def convert_edits(text: str, config: str, kind: str) -> list[Edit]:
    """OpenCC conversion of ``text`` as edits: per character when lengths agree, else one edit per differing run."""
    new = R.converter(config).convert(text)
    if len(new) == len(text):
        return [Edit(i, i + 1, a, b, kind) for i, (a, b) in enumerate(zip(text, new)) if a != b]
    import difflib

    ops = difflib.SequenceMatcher(None, text, new, autojunk=False).get_opcodes()
    return [Edit(i1, i2, text[i1:i2], new[j1:j2], kind) for op, i1, i2, j1, j2 in ops if op != "equal"]


@dataclass(frozen=True)
class Traditional(Perturbation):
    """Simplified -> traditional characters (OpenCC; ``config`` s2t, or s2tw / s2hk for regional standards)."""

    name = "zh_traditional"
    languages: ClassVar[frozenset[str]] = ZH_ONLY
    config: str = "s2t"

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        return finish(text, convert_edits(text, self.config, self.name))


@dataclass(frozen=True)
class Simplified(Traditional):
    """Traditional -> simplified characters (OpenCC ``t2s``)."""

    name = "zh_simplified"
    config: str = "t2s"
