"""The interventional test fragility and generalization mismatch share: rewrite the failing cases' text (spell-
correction, a formal register), re-score, and compare case by case with a neutral edit of the same cases (casing
or final punctuation), since failures near the decision boundary flip under any edit."""
from __future__ import annotations

import random
from typing import Callable, Sequence

from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses.base import DefectContext, Evidence, PairedFixes, paired_fixes
from lmcritic.diagnose.rescore import Edit
from lmcritic.probes.base import Estimate, Record

MIN_PAIRS = 3


def rewrite_test(ctx: DefectContext, records: Sequence[Record], rewrite: Callable[[str], str | None], edit: str,
                 hypothesis: str, describe: Callable[[PairedFixes], str], evidence: list[Evidence],
                 examples: int = 0) -> tuple[Estimate | None, float | None, int, float | None]:
    """Rewrite each record's text (None: leave the case out), pair it with a neutral edit, re-score both.

    Args:
        rewrite: the cause's repair of a text.
        edit: the name the rewritten cases are stored under.
        describe: the evidence line, from the paired result.
        evidence: appended to (one "test" item) when enough pairs were scored.
        examples: how many fixed cases to show with their rewritten text (0: none).

    Returns:
        (fix rate of the rewrite − of the neutral edit, its p-value, model calls made, the smallest p McNemar
        could give on these pairs); the first two are None under :data:`MIN_PAIRS` pairs.
    """
    rng = random.Random(ctx.seed)
    edits, neutral = [], []
    for r in records:
        text = input_text(r) or ""
        new = rewrite(text)
        other = neutral_edit(text, rng)
        if new is not None and new != text and other:
            edits.append(Edit(r, new, edit))
            neutral.append(Edit(r, other, "neutral_edit"))
    t = paired_fixes(ctx, edits, neutral, hypothesis, min_pairs=MIN_PAIRS)
    if t.effect is None:
        return None, None, t.scored, None
    fixed = [o for o in t.edited if o.fixed]
    data = {"examples": [{"case": o.edit.record.case_id, "edited": o.edit.text} for o in fixed][:examples]}
    evidence.append(Evidence("test", describe(t), t.effect, t.p_value, tuple(o.edit.record.case_id for o in fixed)[:10],
                             data=data if examples else {}))
    return t.effect, t.p_value, t.scored, t.min_p


def neutral_edit(text: str, rng: random.Random) -> str | None:
    """Casing or final punctuation changed: an edit that should not matter and does not repair typos."""
    for fn in (casing, punctuation) if rng.random() < 0.5 else (punctuation, casing):
        out = fn(text, rng)
        if out and out != text:
            return out
    return None


def casing(text: str, rng: random.Random) -> str | None:
    out = text.capitalize() if text[:1].islower() else text[:1].lower() + text[1:]
    return out if out != text else None


def punctuation(text: str, rng: random.Random) -> str | None:
    stripped = text.rstrip(" .!")
    return stripped if stripped != text else text.rstrip() + " ."
