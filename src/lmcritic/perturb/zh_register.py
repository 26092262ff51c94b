"""Register shift in Chinese: formal written Chinese <-> internet-colloquial Chinese, same meaning.

``zh_to_colloquial`` writes like a chat or a comment section: slang and colloquial words of the same meaning
and polarity (什么 → 啥, 喜欢 → 稀饭, 推荐 → 安利), a filler opening (讲真，), the final 。 dropped or turned
into ～ or a sentiment-neutral emoji, and ASCII commas typed in place of full-width ones. ``zh_to_formal``
undoes all of it. Words are matched as whole jieba words (never 老 inside 老师), on the text in simplified
characters; traditional text gets its replacements in traditional characters. The lexicon is project-written
(``lmcritic/data/robustness/zh/register.json``, see its README).
"""
from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from typing import ClassVar

from lmcritic.perturb import _zh_resources as R
from lmcritic.perturb.base import Edit, Perturbation, finish, tokenize
from lmcritic.perturb.zh_char import ZH_ONLY

_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\uFE0F]+")
_FINAL = re.compile(r"[。.]\s*$")
_TAIL = re.compile("(?:[～~.\\s]|" + _EMOJI.pattern + ")*$")


@functools.lru_cache(maxsize=1)
def _lex() -> dict:
    return R.zh_lexicon("register")


def word_spans(text: str, phrases: dict, taken: list[Edit]) -> list[tuple[int, int, str]]:
    """(start, end, phrase) of every listed phrase that starts and ends on jieba word boundaries, longest
    phrases first, never overlapping each other or ``taken``."""
    tokens = tokenize(text)
    starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
    found: list[tuple[int, int, str]] = []
    for phrase in sorted(phrases, key=len, reverse=True):
        for m in re.finditer(re.escape(phrase), text):
            s, e = m.start(), m.end()
            clash = any(a < e and s < b for a, b, _ in found) or any(x.start < e and s < x.end for x in taken)
            if s in starts and e in ends and not clash:
                found.append((s, e, phrase))
    return sorted(found)


def _opens_with_filler(text: str) -> bool:
    start = R.simplified_view(text.lstrip()[:4])
    return any(start.startswith(f) for f in _lex()["fillers_formal"])


@dataclass(frozen=True)
class ZhToColloquial(Perturbation):
    """Formal -> internet colloquial (slang words, filler, relaxed ending, ASCII commas)."""

    name = "zh_to_colloquial"
    languages: ClassVar[frozenset[str]] = ZH_ONLY
    swap_rate: float = 0.7  # chance of rewriting each lexicon match
    emoji: float = 0.5  # chance of ending with a sentiment-neutral emoji
    filler: float = 0.3  # chance of opening with 讲真， / 说实话， ...
    half_width: float = 0.5  # chance of typing the commas as ASCII

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        lex = _lex()
        edits = [Edit(s, e, text[s:e], R.in_script_of(text, rng.choice(lex["to_colloquial"][p]), text[s:e]), self.name)
                 for s, e, p in word_spans(R.simplified_view(text), lex["to_colloquial"], [])
                 if rng.random() < self.swap_rate]
        if rng.random() < self.half_width:
            edits += [Edit(m.start(), m.end(), "，", ",", self.name) for m in re.finditer("，", text)]
        edits += self._ending(text, rng)
        if text.strip() and rng.random() < self.filler and not _opens_with_filler(text):
            edits.append(Edit(0, 0, "", R.in_script_of(text, rng.choice(lex["fillers"])), self.name))
        return finish(text, edits)

    def _ending(self, text: str, rng: random.Random) -> list[Edit]:
        if re.search(r"(?:[～~]|" + _EMOJI.pattern + r")\s*$", text):
            return []  # already ends casually
        m = _FINAL.search(text)
        tail = rng.choice(_lex()["emoji"]) if rng.random() < self.emoji else rng.choice(_lex()["endings"])
        if m:
            return [Edit(m.start(), m.end(), m.group(), tail, self.name)]
        return [Edit(len(text), len(text), "", tail, self.name)] if tail and text.strip() else []


@dataclass(frozen=True)
class ZhToFormal(Perturbation):
    """Colloquial -> formal: slang words to their formal forms, fillers and emoji dropped, ～ and ASCII
    punctuation to full-width, ending with 。."""

    name = "zh_to_formal"
    languages: ClassVar[frozenset[str]] = ZH_ONLY

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        lex = _lex()
        edits = self._fillers(text)
        formal = lex["to_formal"]
        edits += [Edit(s, e, text[s:e], R.in_script_of(text, formal[p], text[s:e]), self.name)
                  for s, e, p in word_spans(R.simplified_view(text), formal, edits)]
        edits += [Edit(m.start(), m.end(), m.group(), "", self.name) for m in _EMOJI.finditer(text)]
        edits += [Edit(m.start(), m.end(), ",", "，", self.name) for m in re.finditer(r",(?!\d)", text)
                  if not any(e.start <= m.start() < e.end for e in edits)]
        return finish(text, self._close(text, edits))

    def _fillers(self, text: str) -> list[Edit]:
        simple = R.simplified_view(text)  # 說實話 is 说实话 too
        for f in _lex()["fillers_formal"]:
            m = re.match(rf"\s*{re.escape(f)}[，,、\s]*", simple)
            if m:
                return [Edit(0, m.end(), text[: m.end()], "", self.name)]
        return []

    def _close(self, text: str, edits: list[Edit]) -> list[Edit]:
        """End with 。: a trailing run of ～, ~, ., spaces and emoji becomes it (nothing when 。！？ ends the text)."""
        tail = _TAIL.search(text)  # always matches (possibly empty)
        start = tail.start() if tail else len(text)
        kept = [e for e in edits if e.end <= start]
        body = text[:start].rstrip()
        ending = "" if not body or body[-1] in "。！？!?" else "。"
        if start == len(text) and not ending:
            return kept
        return kept + [Edit(start, len(text), text[start:], ending, self.name)]
