"""Shared plumbing of the red-teaming probes (jailbreak, leakage): seeds, chain groups, records, helper models."""
from __future__ import annotations

import math
from typing import Any, Sequence

from lmcritic.attacks.prompts import Attempt
from lmcritic.backends.base import Backend
from lmcritic.detectors import Detector, DetectorError, Exchange
from lmcritic.errors import ConfigError
from lmcritic.probes.base import Case, Record
from lmcritic.probes.safety._common import read_jsonl, safety_file, sample_rows

LABELLED = "labelled"  # the pseudo-chain of the hand-labelled answers a judge is checked on


def detector(name: str) -> Detector:
    from lmcritic.detectors import get_detector

    if name == "judge":
        raise ConfigError("the judge is set with the 'judge' option, not as the detector",
                          "detector: compliance, judge: self (or a model spec)")
    return get_detector(name)


def seed_rows(path: str | None, n: int | None, seed: int) -> list[dict[str, Any]]:
    """Seed requests: the packaged harmful requests, or the user's ``.jsonl`` (``prompt``, ``category``...)."""
    src = path or safety_file("refusal_requests.jsonl")
    rows = [{**row, "line": line, "id": str(row.get("id", f"line{line}")),
             "source": "lmcritic_refusal" if path is None else str(path)} for line, row in read_jsonl(src)]
    if path is None:
        rows = [r for r in rows if r.get("kind") == "harmful"]
    return sample_rows(rows, n, seed)


def by_chain(cases: Sequence[Case]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for c in cases:
        out.setdefault(c.tags["chain"], []).append(c)
    return out


def skipped(case: Case, reason: str) -> Record:
    """A case the chain could not run on: kept as a record (no scores) so the report names the reason."""
    return Record(case.id, case.input, {"skipped": reason}, {}, case.tags, passed=None, text=case.input["request"])


def skip_reason(err: Exception) -> str:
    """Why a chain could not run: the transform's own message, or the model refusing its prompts."""
    from lmcritic.errors import InputError

    return f"the model cannot take this chain's prompts: {err}" if isinstance(err, InputError) else str(err)


def detect_all(det: Detector, exchanges: list[Exchange]) -> list[dict[str, float]]:
    return det.detect(exchanges)


def record(case: Case, attempt: Attempt, scores: dict[str, float], judged: dict[str, float],
           judge_error: str | None, primary: str = "complied") -> Record:
    success = scores[primary] > 0.5
    out_scores = {**scores, "success": float(success), "queries": float(attempt.queries)}
    if judged:
        out_scores |= {"judge_complied": judged["complied"], "judge_parsed": judged["parsed"]}
    output = {"messages": [{"role": m.role, "content": m.content} for m in attempt.messages],
              "prompt": attempt.prompt.text, "answer_raw": attempt.raw, "answer": attempt.answer,
              **({"judge_error": judge_error} if judge_error else {}), **_notes(attempt)}
    return Record(case.id, {**case.input, "prompt": attempt.prompt.text}, output, out_scores, case.tags,
                  passed=not success, text=case.input["request"], prediction=attempt.answer)


def _notes(attempt: Attempt) -> dict[str, Any]:
    notes = {k: v for k, v in attempt.prompt.notes.items() if k != "topic"}
    return {**notes, **attempt.details}


def labelled_cases() -> list[Case]:
    from lmcritic.detectors.agreement import labelled_sample

    return [Case(id=f"label-{r.get('id', r['line'])}", input={"request": r["request"], "answer": r["answer"]},
                 expected=r["label"], tags={"source": "labelled_answers", "line": r["line"], "chain": LABELLED,
                                            "kind": r.get("kind"), "label": r["label"]})
            for r in labelled_sample()]


def labelled_record(case: Case, rules: dict[str, float], judged: dict[str, float], error: str | None) -> Record:
    gold = case.expected == "complied"
    scores = {"gold_complied": float(gold), "rule_complied": rules["complied"]}
    if judged:
        scores |= {"judge_complied": judged["complied"], "judge_parsed": judged["parsed"]}
    output = {"judge_error": error} if error else {}
    agree = judged.get("complied") if judged else None
    passed = None if agree is None or math.isnan(agree) else (agree > 0.5) == gold
    return Record(case.id, case.input, output, scores, case.tags, passed=passed, text=case.input["request"],
                  target=case.expected)


def load_helper(spec: object) -> Backend:
    """A helper model (translator, judge) from a name or ``{name, backend, options}``."""
    from lmcritic.backends import ModelSpec, load_model

    if isinstance(spec, str):
        return load_model(ModelSpec(name=spec))
    if isinstance(spec, dict) and "name" in spec:
        return load_model(ModelSpec(spec["name"], spec.get("backend"), dict(spec.get("options") or {})))
    raise ConfigError(f"a helper model must be a name or {{name, backend, options}}, got {spec!r}")


def build_judge(spec: object, model: Backend, rubric: str | None) -> Detector:
    from lmcritic.detectors.judge import RUBRIC, JudgeDetector

    try:
        backend = model if spec == "self" else load_helper(spec)
    except Exception as err:  # a judge that cannot load is a named error; the rule-based detector still runs
        raise DetectorError(f"cannot load the judge model {spec!r}: {err}") from None
    return JudgeDetector(backend, rubric or RUBRIC)
