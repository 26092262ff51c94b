"""What label repair's reader must not see: the corpus's shortcut candidates.

Confident learning trusts a reader's out-of-fold probabilities, and assumes the label errors do not depend on the
text beyond its true label. A backdoor breaks that: poisoned rows carry a trigger ('cf', "I watched this 3D movie")
and the target label, and a reader cross-fitted on the corpus learns the trigger, then vouches for those very
labels. On the topic classifier's 2.4 % multi-word backdoor the unmasked reader flagged 5 rows (3 poisoned of 32),
and the fine-tune that followed, on the 29 left, taught the model the backdoor (failure rate 0.020 -> 0.338). The
reader here reads each row with the candidates the diagnosis would test for a shortcut removed (label-associated
artefact tokens and recurring runs of them, judged against the evaluated texts; identity terms and, for
sentiment, lexicon words are never candidates), so a row is judged on what the rest of its text says; and a
row that carries a candidate of its own label is flagged whenever that reading names another label
(:func:`read_against`): its label rests on the suspected trigger alone. Confident learning's per-label noise-rate
counts had left 3 such rows of the 32 above (read as politics at 0.50, 0.47, 0.76) among the 27 it found. A row
carrying a candidate of another label is an ordinary row ('this', a word of the religion trigger, in a politics
row says nothing of it).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from lmcritic.diagnose import _text
from lmcritic.mitigate.base import MitigationContext
from lmcritic.mitigate.data import Row, TrainingSet


def reader_masks(ctx: MitigationContext, data: TrainingSet) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The corpus's shortcut candidates (token, its label) against the run's evaluated texts, and a description
    for the report."""
    from lmcritic.diagnose.api import artefact_candidates, own_task_records
    from lmcritic.diagnose.corpus import Corpus

    records = own_task_records(ctx.store, ctx.run_id) if ctx.store is not None else []  # None: a bare context
    labelled = [r for r in data.rows if r.label is not None]
    if not records or not labelled:
        return [], {"masked": [], "why": "no evaluated texts of the run's own task, or no labelled rows"}
    corpus = Corpus.of_rows(data.source, [r.line or 0 for r in labelled], [r.text for r in labelled],
                            [str(r.label) for r in labelled])
    found, how = artefact_candidates(corpus, records)
    tokens = list(dict.fromkeys(t for t, _ in found))
    pattern = _text.token_pattern(tokens) if tokens else None
    held = sum(1 for r in labelled if pattern and pattern.search(r.text))
    return found, {"masked": tokens, "judged_by": how, "rows_with_masked": held}


def masked_rows(rows: Sequence[Row], tokens: Sequence[str]) -> list[Row]:
    """``rows`` with every one of ``tokens`` (words, symbol runs, phrases) taken out of the text, never empty."""
    if not tokens:
        return list(rows)
    pattern = _text.token_pattern(tokens)
    return [replace(r, text=_text.without(r.text, pattern)) if pattern.search(r.text) else r for r in rows]


def read_against(rows: Sequence[Row], candidates: Sequence[tuple[str, str]], probs: Any, labels: Sequence[str],
                 among: Sequence[int] | None) -> list[int]:
    """Indices of rows (of ``among``; None: all) that hold a candidate tied to their own label and whose reading
    without the candidates (``probs``, columns in ``labels`` order) names another label, least supported first."""
    patterns = {y: _text.token_pattern([t for t, x in candidates if x == y]) for y in {x for _, x in candidates}}
    pool = range(len(rows)) if among is None else sorted(set(among))
    found = [i for i in pool if (p := patterns.get(str(rows[i].label))) is not None and p.search(rows[i].text)
             and labels[int(probs[i].argmax())] != str(rows[i].label)]
    return sorted(found, key=lambda i: float(probs[i][list(labels).index(str(rows[i].label))]))


__all__ = ["masked_rows", "read_against", "reader_masks"]
