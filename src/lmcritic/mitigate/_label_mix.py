"""Repair of consistent label noise on a phenomenon (the diagnosis's label-mix culprit, see
:mod:`lmcritic.diagnose.hypotheses._label_mix`): the phenomenon's training labels lean to one label far more than
the evaluated gold labels of the phenomenon do.

The target mix: for a plain word, what the word's own rows read as — a reader fitted on the rows without the word
labels each of them with the word masked, and the labels are counted (classify and count). The evaluated gold mix
is right only for an evaluation sampled like the corpus; one chosen to hold the word under both labels in equal
parts (a challenge set) is not, and repairing to it over-corrects: on the planted MiniLM word-noise corpora (seeds
0, 1, 5, 6, 10, 11) the word's true positive share was 0.51, 0.22, 0.21, 0.25, 0.57, 0.56, the reading gave 0.54,
0.29, 0.30, 0.32, 0.52, 0.60 and the balanced evaluation 0.50 each time (benchmarks/planted/content_mix.py). The
reading needs sentence embeddings: with TF-IDF features it read 0.59-0.80 (mean error 0.285, worse than 0.50's
0.162), so without MiniLM the evaluated mix stays the target. For a grammatical phenomenon (negation,
contrast) the phenomenon is part of the content and cannot be masked — a reader fitted without negated rows misreads
them (0.27-0.37 read vs 0.37 gold on the directed plant) — so the evaluated gold shares (never its texts) are the
target.

Two steps:

1. Relabel. A learner cross-fitted on the corpus with label-shift weights — the phenomenon's rows weighed so their
   label mix is the target — reads each of the phenomenon's rows of the over-represented label out of fold; rows
   it gives another label with probability above one half get that label, at most as many as the mix is in excess.
   Unweighted, the learner would have learned the heuristic and vouch for it (why confident learning misses
   consistent noise); weighted, the correctly labelled minority outweighs the relabelled rows where they conflict.
2. Reweigh. The phenomenon's rows, after step 1, are weighed to the target mix (importance weights within
   [1/max_weight, max_weight]), so what step 1 left wrong is outweighed too.

On the planted MiniLM classifiers (benchmarks/planted, directed plant): the weighted learner's relabelled rows
were right 59-78% of the time and found 47-83% of the relabelled ones.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from lmcritic.errors import ConfigError
from lmcritic.mitigate.data import Row, TrainingSet


def repair_mix(data: TrainingSet, mix: dict[str, Any] | None, has: Callable[[str], bool] | None, max_weight: float,
               features: str, folds: int, word: str | None = None) -> tuple[TrainingSet, dict[str, Any]]:
    """Relabel, then reweigh, the rows ``has`` picks: the culprit's phenomenon (``word`` when it is a plain word; see
    the module docstring); returns the rows and a summary."""
    if not mix:
        raise ConfigError("action=reweigh needs a label-noise culprit that is a label mix (consistent noise)",
                          "use --set action=drop or action=relabel")
    if has is None:
        raise ConfigError(f"unknown phenomenon {mix['phenomenon']!r} in the diagnosis", "re-run lmcritic diagnose")
    left_out = tuple(mix.get("left_out") or ())
    has = without_cues(has, left_out)
    evaluated = {str(k): float(v) for k, v in mix["evaluated"].items()}
    read = content_mix(data.rows, has, word, features) if word and features == READER else None
    target = read or evaluated
    rows, moved = _relabel(list(data.rows), has, target, max_weight, features, folds)
    rows, weights, before = _reweigh(rows, has, target, max_weight)
    return data.with_rows(rows), {"action": "reweigh", "phenomenon": mix["phenomenon"], "rows": sum(before.values()),
                                  "left_out": list(left_out),
                                  "relabelled": dict(moved), "train_mix": _shares(before), "target_mix": target,
                                  "target_from": "content" if read else "evaluated", "evaluated_mix": evaluated,
                                  "weights": weights, "notes": _target_note(mix["phenomenon"], read, evaluated)}


def culprit_word(culprit: Any) -> str | None:
    """The plain word a label-noise culprit names (None for a grammatical phenomenon or anything else)."""
    from lmcritic.diagnose.hypotheses._phenomena import Phenomenon
    from lmcritic.mitigate.cleaning import named_word

    ph = Phenomenon.from_data(culprit.data.get("phenomenon")) if culprit is not None else None
    if ph is not None:
        return ph.word
    return named_word(str(getattr(culprit, "value", "")))  # older diagnoses


MIN_READ = 20  # rows on each side of a content reading (the word's rows, the reader's training rows)
READER = "minilm"  # the features a reading is trusted with: on the word-noise corpora sentence embeddings
# read the true mix to 0.058 mean absolute error, TF-IDF to 0.285 (worse than a balanced evaluation's 0.162)


def content_mix(rows: Sequence[Row], has: Callable[[str], bool], word: str,
                features: str) -> dict[str, float] | None:
    """The label shares of the word's rows as their content reads: a logistic regression fitted on the rows without
    the word labels each row with the word masked, and its labels are counted. None when either side has fewer
    than :data:`MIN_READ` rows or the rest of the corpus holds one label."""
    from sklearn.linear_model import LogisticRegression

    from lmcritic.diagnose import _text
    from lmcritic.mitigate.cleaning import _features

    pattern = _text.token_pattern([word])
    inside = [r for r in rows if has(r.text)]
    rest = [r for r in rows if not pattern.search(r.text)]  # none of the word's rows, a left-out cue's included
    labels = sorted({str(r.label) for r in rest})
    if len(inside) < MIN_READ or len(rest) < MIN_READ or len(labels) < 2:
        return None
    masked = [_text.without(r.text, pattern) for r in inside]
    x = _features([r.text for r in rest] + masked, features)
    reader = LogisticRegression(max_iter=2000).fit(x[:len(rest)], [str(r.label) for r in rest])
    counts = Counter(str(y) for y in reader.predict(x[len(rest):]))
    return {y: counts.get(y, 0) / len(inside) for y in labels}


NOTE_GAP = 0.10  # a target share this far from the evaluated one is said


def _target_note(phenomenon: str, read: dict[str, float] | None, evaluated: dict[str, float]) -> list[str]:
    """Said when the corpus's own reading and the evaluated gold mix disagree: the evaluation was not sampled like
    the corpus (or the reading is off), and the user should know which one the repair followed."""
    if not read:
        return []
    gap = max(abs(read.get(y, 0.0) - evaluated.get(y, 0.0)) for y in set(read) | set(evaluated))
    if gap < NOTE_GAP:
        return []
    said = lambda m: ", ".join(f"{y} {v:.0%}" for y, v in sorted(m.items()))  # noqa: E731
    return [f"{phenomenon} rows were repaired to the mix their content reads as ({said(read)}), not to the "
            f"evaluated gold mix ({said(evaluated)}): the evaluation's sample of the word is not the corpus's (a "
            "challenge set chosen to hold it under each label is not), and repairing to it would over-correct"]


def without_cues(has: Callable[[str], bool], cues: tuple[str, ...]) -> Callable[[str], bool]:
    """The phenomenon's rows the diagnosis read the mix from: those holding another confirmed shortcut token
    (``left_out``) lean by that token, were not counted, and are not the phenomenon's to relabel or reweigh."""
    if not cues:
        return has
    from lmcritic.diagnose.hypotheses._phenomena import holds_any

    cue = holds_any(cues)
    return lambda text: has(text) and not cue(text)


def _shares(counts: Counter) -> dict[str, float]:
    total = sum(counts.values())
    return {y: n / total for y, n in counts.items()} if total else {}


def _weights(counts: Counter, target: dict[str, float], max_weight: float) -> dict[str, float]:
    share = _shares(counts)
    return {y: min(max_weight, max(1 / max_weight, target.get(y, 0.0) / s)) for y, s in share.items()}


def _reweigh(rows: list[Row], has: Callable[[str], bool], target: dict[str, float],
             max_weight: float) -> tuple[list[Row], dict[str, float], Counter]:
    inside = Counter(str(r.label) for r in rows if has(r.text))
    w = _weights(inside, target, max_weight)
    out = [replace(r, weight=r.weight * w[str(r.label)], origin=f"{r.origin}+label_mix_reweigh") if has(r.text)
           else r for r in rows]
    return out, w, inside


def _relabel(rows: list[Row], has: Callable[[str], bool], target: dict[str, float], max_weight: float,
             features: str, folds: int) -> tuple[list[Row], Counter]:
    """Step 1: the phenomenon's rows of the over-represented label that a label-shift-weighted learner reads as
    another label (out of fold, p > 0.5), most confident first, up to the excess of that label."""
    inside = [i for i, r in enumerate(rows) if has(r.text)]
    counts = Counter(str(rows[i].label) for i in inside)
    if len(counts) < 2 or len(inside) < 20:
        return rows, Counter()
    major = max(counts, key=lambda y: counts[y] / len(inside) - target.get(y, 0.0))
    excess = int(round(counts[major] - target.get(major, 0.0) * len(inside)))
    probs, labels = _weighted_oof(rows, has, _weights(counts, target, max_weight), features, folds)
    other = [(float(1 - probs[i, labels.index(major)]), i) for i in inside if str(rows[i].label) == major]
    picked = sorted(((p, i) for p, i in other if p > 0.5), reverse=True)[:max(0, excess)]
    moved: Counter[str] = Counter()
    for _, i in picked:
        ranked = [labels[j] for j in np.argsort(-probs[i]) if labels[j] != major]
        moved[f"{major}->{ranked[0]}"] += 1
        rows[i] = replace(rows[i], label=ranked[0], origin="label_mix_relabelled")
    return rows, moved


def _weighted_oof(rows: list[Row], has: Callable[[str], bool], w: dict[str, float], features: str,
                  folds: int) -> tuple[np.ndarray, list[str]]:
    """Out-of-fold class probabilities of a logistic regression fitted with the phenomenon's rows reweighed
    (folds grouped by text, as confident learning's: a copy of a relabelled row must not vouch for its label)."""
    from lmcritic.mitigate.cleaning import oof_probs

    labels = sorted({str(r.label) for r in rows})
    sw = np.array([w.get(str(r.label), 1.0) if has(r.text) else 1.0 for r in rows])
    return oof_probs(rows, labels, features, folds, sample_weight=sw), labels
