"""Words of a text with their character offsets, Chinese included.

Han runs are segmented by ``jieba`` (its bundled dictionary, offline; the prefix-dictionary cache goes under
``$LMCRITIC_HOME/jieba``); Latin and digit runs follow the English tokenizer's rule. Punctuation, spaces and
emoji are not words. Without jieba installed each Han character is a word (what character-level Chinese models
see), so English-only installs never fail on a stray Chinese character.
"""
from __future__ import annotations

import functools
import re
from typing import Any

from lmcritic.lang._detect import HAN
from lmcritic.perturb.base import Token

_RUN = re.compile(rf"(?P<han>[{HAN}]+)|(?P<word>[A-Za-z0-9](?:[A-Za-z0-9']*[A-Za-z0-9])?)")


def segment(text: str) -> list[Token]:
    """Every word in order: jieba words inside Han runs, English-rule words elsewhere."""
    out: list[Token] = []
    for m in _RUN.finditer(text):
        if m.group("han") is None:
            out.append(Token(m.group(), m.start(), m.end()))
            continue
        out += [Token(w, m.start() + s, m.start() + e) for w, s, e in _han_words(m.group())]
    return out


@functools.lru_cache(maxsize=65536)
def _han_words(run: str) -> tuple[tuple[str, int, int], ...]:
    tk = jieba_tokenizer()
    if tk is None:
        return tuple((ch, i, i + 1) for i, ch in enumerate(run))
    return tuple((w, s, e) for w, s, e in tk.tokenize(run, HMM=True))


@functools.lru_cache(maxsize=1)
def jieba_tokenizer() -> Any:
    """jieba's tokenizer on its bundled dictionary, quiet, caching its prefix dictionary under LMCRITIC_HOME;
    None when jieba is not installed."""
    try:
        import jieba
    except ImportError:
        return None
    import logging

    from lmcritic.backends._hf_cache import lmcritic_home

    jieba.setLogLevel(logging.WARNING)
    tk = jieba.Tokenizer()
    cache = lmcritic_home() / "jieba"
    cache.mkdir(parents=True, exist_ok=True)
    tk.tmp_dir = str(cache)
    tk.initialize()
    return tk
