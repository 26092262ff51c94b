"""Shortcut removal for a length culprit: length no longer tells the long label from the others.

A length shortcut is two gaps in the corpus: the long label has few short rows and the others few long ones. A long
row of another label is made by joining its own rows (every part carries the label, so the join does too); then
rows are weighted by length quartile. Where the long label has short rows of its own, that is enough.

Where it has (almost) none (:func:`_lacks_short_rows`), the shortcut is more than length: the long label's rows hold
all of the corpus's natural long sentences and the narrative that fills them, and a model learns "a long natural
sentence is that label" — joined rows of the others, visibly stitched, do not unteach it. So the long label's long
rows are rebuilt (:func:`_rebuilt`): each becomes its window that a reader of content gives the label (a short row
of that label), and as many rows are joined from those windows as the label had long rows. Every joined row of
every label also takes one filler: a window of the long rows that the reader gives the long label at most
:data:`FILLER_P` (narrative), so narrative comes in all labels at one rate. The long label loses its natural long
form; every label then has short rows and joined long rows with narrative in them.

The reader: a logistic regression on sentence embeddings, cross-fitted so that no window is read by a reader that
saw its source row. Fitted on a corpus where length is the label, it would read length; the embeddings lose
:data:`LENGTH_DIRECTIONS` directions that predict length within each label first (:func:`_length_nullspace`; a
regression of length on the whole corpus removes the label with it, and every window then reads 0.43-0.60). On the
planted length corpora of seeds 10, 11, 12, 5, the reader's failure on the plant's SST-2 dev sentences whose length
points at the wrong label goes 0.53, 0.65, 0.64, 0.64 -> 0.33, 0.55, 0.39, 0.51 with 10 removed, the others' stays
0.06-0.12 (``benchmarks/planted/length_reader.py``; 10-20 directions about level, 40 worse); a window of 910, 901,
901 of 1,000 long rows is kept where the plain reader kept 717, 705, 708 (seeds 12, 11, 5).

Full length plant (``benchmarks/results/length_rebuilt_20261207/``; from the base with the plant's recipe, one
fine-tune each), affected failure after, seeds 10, 11, 12, 0, 5, 6: 0.183, 0.242, 0.242, 0.229, 0.200, 0.187 (from
0.81-0.85; clean accuracy +0.22 to +0.30), closed 6/6, where adding windows and keeping the long rows left 0.375,
0.474, 0.465, 0.400, 0.526, 0.346. Rebuilt without fillers, the affected failure was lower (0.211, 0.141, 0.137 on
seeds 11, 12, 5) because the shortcut turned round (narrative was then only in the short label's own rows): the
long label's natural long sentences failed 34/79 and 27/75 (the clean model: 14/79); with fillers, 22/79 and 18/75.
Without the sentence encoder (TF-IDF reads length and words, not sentences) no window is read and the joins and
quartile weights do what they can.
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
LENGTH_DIRECTIONS = 10  # removed from the reader's embeddings (see _length_nullspace)
FILLER_P = 0.25  # a filler window: the reader gives the long label at most this. Not 0.5: a filler is narrative
# that says neither label, and a window read just under a half often carries some of the long label
MIN_KEPT = 0.5  # rebuild only when at least this share of the long rows read has a window the reader gives the label


def balance_length(rows: list[Row], label: str, rng: random.Random,
                   features: str | None = None) -> tuple[list[Row], dict[str, Any]]:
    """Each other label gets as large a share of long rows (above the corpus median) as ``label`` has, joined from
    its own rows; where ``label`` has (almost) no short rows of its own and the reader (``features`` =
    :data:`READER`) is there, its long rows are rebuilt from windows (:func:`_rebuilt`) and a filler window joins
    every joined row; then every row is weighted by P(label) / P(label | length quartile), so each quartile holds
    the labels in their corpus shares."""
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
    rows, rebuilt = _rebuilt(rows, read, goals, fillers, rng)
    added: Counter[str] = Counter({label: rebuilt["joined"]} if rebuilt["joined"] else {})
    for y in sorted(joins):
        own = [r for r in rows if str(r.label) == y]
        for _ in range(joins[y]):
            rows.append(_joined(own, rng.choice(goals), rng, fillers))
            added[y] += 1
    info: dict[str, Any] = {"length_label": label, "joined_rows": dict(added), "median_words": median,
                            "rebuilt_long_rows": rebuilt["rebuilt"], "cropped_rows": rebuilt["cropped"],
                            "filler_windows": len(fillers), "crop_reader": features if read else None}
    unread = len(goals) - rebuilt["rebuilt"] if read and rebuilt["rebuilt"] else 0
    if features == READER and not lacking:
        info["notes"] = [f"'{label}' has short rows of its own for the quartile weights to lean on: no window of its "
                         "long rows was read (on a corpus whose long label had some, windows cost a little)"]
    elif features != READER:
        why = "crop_length is off" if features is None else "which window carries the label is read with the " \
            "sentence encoder, which is not installed"
        info["notes"] = [f"'{label}' keeps its long rows: no window of them was read and no filler joined ({why}); "
                         "the joins and quartile weights do it alone"]
    elif not rebuilt["rebuilt"]:
        info["notes"] = [f"'{label}' keeps its long rows: the reader gives it no window of most of them (under "
                         f"{MIN_KEPT:.0%}), so rebuilt from windows the label would be mostly gone"]
    elif unread > 0:
        info["notes"] = [f"{unread} long '{label}' rows beyond the {MAX_SOURCES} read were kept as they are"]
    return _bin_weights(rows), info


def _counts(rows: Sequence[Row], labels: set[str], median: int) -> dict[str, tuple[int, int]]:
    """Per label: its rows and its long rows (at or above the median)."""
    return {y: (sum(str(r.label) == y for r in rows), sum(str(r.label) == y and _words(r) >= median for r in rows))
            for y in sorted(labels)}


def _lacks_short_rows(rows: Sequence[Row], label: str, median: int, joins: dict[str, int]) -> bool:
    """Windows are read only where the quartile weights cannot do it: ``label``'s own short rows would each have to
    stand for more than :data:`MAX_WEIGHT` short rows (none at all: the full length plant) once the joins are in.
    Measured, paired on the same models (``benchmarks/results/length_windows_20261207/``, when windows were added
    to the long rows rather than rebuilding them): where the long label had none, the fix with windows passed 25
    affected cases that joins alone failed and failed 3 they passed (McNemar p = 2.7e-05, two seeds); where it had
    a fifth of its rows short, 5 and 14 (p = 0.064, three seeds)."""
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


def _rebuilt(rows: list[Row], read: list[tuple[int, str, float]], goals: Sequence[int], fillers: Sequence[str],
             rng: random.Random) -> tuple[list[Row], dict[str, int]]:
    """Each long row that was read is replaced by its window the reader gives its label most (dropped when no
    window gets over a half), and as many rows are joined from those windows up to the long rows' lengths, one
    filler in each. A shortcut on length is also one on whatever only long rows hold: natural long sentences and
    their narrative. Rebuilt, the long label's rows are short windows and joins like the other labels', and the
    narrative (fillers) comes in every label's joined rows at one rate, so neither length, nor form, nor narrative
    tells the label. Without a read (no reader, or short rows of the label to weigh), or where the reader gives the
    label to no window of most rows (:data:`MIN_KEPT`: rebuilt, most of the label would be gone), nothing changes."""
    best: dict[int, tuple[float, str]] = {}
    for i, w, pr in read:
        best[i] = max(best.get(i, (-1.0, "")), (pr, w))
    cropped = [Row(w, rows[i].label, weight=rows[i].weight, origin="length_cropped", twin=rows[i].text)
               for i, (pr, w) in sorted(best.items()) if pr > 0.5]
    if len(cropped) < MIN_KEPT * len(best):  # the reader cannot place the label: rebuilt, the label would go
        return rows, {"rebuilt": 0, "cropped": 0, "joined": 0}
    joined = [_joined(cropped, rng.choice(goals), rng, fillers) for _ in cropped]
    kept = [r for j, r in enumerate(rows) if j not in best]
    return kept + cropped + joined, {"rebuilt": len(best), "cropped": len(cropped), "joined": len(joined)}


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
    y = np.array([str(r.label) == label for r in base])
    if isinstance(x, np.ndarray):  # sentence embeddings (TF-IDF's sparse rows read words, not length)
        x = x @ _length_nullspace(x[:len(base)], y, np.array([_words(r) for r in base]))
    xr, xw = x[:len(base)], x[len(base):]
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


def _length_nullspace(x: Any, y: Any, words: Any) -> Any:
    """A projection that removes :data:`LENGTH_DIRECTIONS` directions of length from the embeddings, found within
    each label (iterative nullspace projection): the reader learns content, not the length its labels confound."""
    import numpy as np
    from sklearn.linear_model import Ridge

    z = np.log(np.maximum(words, 1)).astype(float)
    centred = x.copy()
    for side in (True, False):
        z[y == side] -= z[y == side].mean() if (y == side).any() else 0.0
        centred[y == side] -= centred[y == side].mean(0) if (y == side).any() else 0.0
    p = np.eye(x.shape[1])
    for _ in range(min(LENGTH_DIRECTIONS, x.shape[1] // 4)):  # (a small embedding keeps most of itself)
        w = Ridge(alpha=1.0).fit(centred @ p, z).coef_
        if not np.linalg.norm(w):
            break
        w = w / np.linalg.norm(w)
        p = p @ (np.eye(len(w)) - np.outer(w, w))
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
