"""Fragility: meaning-preserving changes of the surface flip the answer.

Tests: (1) repair — failing cases with typos are spell-corrected (symspell) and re-scored: a failure the
correction fixes was caused by surface noise; (2) perturbation — each failing case and passing control
gets a few meaning-preserving perturbations (``lmcritic.perturb`` when registered: typos, character edits,
punctuation, casing; a built-in typo/casing/punctuation set otherwise) and the flip rate is measured.
"""
from __future__ import annotations

import random
from typing import Callable

from lmcritic.diagnose import _text
from lmcritic.diagnose.hypotheses.base import CauseVerdict, DefectContext, Evidence, Hypothesis, rate
from lmcritic.diagnose.rescore import Edit

PREFERRED = ("typo", "char", "punctuation", "contraction", "case", "whitespace")
PER_CASE = 3


class Fragility(Hypothesis):
    name = "fragility"
    title = "fragility"
    needs = frozenset({"rescore"})
    mitigation = ("adversarial/perturbation training (typos, paraphrases), input normalisation (spell-"
                  "correction) before the model; re-verify with the robustness probes")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        failing = ctx.failing()
        evidence: list[Evidence] = []
        repair, n1 = self._repair(ctx, failing, evidence)
        flips, n2 = self._perturb(ctx, failing, evidence)
        typo_share = rate([bool(_text.typos(r.text or "")) for r in failing])
        evidence.insert(0, Evidence("statistic", f"typos occur in {typo_share} of failing cases", typo_share))
        repair_part = typo_share.value * repair.value if repair and repair.n else 0.0
        strength = max(repair_part, flips.value if flips and flips.n else 0.0)
        supported = (repair is not None and repair.ci_low > 0.15 and typo_share.value >= 0.25) or \
                    (flips is not None and flips.ci_low > 0.15)
        refuted = (flips is not None and flips.n >= 8 and flips.ci_high < 0.15) and not supported
        parts = []
        if repair is not None:
            parts.append(f"spell-correction fixes {repair} of failures with typos")
        if flips is not None:
            parts.append(f"meaning-preserving perturbations flip {flips} of cases")
        return self.verdict(supported, refuted, strength, "; ".join(parts) or "nothing to perturb", evidence,
                            n1 + n2)

    def _repair(self, ctx: DefectContext, failing, evidence) -> tuple:
        edits = []
        for r in failing:
            text = r.text or ""
            fixed = _text.spell_correct(text) if _text.typos(text) else text
            if fixed != text:
                edits.append(Edit(r, fixed, "spell_correct"))
        if not edits:
            return None, 0
        outs = ctx.rescore(edits, self.name)
        fix = rate([o.fixed for o in outs])
        evidence.append(Evidence("test", f"spell-correcting the failing cases fixes {fix}", fix,
                                 case_ids=tuple(o.edit.record.case_id for o in outs if o.fixed)[:10],
                                 data={"examples": [{"case": o.edit.record.case_id, "edited": o.edit.text}
                                                    for o in outs if o.fixed][:3]}))
        return (fix if outs else None), len(outs)

    def _perturb(self, ctx: DefectContext, failing, evidence) -> tuple:
        perturbers = _perturbers()
        rng = random.Random(ctx.seed)
        edits = []
        for r in [*failing, *ctx.controls()]:
            text = r.text or ""
            for name, fn in rng.sample(perturbers, min(PER_CASE, len(perturbers))):
                out = fn(text, rng)
                if out and out != text:
                    edits.append(Edit(r, out, f"perturb:{name}", {"perturbation": name}))
        outs = ctx.rescore(edits, self.name)
        if not outs:
            return None, 0
        by_case: dict[str, bool] = {}
        for o in outs:
            by_case[o.edit.record.case_id] = by_case.get(o.edit.record.case_id, False) or o.flipped
        flips = rate(list(by_case.values()))
        fails = [o for o in outs if o.edit.record.passed is False]
        evidence.append(Evidence("test", f"a meaning-preserving perturbation flips the answer on {flips} of cases "
                                 f"({sum(o.fixed for o in fails)} of {len(fails)} perturbed failures become correct)",
                                 flips, case_ids=tuple(c for c, f in by_case.items() if f)[:10],
                                 data={"perturbations": sorted({n for n, _ in perturbers})}))
        return flips, len(outs)


def _perturbers() -> list[tuple[str, Callable[[str, random.Random], str | None]]]:
    """The perturbation area's label-preserving perturbations when registered, else built-ins."""
    try:
        from lmcritic.perturb import PERTURBATIONS

        found = []
        for name in PERTURBATIONS.names():
            cls = PERTURBATIONS.get(name)
            if getattr(cls, "preserves_label", False) and any(p in name for p in PREFERRED):
                found.append((name, _wrap(cls())))
        if found:
            return found
    except Exception:  # noqa: BLE001 - a registry still being filled in must not stop a diagnosis
        pass
    return [("typo", _typo), ("casing", _casing), ("punctuation", _punct)]


def _wrap(perturbation) -> Callable[[str, random.Random], str | None]:
    def run(text: str, rng: random.Random) -> str | None:
        out = perturbation(text, rng)
        return out[0] if out else None

    return run


def _typo(text: str, rng: random.Random) -> str | None:
    """Swap two adjacent inner letters of one longer word (a realistic keyboard slip)."""
    ws = [w for w in _text.words(text) if len(w) >= 4 and w.isalpha()]
    if not ws:
        return None
    w = rng.choice(ws)
    i = rng.randrange(1, len(w) - 2)
    typo = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    return text.replace(w, typo, 1) if typo != w else None


def _casing(text: str, rng: random.Random) -> str | None:
    out = text.capitalize() if text[:1].islower() else text[:1].lower() + text[1:]
    return out if out != text else None


def _punct(text: str, rng: random.Random) -> str | None:
    stripped = text.rstrip(" .!")
    return stripped if stripped != text else text.rstrip() + " ."
