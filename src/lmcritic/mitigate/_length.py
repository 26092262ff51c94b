"""Shortcut removal for a length culprit: length no longer tells the long label from the others.

A length shortcut is two gaps in the corpus: the long label has few short rows and the others few long ones. A long
row of another label is made by joining its own rows (every part carries the label, so the join does too). A short
row of the long label cannot be made that safely: a window cut from a long row may not carry its label ("the
director's first film" out of a rave). So a window is kept only when a reader of content agrees: a logistic
regression on sentence embeddings, cross-fitted so that no window is read by a reader that saw its source row,
labels it with the source's label. The reader learnt length too and leans a short window away from the long label,
so it errs towards keeping too few. On the planted length corpora (seeds 10, 11; SST-2 phrases) the kept windows
that are themselves SST-2 phrases carried the label 95-100 % of the time, against 81-84 % for a window drawn at
random from each row (``benchmarks/planted/length_crops.py``).

The joined rows also take one window of the long label's rows that the reader gives that label at most
:data:`FILLER_P`: the long rows hold all of the corpus's long, mostly neutral narrative, joined short rows none, and
without it narrative still says the long label. The reader is rough there (of those windows that are SST-2
phrases, 53 % and 73 % are labelled the long label), so some joined rows read as a mixed review of their label —
as natural long rows of it often are. On the same plants' models (affected failure after, clean accuracy change;
one fine-tune each): joins alone 0.519, 0.547 (+0.147, +0.150); with the kept windows 0.452, 0.484 (+0.163,
+0.143); with the fillers too 0.375, 0.474 (+0.213, +0.183) (``benchmarks/results/length_windows_20261207/``).
Windows are read only when the long label has (almost) no short rows of its own (:func:`_lacks_short_rows`): where
it has some, the quartile weights lean on real rows and windows cost a little. Without the sentence encoder
(TF-IDF reads length and words, not sentences) no window is read and the quartile weights do what they can.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from typing import Any, Sequence

from lmcritic.mitigate.data import Row

READER = "minilm"  # the features a window's label is trusted to
STARTS = 6  # window positions read per long row (evenly spaced): enough to find its gist, bounded cost
FOLDS = 5
MAX_SOURCES = 2000  # long rows read (12,000 windows: about two minutes of MiniLM on two CPU cores)
MAX_READER_ROWS = 5000  # rows the reader is fitted on; a larger corpus is sampled
MAX_WEIGHT = 20.0  # as label_repair's: beyond it a few rows would stand for too many
FILLER_P = 0.25  # a filler window: the reader gives the long label at most this. Not 0.5: the reader leans a short
# window away from the long label (it learnt length too), so a window of its content can read just under a half


def balance_length(rows: list[Row], label: str, rng: random.Random,
                   features: str | None = None) -> tuple[list[Row], dict[str, Any]]:
    """Each other label gets as large a share of long rows (above the corpus median) as ``label`` has, joined from
    its own rows (with a window of ``label``'s long rows that the reader does not give ``label``: see
    :func:`_joined`); ``label`` gets short windows of its long rows that the reader gives it, up to the others'
    share of short rows (the reader: ``features`` = :data:`READER`); then every row is weighted by P(label) /
    P(label | length quartile), so each quartile holds the labels in their corpus shares."""
    rows = list(rows)
    median = sorted(_words(r) for r in rows)[len(rows) // 2]
    labels = {str(r.label) for r in rows}
    own_label = [r for r in rows if str(r.label) == label]
    goals = [_words(r) for r in own_label if _words(r) >= median] or [2 * median]
    share = len(goals) / max(1, len(own_label))
    joins = {y: max(0, round(share * n) - long) for y, (n, long) in _counts(rows, labels - {label}, median).items()}
    lacking = _lacks_short_rows(rows, label, median, joins)
    read = windows_read(rows, label, median, rng, features) if features == READER and lacking else []
    fillers = [w for _, w, p in read if p <= FILLER_P] if len(labels) == 2 else []
    added: Counter[str] = Counter()
    for y in sorted(joins):
        own = [r for r in rows if str(r.label) == y]
        for _ in range(joins[y]):
            rows.append(_joined(own, rng.choice(goals), rng, fillers))
            added[y] += 1
    cropped = crops(rows, label, median, read)
    info: dict[str, Any] = {"length_label": label, "joined_rows": dict(added), "median_words": median,
                            "cropped_rows": len(cropped), "filler_windows": len(fillers),
                            "crop_reader": features if read else None}
    if features == READER and not lacking:
        info["notes"] = [f"'{label}' has short rows of its own for the quartile weights to lean on: no window of its "
                         "long rows was read (on a corpus whose long label had some, windows cost a little)"]
    elif features != READER:
        why = "crop_length is off" if features is None else "which window carries the label is read with the " \
            "sentence encoder, which is not installed"
        info["notes"] = [f"no short '{label}' rows were cut from its long ones and no filler joined ({why}): the "
                         "joins and quartile weights do it alone"]
    return _bin_weights(rows + cropped), info


def _counts(rows: Sequence[Row], labels: set[str], median: int) -> dict[str, tuple[int, int]]:
    """Per label: its rows and its long rows (at or above the median)."""
    return {y: (sum(str(r.label) == y for r in rows), sum(str(r.label) == y and _words(r) >= median for r in rows))
            for y in sorted(labels)}


def _lacks_short_rows(rows: Sequence[Row], label: str, median: int, joins: dict[str, int]) -> bool:
    """Windows are read only where the quartile weights cannot do it: ``label``'s own short rows would each have to
    stand for more than :data:`MAX_WEIGHT` short rows (none at all: the full length plant) once the joins are in.
    Measured, paired on the same models (``benchmarks/results/length_windows_20261207/``): where the long label had
    none, the fix with windows passed 25 affected cases that joins alone failed and failed 3 they passed (McNemar
    p = 2.7e-05, two seeds); where it had a fifth of its rows short, 5 and 14 (p = 0.064, three seeds)."""
    have = sum(str(r.label) == label and _words(r) < median for r in rows)
    need = _short_gap(rows, label, median, joined=sum(joins.values()))
    return need > 0 and (have == 0 or (have + need) / have > MAX_WEIGHT)


def windows_read(rows: Sequence[Row], label: str, median: int, rng: random.Random,
                 features: str) -> list[tuple[int, str, float]]:
    """Windows of ``label``'s long rows, as long as the other labels' short rows, with the cross-fitted reader's
    P(``label``): (source row, window, probability)."""
    short = [_words(r) for r in rows if str(r.label) != label and _words(r) < median]
    source = [i for i, r in enumerate(rows) if str(r.label) == label and _words(r) >= median]
    if not short or not source:
        return []
    if len(source) > MAX_SOURCES:  # (under the caps no draw is made: the same windows as without them)
        source = sorted(rng.sample(source, MAX_SOURCES))
    windows = [(i, w) for i in source for w in _windows(rows[i].text, rng.choice(short))]
    return [(i, w, float(p)) for (i, w), p in zip(windows, _read(rows, label, windows, features, rng))]


def crops(rows: Sequence[Row], label: str, median: int, read: list[tuple[int, str, float]]) -> list[Row]:
    """The windows the reader gives ``label`` (the most certain per source row, the most certain rows first), as
    many as bring ``label``'s share of short rows up to the other labels'."""
    need = _needed(rows, label, median)
    best: dict[int, tuple[float, str]] = {}
    for i, w, pr in read:
        best[i] = max(best.get(i, (-1.0, "")), (pr, w))
    kept = sorted(((pr, w, i) for i, (pr, w) in best.items() if pr > 0.5), reverse=True)[:max(0, need)]
    return [Row(w, rows[i].label, weight=rows[i].weight, origin="length_cropped", twin=rows[i].text)
            for _, w, i in kept]


def _needed(rows: Sequence[Row], label: str, median: int) -> int:
    """Short rows ``label`` lacks to hold as large a share of short rows as the other labels (pooled) hold."""
    return round(_short_gap(rows, label, median))


def _short_gap(rows: Sequence[Row], label: str, median: int, joined: int = 0) -> float:
    """:func:`_needed` unrounded; ``joined``: long rows of the other labels still to be joined in."""
    own = [r for r in rows if str(r.label) == label]
    others = [r for r in rows if str(r.label) != label]
    target = sum(_words(r) < median for r in others) / max(1, len(others) + joined)
    have = sum(_words(r) < median for r in own)
    return 0.0 if target >= 1 else (target * len(own) - have) / (1 - target)


def _windows(text: str, k: int) -> list[str]:
    """Up to :data:`STARTS` windows of ``k`` words, evenly spaced over the text."""
    words = text.split()
    last = len(words) - k
    if last < 0:
        return []
    starts = sorted({round(j * last / max(1, STARTS - 1)) for j in range(STARTS)})
    return [" ".join(words[s:s + k]) for s in starts]


def _read(rows: Sequence[Row], label: str, windows: list[tuple[int, str]], features: str,
          rng: random.Random) -> Any:
    """P(``label``) of each window from a logistic regression on the original rows, cross-fitted by source row:
    the reader of a window never saw the row it was cut from (it would vouch for the row, not the window)."""
    import zlib

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from lmcritic.diagnose.corpus import normalize
    from lmcritic.mitigate.cleaning import _features

    fold_of = lambda text: zlib.crc32(normalize(text).encode()) % FOLDS  # noqa: E731 (copies share a fold)
    base = [r for r in rows if r.origin != "length_joined"]  # joined rows are this repair's, not the corpus's
    if len(base) > MAX_READER_ROWS:
        base = rng.sample(base, MAX_READER_ROWS)
    x = _features([r.text for r in base] + [w for _, w in windows], features)
    xr, xw = x[:len(base)], x[len(base):]
    y = np.array([str(r.label) == label for r in base])
    fold = np.array([fold_of(r.text) for r in base])
    owner = np.array([fold_of(rows[i].text) for i, _ in windows])
    p = np.zeros(len(windows))
    if y.all() or not y.any():
        return p
    for f in range(FOLDS):
        if not (owner == f).any() or len(set(y[fold != f])) < 2:
            continue
        reader = LogisticRegression(max_iter=2000).fit(xr[fold != f], y[fold != f])
        p[owner == f] = reader.predict_proba(xw[owner == f])[:, list(reader.classes_).index(True)]
    return p


def _joined(own: list[Row], goal: int, rng: random.Random, fillers: Sequence[str] = (), most: int = 8) -> Row:
    """Rows of one label joined up to ``goal`` words, with one filler window among them when there are any (see
    the module docstring); the label is its own rows', and it pairs with its first own row."""
    parts = [rng.choice(own)]
    filler = [rng.choice(fillers)] if fillers else []
    while sum(map(_words, parts)) + sum(len(f.split()) for f in filler) < goal and len(parts) < most:
        parts.append(rng.choice(own))
    texts = [r.text for r in parts]
    if filler:
        texts.insert(rng.randrange(len(texts) + 1), filler[0])
    return Row(" ".join(texts), parts[0].label, origin="length_joined", twin=parts[0].text)


def _bin_weights(rows: list[Row]) -> list[Row]:
    from lmcritic.diagnose.hypotheses._length import quartile_of

    quartile = quartile_of([_words(r) for r in rows])
    bins = [quartile(_words(r)) for r in rows]
    share = Counter(str(r.label) for r in rows)
    per_bin = Counter(bins)
    cell = Counter((b, str(r.label)) for b, r in zip(bins, rows))
    out = []
    for b, r in zip(bins, rows):
        w = (share[str(r.label)] / len(rows)) / (cell[b, str(r.label)] / per_bin[b])
        out.append(replace(r, weight=r.weight * w))
    return out


def _words(r: Row) -> int:
    return len(r.text.split())
