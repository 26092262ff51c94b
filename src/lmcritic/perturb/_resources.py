"""Offline lexical resources, loaded on first use and kept for the process.

* WordNet: Debian's ``wordnet-base`` files (``/usr/share/wordnet``) copied into an NLTK-shaped cache under
  ``lmcritic_home()`` (NLTK also wants a ``lexnames`` file, which the Debian package lacks; we write it).
* English word frequencies: ``wordfreq`` (Zipf scale) — a typo must not land on a real word.
* wordllama token embeddings (shipped inside the PyPI wheel) for embedding neighbours.
* Project-written lexicons in ``lmcritic/data/robustness``.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path
from typing import Any

from lmcritic.errors import ModelLoadError

WORDNET_DIR = Path(os.environ.get("LMCRITIC_WORDNET_DIR", "/usr/share/wordnet"))
_WN_FILES = ("data.noun", "data.verb", "data.adj", "data.adv", "index.noun", "index.verb", "index.adj",
             "index.adv", "noun.exc", "verb.exc", "adj.exc", "adv.exc", "cntlist.rev")
# WordNet 3.0 lexicographer files, in file-number order (lexnames(5WN)); NLTK's reader needs this list.
_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive "
    "noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity "
    "noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition "
    "verb.communication verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()


def lexicon(name: str) -> Any:
    """A project-written JSON lexicon from ``lmcritic/data/robustness``."""
    return _lexicon(name)


@functools.lru_cache(maxsize=None)
def _lexicon(name: str) -> Any:
    from lmcritic.datasets import packaged

    return json.loads(packaged(f"robustness/{name}.json").read_text(encoding="utf-8"))


def nltk_wordnet_root() -> Path:
    """An NLTK-shaped copy of the Debian WordNet files (made once, offline); returns ``.../corpora/wordnet``."""
    from lmcritic.runner import lmcritic_home

    missing = [f for f in _WN_FILES if not (WORDNET_DIR / f).is_file()]
    if missing:
        raise ModelLoadError(f"WordNet files missing under {WORDNET_DIR} ({', '.join(missing[:3])}...)",
                             "install them: apt-get install wordnet-base (or set LMCRITIC_WORDNET_DIR)")
    root = lmcritic_home() / "nltk_data" / "corpora" / "wordnet"
    if not (root / "lexnames").is_file():
        root.mkdir(parents=True, exist_ok=True)
        for f in _WN_FILES:
            shutil.copyfile(WORDNET_DIR / f, root / f)
        lex = "".join(f"{i:02d}\t{n}\t{_LEXPOS[n.split('.')[0]]}\n" for i, n in enumerate(_LEXNAMES))
        (root / "lexnames").write_text(lex, encoding="utf-8")
    return root


_LEXPOS = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


@functools.lru_cache(maxsize=1)
def wordnet() -> Any:
    """NLTK's WordNet reader on the cached copy (no download). NLTK only reads corpora under its data path,
    so the cache's ``nltk_data`` folder is added to ``nltk.data.path`` (as ``$NLTK_DATA`` would)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = nltk_wordnet_root()
    data_dir = str(root.parent.parent)
    if data_dir not in nltk.data.path:
        nltk.data.path.append(data_dir)

    class _Reader(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            """No cross-version map: it serves only multilingual OMW data and needs an absent index.sense."""
            return None

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "multilingual functions are not available": expected
        return _Reader(str(root), None)


def zipf(word: str) -> float:
    """Zipf frequency of ``word`` in English (0 for unknown words; ~3+ is a common word)."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en")


def is_word(word: str, min_zipf: float = 1.5) -> bool:
    """Whether ``word`` is a real English word (so a typo that produces it would change meaning)."""
    return zipf(word.lower()) >= min_zipf


@functools.lru_cache(maxsize=1)
def wordllama() -> Any:
    """The wordllama model from the weights inside its wheel (never downloads)."""
    try:
        import wordllama as pkg
        from wordllama import WordLlama
    except ImportError as err:
        raise ModelLoadError("wordllama is not installed", "pip install 'lmcritic[robustness]'") from err
    try:
        return WordLlama.load(cache_dir=Path(pkg.__file__).parent, disable_download=True)
    except Exception as err:  # noqa: BLE001 - its loader raises several types for missing weights
        raise ModelLoadError(f"wordllama weights could not be loaded offline: {err}",
                             "reinstall wordllama (its wheel ships the default weights)") from None
