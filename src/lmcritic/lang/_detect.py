"""Language detection by script: exact on Han/kana/Hangul/Latin, no model, and honest about mixed text.

Each script's amount is counted in comparable units: a Han character or a Hangul syllable is about one morpheme, an
English word about one and a half (a Chinese translation of an English sentence has roughly 1.5 characters per
English word), a short Latin token less (a third per letter: "U", "MSI" and "OK" in a Chinese review are names and
codes, not English). The dominant language gives the code; ``mixed`` is set when the runner-up has at least a fifth
of the units. Kana turns Han characters into Japanese (Japanese text writes its content words in Han). Latin-script
text counts as English: the toolkit's Latin-script resources are English, and telling English from French needs a
language-ID model, which this deliberately is not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

EN, ZH = "en", "zh"
LANGUAGES = (EN, ZH, "ja", "ko")  # the codes detection can give, plus "und" (nothing to go on)
ANY = None  # a component that works on any language declares ``languages = ANY``

HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\u3007"
_HAN = re.compile(f"[{HAN}]")
_KANA = re.compile(r"[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9d]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f\uff21-\uff3a\uff41-\uff5a]+")
LATIN_WORD_UNITS = 1.5
MIXED_SHARE = 0.2


@dataclass(frozen=True)
class LanguageInfo:
    """The dominant language of a text (``und`` when it has no letters), whether a second language has at
    least a fifth of it, and each language's share."""

    code: str
    mixed: bool
    shares: tuple[tuple[str, float], ...] = ()

    def share(self, code: str) -> float:
        return dict(self.shares).get(code, 0.0)


def has_han(text: str) -> bool:
    """Whether ``text`` contains a Han (Chinese) character."""
    return _HAN.search(text) is not None


def detect(text: str) -> LanguageInfo:
    """The language of ``text`` by script (see the module docstring)."""
    return _detect(text) if len(text) <= 4096 else _detect(text[:4096])


@lru_cache(maxsize=65536)
def _detect(text: str) -> LanguageInfo:
    han, kana = len(_HAN.findall(text)), len(_KANA.findall(text))
    latin = sum(min(LATIN_WORD_UNITS, len(w) / 3) for w in _LATIN_WORD.findall(text))
    units = {EN: latin, "ko": float(len(_HANGUL.findall(text)))}
    japanese = kana > 0 and kana >= 0.2 * (han + kana)
    units["ja" if japanese else ZH] = float(han + (kana if japanese else 0))
    total = sum(units.values())
    if total == 0:
        return LanguageInfo("und", False)
    ranked = sorted(((c, u / total) for c, u in units.items() if u > 0), key=lambda cu: (-cu[1], cu[0]))
    mixed = len(ranked) > 1 and ranked[1][1] >= MIXED_SHARE
    return LanguageInfo(ranked[0][0], mixed, tuple((c, round(s, 4)) for c, s in ranked))


def language_of(text: str) -> str:
    """Just the code: ``en``, ``zh``, ``ja``, ``ko`` or ``und``."""
    return detect(text).code


def supports(languages: frozenset[str] | None, code: str) -> bool:
    """Whether a component declaring ``languages`` (None: any) can handle text in ``code`` (``und``: yes)."""
    return languages is None or code == "und" or code in languages


def data_languages(texts: Sequence[str], min_share: float = 0.1) -> frozenset[str]:
    """The languages of at least ``min_share`` of ``texts`` (``und`` texts left out)."""
    codes = [language_of(t) for t in texts]
    codes = [c for c in codes if c != "und"]
    return frozenset(c for c in set(codes) if codes.count(c) >= min_share * len(codes))
