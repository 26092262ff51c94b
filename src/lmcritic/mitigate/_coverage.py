"""Whether a corpus fix can reach the failing cases at all: the words they hold that no training row has."""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from lmcritic import stats
from lmcritic.mitigate.base import MitigationContext
from lmcritic.mitigate.data import Row


def unseen_words(ctx: MitigationContext, rows: Sequence[Row], recur: int = 3) -> dict[str, Any]:
    """Words that recur in the failing cases (in ``recur`` or more) and that no training row has, augmented or not;
    and the failure rate of the probe's cases holding one of them against the rest.

    A register the corpus never shows (slang whose sentiment words it lacks) cannot be taught by rewriting the
    corpus: when cases with such words fail significantly more often, the fix needs labelled in-domain rows, and
    the mitigation says so rather than fine-tune in hope."""
    from lmcritic.diagnose import _text

    vocab = {w for r in rows for w in _text.lower_words(r.text)}
    recs = list(ctx.store.records(ctx.run_id, ctx.target.probe))
    words = {r.case_id: {w for w in _text.lower_words(r.text or "") if w.isalpha() and len(w) > 2} - vocab
             for r in recs}
    failing = set(ctx.target.failing)
    counts = Counter(w for r in recs if r.case_id in failing for w in words[r.case_id])
    unseen = {w for w, k in counts.items() if k >= recur}
    if not unseen:
        return {}
    has = [bool(words[r.case_id] & unseen) for r in recs]
    with_ = stats.proportion([r.passed is False for r, h in zip(recs, has) if h])
    without = stats.proportion([r.passed is False for r, h in zip(recs, has) if not h])
    top = [w for w, _ in counts.most_common() if w in unseen][:8]
    held = [h for r, h in zip(recs, has) if r.case_id in failing]
    fail_more = bool(with_.n and without.n and with_.ci_low > without.ci_high)
    out: dict[str, Any] = {"unseen_words": top, "failure_with_unseen": with_.value,
                           "failure_without_unseen": without.value, "unseen_fail_more": fail_more,
                           "failures_holding_unseen": sum(held) / max(1, len(held))}
    if fail_more:
        out["notes"] = [f"cases holding words no training row has, augmented or not ({', '.join(top)}), fail "
                        f"{with_} vs {without} for the rest: rewriting the corpus cannot teach them; add labelled "
                        "in-domain rows (--set in_domain=PATH)"]
    return out


def out_of_reach(found: dict[str, Any]) -> bool:
    """The failing cases hold words no training row has, fail significantly more for it, and make up most of the
    defect's failures: a fine-tune on this corpus cannot reach the defect."""
    return bool(found.get("unseen_fail_more")) and found.get("failures_holding_unseen", 0.0) >= 0.5


__all__ = ["out_of_reach", "unseen_words"]
