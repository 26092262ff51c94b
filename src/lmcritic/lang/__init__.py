"""Which language a text is in, and its words, for inputs that are not only English.

Detection is by script, per text (a case, a sentence): Han characters count for Chinese, kana for Japanese,
Hangul for Korean, Latin words for English. It needs no model, is exact on the scripts it knows, and says when a
text mixes two languages. Segmentation splits Han runs into words with ``jieba`` (the ``zh`` extra) and Latin
runs with the English tokenizer's rule, so mixed text keeps every word with its character offsets::

    >>> detect("这部电影 is great").code, detect("这部电影 is great").mixed
    ('zh', True)
    >>> [t.text for t in segment("我喜欢这部电影")]
    ['我', '喜欢', '这部', '电影']

Probes, perturbations, word swaps and scorers declare the languages they support (``languages``, a frozenset
of these codes, or ``None`` for any); the planner skips what does not fit the data, with the reason.
"""
from __future__ import annotations

from lmcritic.lang._detect import (
                                   ANY,
                                   EN,
                                   LANGUAGES,
                                   ZH,
                                   LanguageInfo,
                                   data_languages,
                                   detect,
                                   has_han,
                                   language_of,
                                   supports,
)
from lmcritic.lang._segment import segment

__all__ = ["ANY", "EN", "LANGUAGES", "ZH", "LanguageInfo", "data_languages", "detect", "has_han", "language_of",
           "segment", "supports"]
