"""Length-shortcut repair: where the long label has no short rows, its long rows are rebuilt from the windows a
content reader (cross-fitted by source row, length projected out) gives the label, and narrative fillers join every
label's joined rows."""
from __future__ import annotations

import random

from lmcritic.mitigate._length import _length_nullspace, _rebuilt, _windows, balance_length, windows_read
from lmcritic.mitigate.data import Row

FILLER = ("the", "film", "has", "a", "plot", "and", "cast", "with", "its", "scenes")


def _long(rng: random.Random, cue: str, label: str, line: int) -> Row:
    words = [rng.choice(FILLER) for _ in range(rng.randint(15, 20))]
    for at in range(0, len(words), 3):  # the cue in every window of three or more words
        words[at] = cue
    return Row(" ".join(words), label, line=line)


def _corpus(seed: int = 0) -> list[Row]:
    """Every 'positive' row long (above the median), 180 'negative' rows short and 60 long; 20 long 'positive' rows
    read as negative (their every window holds 'dull', the negative rows' word)."""
    rng = random.Random(seed)
    rows = [_long(rng, "great", "positive", i) for i in range(100)]
    rows += [_long(rng, "dull", "positive", 100 + i) for i in range(20)]
    rows += [Row(" ".join([rng.choice(FILLER) for _ in range(rng.randint(3, 7))] + ["dull"]), "negative",
                 line=200 + i) for i in range(180)]
    rows += [_long(rng, "dull", "negative", 400 + i) for i in range(60)]
    rng.shuffle(rows)
    return rows


def test_windows_are_evenly_spaced_and_k_words_long():
    text = " ".join(str(i) for i in range(20))
    got = _windows(text, 5)
    assert got[0] == "0 1 2 3 4" and got[-1] == "15 16 17 18 19" and len(got) == 6
    assert all(len(w.split()) == 5 for w in got) and _windows("a b", 5) == []


def test_rebuilt_long_rows_are_windows_the_reader_gives_the_label_and_joins_of_them():
    """Every long 'positive' row read is replaced: by its window the reader gives 'positive' ('great', never
    'dull'; a row with no such window is dropped) and by rows joined from those windows up to the long lengths."""
    rows = _corpus()
    median = sorted(len(r.text.split()) for r in rows)[len(rows) // 2]
    read = windows_read(rows, "positive", median, random.Random(0), "tfidf")
    out, counts = _rebuilt(rows, read, [18], [], random.Random(0))
    assert counts["rebuilt"] == 120 and 0 < counts["cropped"] <= 100 and counts["joined"] == counts["cropped"]
    cut = [r for r in out if r.origin == "length_cropped"]
    assert all(r.label == "positive" and len(r.text.split()) < median and r.text in r.twin for r in cut)
    assert all("great" in r.text.split() and "dull" not in r.text.split() for r in cut)  # the reader's veto
    assert not [r for r in out if r.label == "positive" and r.origin != "length_cropped" and r.origin !=
                "length_joined"]  # no natural long 'positive' row is left
    joined = [r for r in out if r.origin == "length_joined"]
    assert all(r.label == "positive" and len(r.text.split()) >= 18 and r.twin in r.text for r in joined)
    assert _rebuilt(rows, [], [18], [], random.Random(0)) == (rows, {"rebuilt": 0, "cropped": 0, "joined": 0})


def test_long_rows_stay_when_the_reader_gives_the_label_to_no_window_of_most_of_them(monkeypatch):
    """A reader that places the label in no window of most long rows would, by rebuilding, take most of the label
    out of the corpus: the rows stay as they are and the note says why."""
    from lmcritic.mitigate import _length

    monkeypatch.setattr(_length, "READER", "tfidf")
    monkeypatch.setattr(_length, "_read", lambda rows, label, windows, features, rng: [0.4] * len(windows))
    rows = _corpus()
    out, info = balance_length(rows, "positive", random.Random(0), "tfidf")
    assert info["rebuilt_long_rows"] == 0 and info["cropped_rows"] == 0 and "mostly gone" in info["notes"][0]
    assert sorted(r.text for r in out if r.label == "positive") == sorted(r.text for r in rows if r.label == "positive")


def test_the_readers_embeddings_lose_length_within_labels_and_keep_the_label():
    """Embeddings whose first axis is length within each label and whose second is the label (and, as in the
    planted corpora, length differs by label): the projection takes the first out and leaves the second."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.arange(400) % 2 == 0
    words = np.where(y, rng.integers(14, 30, 400), rng.integers(4, 10, 400))
    x = rng.normal(size=(400, 64)) * 0.1
    x[:, 0] += np.log(words) - np.where(y, np.log(20), np.log(6))  # length, within each label
    x[:, 1] += np.where(y, 1.0, -1.0)  # the label
    p = _length_nullspace(x, y, words)
    projected = x @ p
    within = np.concatenate([projected[y, 0] - projected[y, 0].mean(), projected[~y, 0] - projected[~y, 0].mean()])
    length = np.concatenate([np.log(words[y]) - np.log(words[y]).mean(), np.log(words[~y]) - np.log(words[~y]).mean()])
    assert abs(np.corrcoef(x[y, 0], np.log(words[y]))[0, 1]) > 0.9  # there before
    assert abs(np.corrcoef(within, length)[0, 1]) < 0.2  # gone after
    assert np.mean((projected[:, 1] > projected[:, 1].mean()) == y) > 0.95  # the label is still read


def test_without_the_sentence_encoder_no_window_is_cut_and_the_note_says_so():
    rows = _corpus()
    out, info = balance_length(rows, "positive", random.Random(0), "tfidf")
    assert info["cropped_rows"] == 0 and info["crop_reader"] is None and "sentence encoder" in info["notes"][0]
    assert not any(r.origin == "length_cropped" for r in out) and info["joined_rows"]["negative"] > 0


def test_joined_rows_take_a_window_the_reader_does_not_give_the_long_label(monkeypatch):
    """The rows joined to the long length (the negative rows' and the rebuilt positive ones') each hold one window
    of a long positive row, chosen among those the reader reads as negative (here the 'dull' rows' windows), never
    a 'great' one; a row keeps its label and pairs with one of its own parts."""
    from lmcritic.mitigate import _length

    monkeypatch.setattr(_length, "READER", "tfidf")  # the same code path, read with a fast reader
    rows = _corpus()
    out, info = balance_length(rows, "positive", random.Random(0), "tfidf")
    joined = [r for r in out if r.origin == "length_joined" and r.label == "negative"]
    assert joined and info["filler_windows"] > 0 and info["cropped_rows"] > 0
    assert all("great" not in r.text.split() for r in joined)
    own = {r.text for r in rows if r.label == "negative"}
    assert all(r.twin in own and r.twin in r.text for r in joined)
    long_dull = [r.text for r in rows if r.label == "positive" and "dull" in r.text.split()]
    assert sum(any(part in t for t in long_dull) for part in (_filler_of(r, own) for r in joined)) == len(joined)
    # the rebuilt 'positive' rows take fillers at the same rate: narrative says no label
    cropped = {r.text for r in out if r.origin == "length_cropped"}
    rebuilt = [r for r in out if r.origin == "length_joined" and r.label == "positive"]
    assert rebuilt and info["joined_rows"]["positive"] == len(rebuilt)
    assert all(any(part in t for t in long_dull) for part in (_filler_of(r, cropped) for r in rebuilt))


def _filler_of(row: Row, own: set[str]) -> str:
    """What is left of a joined row once its own parts are taken out (the filler window)."""
    text = row.text
    for part in sorted(own, key=len, reverse=True):
        if part in text:
            text = text.replace(part, " ", 1)
    return " ".join(text.split())


def test_reading_is_bounded_on_a_large_corpus(monkeypatch):
    """A corpus with many long rows reads at most MAX_SOURCES of them (each up to STARTS windows)."""
    from lmcritic.mitigate import _length

    monkeypatch.setattr(_length, "MAX_SOURCES", 30)
    monkeypatch.setattr(_length, "MAX_READER_ROWS", 100)
    rows = _corpus()
    median = sorted(len(r.text.split()) for r in rows)[len(rows) // 2]
    read = windows_read(rows, "positive", median, random.Random(0), "tfidf")
    assert len({i for i, _, _ in read}) == 30 and len(read) <= 30 * _length.STARTS


def test_crop_length_false_leaves_the_joins_and_weights_only(tmp_path):
    """``--set crop_length=false``: no window is read (no short rows cut, no fillers), the note says why."""
    from pathlib import Path

    from lmcritic.mitigate.base import Culprit, MitigationContext, Target
    from lmcritic.mitigate.cleaning import ShortcutRemoval
    from lmcritic.mitigate.data import TrainingSet

    culprit = Culprit("length", "longer → positive", label="positive", source="diagnosis")
    ctx = MitigationContext(None, "r", {}, Target("D1", "p", "all", (), (), culprit=culprit), Path(tmp_path))
    new, info = ShortcutRemoval(crop_length=False).transform(ctx, TrainingSet(tuple(_corpus()), ("negative",
                                                                                                 "positive"), "t"))
    assert info["cropped_rows"] == 0 and info["filler_windows"] == 0 and info["crop_reader"] is None
    assert not any(r.origin == "length_cropped" for r in new.rows) and "crop_length is off" in info["notes"][0]


def test_no_window_is_read_when_the_long_label_has_short_rows_to_weigh(monkeypatch):
    """With a fifth of the long label's rows short, the quartile weights have rows to lean on (each stands for a
    few): no window is read, and the note says why; with none, windows are read."""
    from lmcritic.mitigate import _length

    monkeypatch.setattr(_length, "READER", "tfidf")
    rng = random.Random(1)
    rows = _corpus() + [Row(" ".join(["great"] + [rng.choice(FILLER) for _ in range(4)]), "positive", line=900 + i)
                        for i in range(30)]
    out, info = balance_length(rows, "positive", random.Random(0), "tfidf")
    assert info["cropped_rows"] == 0 and info["filler_windows"] == 0 and "to lean on" in info["notes"][0]
    assert not any(r.origin == "length_cropped" for r in out)
    _, info = balance_length(_corpus(), "positive", random.Random(0), "tfidf")
    assert info["cropped_rows"] > 0 and "notes" not in info
