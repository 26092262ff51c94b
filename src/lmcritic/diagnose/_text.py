"""Text facts diagnosis slices on: words, negation, colloquial register, typos, rare words, identity terms.

Each helper is cheap and deterministic. Identity terms and their swaps come from :mod:`lmcritic.lexicon`, the
colloquial register and its formal rewrite from the robustness register table (:mod:`lmcritic.perturb.register`),
so diagnosis and the probes agree on what these words are. The dictionaries (wordfreq, symspell's 82k-word
list) load on first use and are kept for the process.
"""
from __future__ import annotations

import functools
import re
from typing import Sequence

_WORD = re.compile(r"[A-Za-z][A-Za-z']*|\d+")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z']*|\d+|[^\w\s]+")  # words, numbers and runs of symbols
NEGATIONS = frozenset(
    "not no never nothing nobody none neither nor nowhere cannot can't won't don't doesn't didn't isn't aren't "
    "wasn't weren't shouldn't wouldn't couldn't hasn't haven't hadn't ain't n't without lacks lacking".split()
)
_INFORMAL_SHAPE = re.compile(r"([a-z])\1{2,}|!{2,}|\?{2,}|(?:^|\s)[:;]-?[()DPp](?:\s|$)")


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def lower_words(text: str) -> list[str]:
    return [w.lower() for w in words(text)]


def tokens(text: str) -> list[str]:
    """Lower-cased words and runs of symbols (punctuation, emoticons, emoji, markup such as ``/>``): the units a
    shortcut can be. A planted or scraped artefact is as often ``:-)``, ``🍕`` or ``|||`` as a word."""
    return [t.lower() for t in _TOKEN.findall(text)]


def token_matches(text: str) -> list[re.Match[str]]:
    """:func:`tokens` with their places in ``text`` (to delete one)."""
    return list(_TOKEN.finditer(text))


def is_symbol(token: str) -> bool:
    """A run of symbols (no letter, digit or space): what :func:`tokens` yields besides words and numbers."""
    return bool(token) and not any(ch.isalnum() or ch.isspace() or ch == "_" for ch in token)


_PROSE_MARKS = frozenset(".,;:'\"`()[]/-")


def is_prose_punctuation(token: str) -> bool:
    """A mark prose is written with (``.``, ``,``, ``(``) or a run of one that prose repeats (``...``, ``--``,
    ``''``): every text holds them, so over-representation among failures says nothing about a shortcut; ``::``,
    ``|`` or ``^`` are not prose."""
    return bool(token) and (token in _PROSE_MARKS or (len(set(token)) == 1 and token[0] in ".-'`"))


def is_phrase(token: str) -> bool:
    """A run of words (a trigger of several words), not one token as :func:`tokens` splits text."""
    return " " in token.strip()


def holds(text: str, token: str) -> bool:
    """``text`` has ``token`` as :func:`tokens` splits it, or, for a phrase, that run whole in any case."""
    return bool(token_pattern([token]).search(text)) if is_phrase(token) else token.lower() in tokens(text)


def without(text: str, pattern: re.Pattern[str]) -> str:
    """``text`` with every match of ``pattern`` (a :func:`token_pattern`) taken out, spaces tidied; never empty."""
    return " ".join(pattern.sub(" ", text).split()) or "."


def token_pattern(items: Sequence[str]) -> re.Pattern[str]:
    """Any of ``items`` as a whole token, as :func:`tokens` splits text, in any case: a word not inside a longer
    word (nor a contraction), a symbol run not inside a longer run."""
    parts = [rf"(?<![^\w\s]){re.escape(t)}(?![^\w\s])" if is_symbol(t) else rf"(?<![\w']){re.escape(t)}(?![\w'])"
             for t in items]
    return re.compile("(?i)" + "|".join(f"(?:{p})" for p in parts))


CONTRAST = frozenset("but however although though yet while whereas despite nevertheless nonetheless".split())


def has_contrast(text: str) -> bool:
    return any(w in CONTRAST for w in lower_words(text))


def has_negation(text: str) -> bool:
    ws = lower_words(text)
    return any(w in NEGATIONS or w.endswith("n't") for w in ws)


@functools.lru_cache(maxsize=1)
def _colloquial_pattern() -> re.Pattern[str]:
    """Whole-word matches of the register table's colloquial forms (longest first, case-insensitive)."""
    from lmcritic.perturb.register import formal_forms

    forms = sorted(formal_forms(), key=len, reverse=True)
    return re.compile(r"(?<![\w'])(?:" + "|".join(re.escape(f) for f in forms) + r")(?![\w'])", re.I)


def colloquial_markers(text: str) -> list[str]:
    """Colloquial forms of the register table and informal shapes (elongations, '!!', emoticons) in ``text``."""
    found = [m.group(0).lower() for m in _colloquial_pattern().finditer(text)]
    found += [m.group(0) for m in _INFORMAL_SHAPE.finditer(text)]
    return found


def formalize(text: str) -> str:
    """The register intervention: the robustness ``to_formal`` rewrite (slang, contractions, emoji, casing)."""
    import random

    from lmcritic.perturb.register import ToFormal

    done = ToFormal()(text, random.Random(0))
    return done[0] if done is not None else text


def _dictionary_path() -> str:
    import importlib.resources

    return str(importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt")


@functools.lru_cache(maxsize=1)
def dictionary() -> frozenset[str]:
    """symspell's 82k-word English frequency list, as a set (cheap: no spelling index is built)."""
    with open(_dictionary_path(), encoding="utf-8") as f:
        return frozenset(line.split(" ", 1)[0] for line in f)


def is_typo(word: str) -> bool:
    """A lower-case alphabetic word of 3+ letters that is in neither the spelling dictionary nor common use."""
    w = word.lower()
    if len(w) < 3 or not w.isalpha() or _is_colloquial(w):
        return False
    return not is_known(w)


def is_known(word: str) -> bool:
    """A lower-case word in the spelling dictionary or in common use (Zipf 2.5+: not a typo)."""
    return word in dictionary() or zipf(word) >= 2.5


def _is_colloquial(word: str) -> bool:
    from lmcritic.perturb.register import formal_forms

    return word in formal_forms()


def typos(text: str) -> list[str]:
    return [w for w in words(text) if is_typo(w)]


_LONE_WORD = re.compile(r"(?<![\w'])[A-Za-z]+(?![\w'])")  # letters only, not part of a contraction


def spell_correct(text: str) -> str:
    """Each typo replaced by its most probable intended word (noisy channel, one edit:
    :mod:`lmcritic.diagnose._spelling`) in the typo's casing. The fragility diagnosis's repair intervention and
    normalize_input's spelling step are this one function, so what the diagnosis tested is what the fix does."""
    return _LONE_WORD.sub(_corrected, text)


def _corrected(m: re.Match) -> str:
    """Capitalised words after the start of a sentence are left alone: names are rare words, not typos."""
    from lmcritic.diagnose._spelling import correct_word
    from lmcritic.perturb.base import match_case

    word, start = m.group(0), m.start()
    line_start = start == 0 or m.string[:start].rstrip(" \t").endswith(("\n", ".", "!", "?", ":"))
    if (word[:1].isupper() and not line_start) or not is_typo(word):
        return word
    fixed = correct_word(word.lower())
    return match_case(word, fixed) if fixed else word


def zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


def rare_word_rate(text: str, threshold: float = 3.0) -> float:
    """Share of words rarer than ``threshold`` on the Zipf scale (3 = once per million words)."""
    ws = [w for w in lower_words(text) if w.isalpha()]
    return sum(zipf(w) < threshold for w in ws) / len(ws) if ws else 0.0


# -- identity terms: the lexicon of the bias area ------------------------------------------------------
def identity_terms(text: str) -> list[tuple[str, str]]:
    """(term as written, lower-cased; attribute) of each identity-term mention in ``text``."""
    from lmcritic.lexicon import find_identity_terms

    return [(m.text.lower(), m.attribute) for m in find_identity_terms(text)]


def identity_word(word: str) -> bool:
    """Whether one word names an identity group, alone or in a phrase ("black" in "the black audience"): the
    lexicon on the word and its capitalised form (names), then the lexicon's one-word group forms, including
    those it only matches in context."""
    w = word.lower()
    return bool(identity_terms(w) or identity_terms(w.capitalize())) or w in _group_words()


@functools.lru_cache(maxsize=1)
def _group_words() -> frozenset[str]:
    from lmcritic.lexicon import _terms

    forms = (str(v).rstrip("*").lower() for groups in _terms.GROUPS.values() for g in groups.values()
             for v in g.values())
    return frozenset(f for f in forms if f.isalpha())


def swap_identity(text: str, attribute: str, seed: int) -> str | None:
    """The text with its ``attribute`` identity terms swapped to another group, or None if nothing swaps."""
    import random

    from lmcritic.lexicon import swap

    out, _ = swap(text, attribute, random.Random(seed))
    return out if out != text else None


@functools.lru_cache(maxsize=1)
def sentiment_lexicon() -> frozenset[str]:
    """Words that carry sentiment (VADER's lexicon): tokens a sentiment decision *should* rest on."""
    return frozenset(sentiment_valence())


@functools.lru_cache(maxsize=1)
def sentiment_valence() -> dict[str, float]:
    """VADER's mean human valence per lexicon word (-4 .. +4)."""
    import importlib.resources

    path = importlib.resources.files("vaderSentiment") / "vader_lexicon.txt"
    out: dict[str, float] = {}
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        head, _, rest = line.partition("\t")
        head = head.strip().lower()
        if head.isalpha():
            out[head] = float(rest.split("\t", 1)[0])
    return out


def lexicon_explains(word: str, label: str | None) -> bool:
    """Whether a sentiment task's lexicon accounts for a token tied to ``label`` (None: unknown): a sentiment
    word, negation or intensifier (:func:`should_matter`), unless it is tied against its own valence."""
    return should_matter(word) and not (label is not None and against_lexicon(word, label))


def against_lexicon(word: str, label: str) -> bool:
    """Whether a sentiment word is tied to the label opposite its own valence ('comedy', VADER +1.5, in rows all
    labelled negative): its sentiment cannot explain that tie, so it is not one a decision should rest on there.
    Only for labels named positive/negative; negations and intensifiers have no valence and never qualify."""
    sign = {"positive": 1, "pos": 1, "negative": -1, "neg": -1}.get(str(label).strip().lower())
    valence = sentiment_valence().get(word.lower())
    return sign is not None and valence is not None and valence * sign < 0


@functools.lru_cache(maxsize=1)
def sentiment_symbols() -> frozenset[str]:
    """Symbol tokens that carry sentiment: VADER's emoticons (``:)``, ``<3``) and the emoji whose VADER name holds a
    sentiment word (``🙂`` "slightly smiling face"); ``🍕`` "pizza" is not one."""
    import importlib.resources

    root = importlib.resources.files("vaderSentiment")
    heads = (line.split("\t", 1)[0].strip().lower()
             for line in (root / "vader_lexicon.txt").read_bytes().decode("utf-8", "replace").splitlines())
    out = {h for h in heads if is_symbol(h)}
    words = sentiment_lexicon()
    for line in (root / "emoji_utf8_lexicon.txt").read_bytes().decode("utf-8", "replace").splitlines():
        emoji, _, name = line.partition("\t")
        if emoji.strip() and words.intersection(name.lower().split()):
            out.add(emoji.strip())
    return frozenset(out)


def should_matter(word: str, task_words: Sequence[str] = ()) -> bool:
    """Whether a sentiment decision may legitimately rest on ``word`` (sentiment word, negation, intensifier;
    for a symbol run, an emoticon or sentiment emoji, or exclamation/question marks, which intensify)."""
    w = word.lower()
    if is_symbol(w):
        return w in sentiment_symbols() or w in task_words or set(w) <= {"!", "?"}
    return w in sentiment_lexicon() or w in NEGATIONS or w.endswith("n't") or w in task_words or \
        w in {"very", "too", "so", "most", "least", "more", "less", "but", "yet", "only", "just", "really"}
