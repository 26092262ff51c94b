"""Whether a corpus fix can reach the failing cases at all: the words they hold that no training row has."""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from lmcritic import stats
from lmcritic.mitigate.base import MitigationContext
from lmcritic.mitigate.data import Row


def unseen_words(ctx: MitigationContext, rows: Sequence[Row]) -> dict[str, Any]:
    """Words of the failing cases that no training row has, augmented or not, against the passing cases' rate.

    A register the corpus never shows (slang whose sentiment words it lacks) cannot be taught by rewriting the
    corpus: when failing cases carry such words much more often than passing ones, the fix needs labelled
    in-domain rows, and the mitigation says so rather than fine-tune in hope."""
    from lmcritic.diagnose import _text

    vocab = {w for r in rows for w in _text.lower_words(r.text)}
    recs = ctx.store.records(ctx.run_id, ctx.target.probe)
    failing, in_slice = set(ctx.target.failing), set(ctx.target.case_ids)
    new: dict[bool, list[set[str]]] = {True: [], False: []}
    for r in recs:
        if r.case_id in in_slice or r.passed:
            words = {w for w in _text.lower_words(r.text or "") if w.isalpha() and len(w) > 2}
            new[r.case_id in failing].append(words - vocab)
    if not new[True] or not new[False]:
        return {}
    fail_rate = stats.proportion([bool(w) for w in new[True]])
    pass_rate = stats.proportion([bool(w) for w in new[False]])
    top = [w for w, _ in Counter(w for ws in new[True] for w in ws).most_common(8)]
    out: dict[str, Any] = {"unseen_words": top, "failing_with_unseen": fail_rate.value,
                           "passing_with_unseen": pass_rate.value}
    if fail_rate.ci_low > pass_rate.ci_high:
        out["notes"] = [f"{fail_rate} of the failing cases hold words no training row has, augmented or not "
                        f"({', '.join(top)}), vs {pass_rate} of passing cases: rewriting the corpus cannot teach "
                        "them; add labelled in-domain rows (--set in_domain=PATH)"]
    return out


__all__ = ["unseen_words"]
