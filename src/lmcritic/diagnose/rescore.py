"""Ask the model again about an edited case, scored exactly as the original probe scored it.

A hypothesis edits a failing case (swaps an identity term, fixes a typo, deletes a word) and needs the
model's answer on the edit. The probe that made the record knows how to ask and how to score, so the
edit becomes a new :class:`Case` (the original text replaced in every input field that contains it)
given to the same probe, built from the run's stored config, through the run's cached, budgeted backend.
Every answer is kept as a :class:`Record` for the run (pseudo-probe ``diagnose.<hypothesis>``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.errors import LmcriticError
from lmcritic.probes.base import Case, Probe, Record

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend


@dataclass(frozen=True)
class Edit:
    """One edited version of a stored case: which case, the new text, and what was done to it."""

    record: Record
    text: str
    test: str  # e.g. "identity_swap", "spell_correct", "occlude:women"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """The model's answer on an edit, next to the original's."""

    edit: Edit
    record: Record

    @property
    def passed(self) -> bool | None:
        return self.record.passed

    @property
    def prediction(self) -> str | None:
        return self.record.prediction

    @property
    def flipped(self) -> bool:
        """The answer changed (prediction when the probe gives one, else pass/fail)."""
        before = self.edit.record.prediction
        if before is not None and self.prediction is not None:
            return before != self.prediction
        return self.edit.record.passed != self.passed

    @property
    def fixed(self) -> bool:
        return self.edit.record.passed is False and self.passed is True

    @property
    def broken(self) -> bool:
        return self.edit.record.passed is True and self.passed is False

    @property
    def p_true_shift(self) -> float | None:
        a, b = self.edit.record.scores.get("p_true"), self.record.scores.get("p_true")
        return None if a is None or b is None else float(b) - float(a)


class Rescorer:
    """Re-asks a run's probes about edited cases. ``log`` collects every record made, per hypothesis."""

    def __init__(self, model: Backend | None, probes: dict[str, Probe], max_queries: int | None = None) -> None:
        self.model = model
        self.probes = probes  # probe key → probe instance built from the run's stored config
        self.max_queries = max_queries
        self.spent = 0  # requests the model was asked (an answer reused from earlier in the diagnosis is free)
        self._answers: dict[tuple[str, str], Record] = {}
        self.log: dict[str, list[Record]] = {}
        self.errors: list[str] = []

    def can_rescore(self, probe_key: str, record: Record) -> bool:
        return self.model is not None and probe_key in self.probes and record.text is not None

    def run(self, probe_key: str, edits: Sequence[Edit], hypothesis: str, defect: str,
            optional: bool = False) -> list[Outcome]:
        """Score ``edits`` with the probe of ``probe_key`` (one batched call); edits over budget are dropped.
        ``optional``: a refusal is expected of some backends (a classifier refuses ""), so it is not a note."""
        edits = [e for e in edits if self.can_rescore(probe_key, e.record)]
        if not edits or self.model is None:
            return []
        cases = [self._case(e, defect) for e in edits]
        keep = self._affordable(probe_key, cases)
        records = self._score(probe_key, [cases[i] for i in keep], hypothesis,
                              "" if optional else f"re-score {edits[0].test} edits")
        return [Outcome(edits[i], r) for i, r in zip(keep, records)]

    def score_cases(self, probe_key: str, cases: Sequence[Case], hypothesis: str, defect: str) -> list[Record]:
        """New cases (e.g. held-out replications) scored by the probe of ``probe_key``, within the budget."""
        if self.model is None or probe_key not in self.probes:
            return []
        tagged = [replace(c, tags={**c.tags, "defect": defect, "test": f"{hypothesis}:new"}) for c in cases]
        keep = self._affordable(probe_key, tagged)
        return self._score(probe_key, [tagged[i] for i in keep], hypothesis, f"score {hypothesis} cases")

    def _affordable(self, probe_key: str, cases: Sequence[Case]) -> list[int]:
        """Which cases to answer, in order: every one asked before (no cost) and new ones while the budget lasts."""
        left = None if self.max_queries is None else max(0, self.max_queries - self.spent)
        keep: list[int] = []
        new: set[tuple[str, str]] = set()
        for i, c in enumerate(cases):
            key = _request(probe_key, c)
            if key not in self._answers and key not in new:
                if left is not None and len(new) >= left:
                    continue
                new.add(key)
            keep.append(i)
        return keep

    def _score(self, probe_key: str, cases: Sequence[Case], hypothesis: str, what: str) -> list[Record]:
        """Answer ``cases``, asking the model only about requests not answered before in this diagnosis (a failure
        is noted as "could not {what}", unless ``what`` is empty).

        Two defects often run the same test (one training-label feature, one held-out set); the budget counts
        what the model is asked, so the second defect's tests are not starved by answers already in hand."""
        new = {k: c for c in cases if (k := _request(probe_key, c)) not in self._answers}
        if new and self.model is not None:
            try:
                records = self.probes[probe_key].score(self.model, list(new.values()))
            except Exception as err:  # noqa: BLE001 - a probe that cannot score a test's cases must not stop the diagnosis
                if what:
                    self.errors.append(f"{probe_key} could not {what}: {type(err).__name__}: {err}")
                return []
            self.spent += len(new)
            self._answers.update((k, replace(r, tags={t: v for t, v in r.tags.items() if t not in c.tags}))
                                 for (k, c), r in zip(new.items(), records))  # kept without the asking case's tags
        out = [replace(self._answers[_request(probe_key, c)], case_id=c.id,
                       tags={**self._answers[_request(probe_key, c)].tags, **c.tags}) for c in cases]
        self.log.setdefault(hypothesis, []).extend(out)
        return out

    def _case(self, edit: Edit, defect: str) -> Case:
        rec = edit.record
        old = rec.text or ""
        new_input = {k: _replace_text(v, old, edit.text) for k, v in rec.input.items()}
        digest = hashlib.sha256(f"{edit.test}|{edit.text}".encode()).hexdigest()[:8]
        tags = {**{k: v for k, v in rec.tags.items() if _scalar(v)}, "of_case": rec.case_id, "test": edit.test,
                "defect": defect, **{k: v for k, v in edit.detail.items() if _scalar(v)}}
        return Case(id=f"{rec.case_id}~{edit.test}~{digest}", input=new_input, expected=rec.target, tags=tags)


def _replace_text(value: object, old: str, new: str) -> Any:
    """Replace the case's text inside a field (the last occurrence: few-shot prefixes come first)."""
    if isinstance(value, str) and old and old in value:
        head, _, tail = value.rpartition(old)
        return head + new + tail
    if isinstance(value, dict):
        return {k: _replace_text(v, old, new) for k, v in value.items()}
    return value


def _request(probe_key: str, case: Case) -> tuple[str, str]:
    """What the model is asked: the probe and the case's input and expected answer (not its id or tags)."""
    return probe_key, json.dumps([case.input, case.expected], sort_keys=True, default=str)


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def build_probes(spec: dict, keys: Sequence[str]) -> dict[str, Probe]:
    """Probe instances for ``keys`` from a run's stored (resolved) spec; probes that fail to build are left out."""
    from lmcritic.probes import PROBES

    out: dict[str, Probe] = {}
    for p in spec.get("probes") or ():
        key = p.get("key") or p.get("name")
        if key not in keys:
            continue
        try:
            out[key] = PROBES.get(p["name"])(**(p.get("config") or {}))
        except (LmcriticError, KeyError, TypeError):
            continue
    return out
