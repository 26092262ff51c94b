"""Text facts diagnosis slices on: words, negation, colloquial register, typos, rare words, identity terms.

Each helper is cheap and deterministic. The dictionaries (wordfreq, symspell's 82k-word list, the area
lexicon of identity terms) load on first use and are kept for the process.
"""
from __future__ import annotations

import functools
import re
from typing import Sequence

_WORD = re.compile(r"[A-Za-z][A-Za-z']*|\d+")
NEGATIONS = frozenset(
    "not no never nothing nobody none neither nor nowhere cannot can't won't don't doesn't didn't isn't aren't "
    "wasn't weren't shouldn't wouldn't couldn't hasn't haven't hadn't ain't n't without lacks lacking".split()
)
# Informal register → a formal equivalent. Used both to detect colloquial text and, as an intervention,
# to shift it back to the formal register the training data had (the mismatch hypothesis's test).
COLLOQUIAL: dict[str, str] = {
    "gonna": "going to", "wanna": "want to", "gotta": "got to", "kinda": "kind of", "sorta": "sort of",
    "ya": "you", "u": "you", "ur": "your", "y'all": "you all", "dunno": "do not know", "lemme": "let me",
    "gimme": "give me", "ain't": "is not", "nah": "no", "yeah": "yes", "yep": "yes", "nope": "no",
    "lol": "", "lmao": "", "omg": "", "tbh": "", "imo": "", "fr": "", "ngl": "", "smh": "", "af": "very",
    "hella": "very", "super": "very", "totally": "completely", "pretty": "rather",
    "dope": "excellent", "lit": "exciting", "fire": "excellent", "sick": "excellent", "rad": "excellent",
    "legit": "genuinely", "lowkey": "somewhat", "highkey": "clearly", "mid": "mediocre", "meh": "mediocre",
    "trash": "bad", "garbage": "bad", "sucks": "is bad", "sucked": "was bad", "lame": "dull", "wack": "bad",
    "cringe": "embarrassing", "cringey": "embarrassing", "yawn": "boring", "snooze": "boring",
    "bussin": "excellent", "goated": "excellent", "slaps": "is excellent", "banger": "excellent film",
    "flop": "failure", "dud": "failure", "stinker": "bad film", "awesome": "excellent", "cool": "good",
    "dig": "like", "vibes": "atmosphere", "vibe": "atmosphere", "flick": "film", "flicks": "films",
    "movie": "film", "bro": "", "dude": "", "guys": "people", "stuff": "things", "thing's": "it is",
    "nuts": "crazy", "bonkers": "crazy", "yikes": "", "ugh": "", "wow": "", "whoa": "", "tho": "though",
    "cuz": "because", "coz": "because", "bc": "because", "thx": "thanks", "pls": "please", "rly": "really",
    "sooo": "so", "soooo": "so", "realy": "really", "prolly": "probably", "outta": "out of", "lotta": "lot of",
}
_INFORMAL_SHAPE = re.compile(r"([a-z])\1{2,}|!{2,}|\?{2,}|(?:^|\s)[:;]-?[()DPp](?:\s|$)")


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def lower_words(text: str) -> list[str]:
    return [w.lower() for w in words(text)]


def has_negation(text: str) -> bool:
    ws = lower_words(text)
    return any(w in NEGATIONS or w.endswith("n't") for w in ws)


def colloquial_markers(text: str) -> list[str]:
    """Informal words and shapes (elongations, '!!', emoticons) in ``text``."""
    found = [w for w in lower_words(text) if w in COLLOQUIAL]
    found += [m.group(0) for m in _INFORMAL_SHAPE.finditer(text)]
    return found


def formalize(text: str) -> str:
    """Shift informal words back to formal ones (the register intervention); other text is kept."""
    def repl(m: re.Match) -> str:
        w = m.group(0)
        formal = COLLOQUIAL.get(w.lower())
        return w if formal is None else formal

    out = _WORD.sub(repl, text)
    out = re.sub(r"(.)\1{2,}", r"\1", out)
    out = re.sub(r"([!?]){2,}", r"\1", out)
    return re.sub(r"\s{2,}", " ", out).strip()


def _dictionary_path() -> str:
    import importlib.resources

    return str(importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt")


@functools.lru_cache(maxsize=1)
def dictionary() -> frozenset[str]:
    """symspell's 82k-word English frequency list, as a set (cheap: no spelling index is built)."""
    with open(_dictionary_path(), encoding="utf-8") as f:
        return frozenset(line.split(" ", 1)[0] for line in f)


@functools.lru_cache(maxsize=1)
def _symspell():
    """The spelling corrector: edit distance 1 (Damerau: a swap counts once), built on first correction."""
    from symspellpy import SymSpell

    sym = SymSpell(max_dictionary_edit_distance=1, prefix_length=7)
    sym.load_dictionary(_dictionary_path(), term_index=0, count_index=1)
    return sym


def is_typo(word: str) -> bool:
    """A lower-case alphabetic word of 3+ letters that is in neither the spelling dictionary nor common use."""
    w = word.lower()
    if len(w) < 3 or not w.isalpha() or w in COLLOQUIAL:
        return False
    if w in dictionary():
        return False
    return zipf(w) < 2.5


def typos(text: str) -> list[str]:
    return [w for w in words(text) if is_typo(w)]


def spell_correct(text: str) -> str:
    """Replace each typo with symspell's closest dictionary word (the fragility repair intervention)."""
    from symspellpy import Verbosity

    def repl(m: re.Match) -> str:
        w = m.group(0)
        if not is_typo(w):
            return w
        hits = _symspell().lookup(w.lower(), Verbosity.CLOSEST, max_edit_distance=1)
        return hits[0].term if hits else w

    return _WORD.sub(repl, text)


def zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


def rare_word_rate(text: str, threshold: float = 3.0) -> float:
    """Share of words rarer than ``threshold`` on the Zipf scale (3 = once per million words)."""
    ws = [w for w in lower_words(text) if w.isalpha()]
    return sum(zipf(w) < threshold for w in ws) / len(ws) if ws else 0.0


# -- identity terms: the bias area's lexicon when present, a small built-in list otherwise --------------
_FALLBACK_GROUPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "gender": (("woman", "man"), ("women", "men"), ("she", "he"), ("her", "his"), ("girl", "boy"),
               ("girls", "boys"), ("mother", "father"), ("daughter", "son"), ("female", "male"),
               ("wife", "husband"), ("sister", "brother"), ("lady", "gentleman")),
    "religion": (("muslim", "christian"), ("muslims", "christians"), ("jewish", "catholic"),
                 ("islam", "christianity")),
    "race": (("black", "white"), ("african", "european"), ("asian", "american"), ("hispanic", "white")),
    "sexuality": (("gay", "straight"), ("lesbian", "straight"), ("queer", "straight")),
    "age": (("old", "young"), ("elderly", "young"), ("teenager", "adult")),
}


def _fallback_index() -> dict[str, tuple[str, str]]:
    """term → (attribute, counterpart) from the built-in pairs (both directions)."""
    index: dict[str, tuple[str, str]] = {}
    for attribute, pairs in _FALLBACK_GROUPS.items():
        for a, b in pairs:
            index.setdefault(a, (attribute, b))
            index.setdefault(b, (attribute, a))
    return index


def identity_terms(text: str) -> list[tuple[str, str]]:
    """(term, attribute) pairs found in ``text``: via ``lmcritic.lexicon`` when installed, else built-ins."""
    lex = _lexicon()
    if lex is not None:
        try:
            return [_term_pair(t) for t in lex.find_identity_terms(text)]
        except Exception:  # noqa: BLE001 - a lexicon still being built must not stop a diagnosis
            pass
    index = _fallback_index()
    return [(w, index[w][0]) for w in lower_words(text) if w in index]


def _term_pair(found: object) -> tuple[str, str]:
    if isinstance(found, (tuple, list)):
        return str(found[0]).lower(), str(found[1]) if len(found) > 1 else "identity"
    term = getattr(found, "term", None) or getattr(found, "text", None) or str(found)
    return str(term).lower(), str(getattr(found, "attribute", "identity"))


def swap_identity(text: str, attribute: str, seed: int) -> str | None:
    """The text with its ``attribute`` identity terms swapped to another group, or None if nothing swaps."""
    import random

    lex = _lexicon()
    if lex is not None:
        try:
            out = lex.swap(text, attribute, random.Random(seed))
            out = out[0] if isinstance(out, tuple) else out
            if isinstance(out, str) and out != text:
                return out
        except Exception:  # noqa: BLE001
            pass
    index = _fallback_index()

    def repl(m: re.Match) -> str:
        w = m.group(0)
        hit = index.get(w.lower())
        if hit is None or hit[0] != attribute:
            return w
        return hit[1].capitalize() if w[0].isupper() else hit[1]

    out = _WORD.sub(repl, text)
    return out if out != text else None


@functools.lru_cache(maxsize=1)
def _lexicon():
    try:
        import importlib

        mod = importlib.import_module("lmcritic.lexicon")
        return mod if hasattr(mod, "find_identity_terms") else None
    except Exception:  # noqa: BLE001 - absent or half-written: use the built-ins
        return None


@functools.lru_cache(maxsize=1)
def sentiment_lexicon() -> frozenset[str]:
    """Words that carry sentiment (VADER's lexicon): tokens a sentiment decision *should* rest on."""
    import importlib.resources

    path = importlib.resources.files("vaderSentiment") / "vader_lexicon.txt"
    out = set()
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        head = line.split("\t", 1)[0].strip().lower()
        if head.isalpha():
            out.add(head)
    return frozenset(out)


def should_matter(word: str, task_words: Sequence[str] = ()) -> bool:
    """Whether a sentiment decision may legitimately rest on ``word`` (sentiment word, negation, intensifier)."""
    w = word.lower()
    return w in sentiment_lexicon() or w in NEGATIONS or w.endswith("n't") or w in task_words or \
        w in {"very", "too", "so", "most", "least", "more", "less", "but", "yet", "only", "just", "really"}
