"""Explain one stored case (a :class:`Record` from any probe), and for pairs both sides and the difference.

The target comes from ``Record.explain``; ``Record.explain_variant`` marks a pair (attack, counterfactual
swap). The target's ``span`` (the case's own text inside the context) is what faithfulness edits: the prompt
template stays.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.errors import InputError
from lmcritic.interpret.types import Explanation, Faithfulness, Target
from lmcritic.probes.base import Record

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend


@dataclass(frozen=True)
class SideExplanation:
    """One input (a case, or one side of a pair) explained by several methods."""

    target: Target
    explanations: tuple[Explanation, ...]
    faithfulness: tuple[Faithfulness, ...] = ()
    spurious: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> spurious_share output
    agreement: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it could not run


@dataclass(frozen=True)
class CaseExplanation:
    probe_key: str
    case_id: str
    original: SideExplanation
    variant: SideExplanation | None = None
    difference: dict[str, Any] | None = None  # pairs: how the attributions moved between the sides


def targets_of(record: Record) -> tuple[Target, Target | None]:
    """The record's explanation target and, for pairs, the variant's."""
    if record.explain is None:
        raise InputError(f"case {record.case_id!r} has no explanation target",
                         "its probe must set Record.explain (context, target, foil)")
    variant = record.explain_variant
    return Target.from_explain(record.explain), Target.from_explain(variant) if variant is not None else None


def explain_side(model: Backend, target: Target, methods: Sequence[Any], *, faithfulness: bool = True,
                 triggers: Sequence[str] = ()) -> SideExplanation:
    """Run each method that applies (the others are listed as skipped), then faithfulness and agreement."""
    from lmcritic.interpret.faithfulness import ERASER, agreement
    from lmcritic.interpret.spurious import spurious_share

    done, skipped = [], {}
    for m in methods:
        reason = m.not_applicable(model, target)
        if reason:
            skipped[m.name] = reason
            continue
        done.append(m(model, target))
    faith = tuple(ERASER()(model, ex) for ex in done) if faithfulness else ()
    spur = {ex.method: spurious_share(ex, triggers) for ex in done}
    agree = agreement(done[0], done[1]) if len(done) >= 2 else {}
    return SideExplanation(target, tuple(done), faith, spur, agree, skipped)


def explain_record(model: Backend, record: Record, methods: Sequence[Any], *, probe_key: str = "",
                   faithfulness: bool = True, triggers: Sequence[str] = ()) -> CaseExplanation:
    """Explain a stored case; a pair gets both sides and their difference."""
    main, other = targets_of(record)
    first = explain_side(model, main, methods, faithfulness=faithfulness, triggers=triggers)
    if other is None:
        return CaseExplanation(probe_key, record.case_id, first)
    second = explain_side(model, other, methods, faithfulness=faithfulness, triggers=triggers)
    return CaseExplanation(probe_key, record.case_id, first, second, pair_difference(first, second))


def pair_difference(a: SideExplanation, b: SideExplanation) -> dict[str, Any]:
    """Per method: the explained score on each side, the words that changed with their scores, and how
    much attribution mass sits on the changed words (the edit an attack or swap made)."""
    out: dict[str, Any] = {}
    for ea in a.explanations:
        eb = next((e for e in b.explanations if e.method == ea.method), None)
        if eb is not None:
            out[ea.method] = _diff(ea, eb)
    return out


def _diff(a: Explanation, b: Explanation) -> dict[str, Any]:
    ia, ib = a.in_span(), b.in_span()
    wa, wb = [a.words[i] for i in ia], [b.words[i] for i in ib]
    changed, mass_a, mass_b = [], 0.0, 0.0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        sa = [a.word_scores[ia[i]] for i in range(i1, i2)]
        sb = [b.word_scores[ib[j]] for j in range(j1, j2)]
        mass_a, mass_b = mass_a + sum(abs(x) for x in sa), mass_b + sum(abs(x) for x in sb)
        changed.append({"original": " ".join(wa[i1:i2]), "variant": " ".join(wb[j1:j2]),
                        "score_original": sum(sa), "score_variant": sum(sb)})
    tot_a = sum(abs(a.word_scores[i]) for i in ia) or 1.0
    tot_b = sum(abs(b.word_scores[i]) for i in ib) or 1.0
    return {"score_original": a.score, "score_variant": b.score, "changed": changed,
            "changed_mass_original": mass_a / tot_a, "changed_mass_variant": mass_b / tot_b}
