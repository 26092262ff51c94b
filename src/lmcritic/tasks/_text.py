"""Scoring free text: greedy generation against reference answers, and perplexity of texts.

Short answers get SQuAD's exact match and token F1, each the best over the row's references; other
generation metrics (BLEU, chrF, ROUGE, MiniLM similarity) are computed against the reference that
matches the prediction best. Perplexity follows lm-eval's ``loglikelihood_rolling`` task: word count
``len(re.split(r"\\s+", text))``, bytes in UTF-8.
"""
from __future__ import annotations

import math
import re
from typing import Sequence

from lmcritic.backends.base import Backend
from lmcritic.metrics.classification import normalize_answer, token_f1_one
from lmcritic.probes.base import Case, ExplainTarget, Record
from lmcritic.requests import GenerateRequest, GenParams, RollingRequest
from lmcritic.tasks.spec import TaskSpec

LN2 = math.log(2)


def score_generate(task: TaskSpec, model: Backend, cases: Sequence[Case]) -> list[Record]:
    params = GenParams(max_new_tokens=task.generation.max_new_tokens, stop=task.generation.stop)
    res = model.generate([GenerateRequest(prompt=c.input["prompt"], params=params) for c in cases])
    return [generate_record(task, c, r) for c, r in zip(cases, res)]


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Text up to the first stop sequence (a backend may return it; we never score past it)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


def best_reference(prediction: str, refs: Sequence[str]) -> tuple[int, float, float]:
    """(index, exact match, token F1) of the reference that matches best, exact match first."""
    scored = [(float(normalize_answer(prediction) == normalize_answer(r)), token_f1_one(prediction, r), -i)
              for i, r in enumerate(refs)]
    em, f1, neg_i = max(scored)
    return -neg_i, em, f1


def generate_record(task: TaskSpec, case: Case, result) -> Record:
    raw = cut_at_stop(result.text, task.generation.stop)
    pred = raw.strip()
    refs = case.input["references"]
    best, em, f1 = best_reference(pred, refs)
    explain = ExplainTarget(case.input["prompt"], task.target_delimiter + refs[best],
                            raw if em < 1 and raw.strip() else None)
    return Record(
        case_id=case.id, input=case.input,
        output={"raw": result.text, "reference": refs[best], "finish_reason": result.finish_reason,
                "n_new_tokens": result.n_new_tokens},
        scores={"exact_match": em, "token_f1": f1}, tags=dict(case.tags), passed=em == 1.0,
        text=case.input["prompt"], target=case.expected, prediction=pred, explain=explain)


def score_rolling(task: TaskSpec, model: Backend, cases: Sequence[Case]) -> list[Record]:
    reqs = [RollingRequest(c.input["text"], task.rolling.window, task.rolling.stride) for c in cases]
    return [rolling_record(c, r) for c, r in zip(cases, model.rolling_logprobs(reqs))]


def rolling_record(case: Case, res) -> Record:
    text = case.input["text"]
    nll = -res.total
    n_bytes, n_words = len(text.encode("utf-8")), len(re.split(r"\s+", text))
    worst = max(range(res.n_tokens), key=lambda i: -res.logprobs[i]) if res.n_tokens else None
    explain = None
    if worst is not None:
        start, end = res.offsets[worst]
        explain = ExplainTarget(text[:start], text[start:end], span=text)
    return Record(
        case_id=case.id, input=case.input, text=text, explain=explain,
        output={"tokens": list(res.tokens), "logprobs": [round(x, 5) for x in res.logprobs],
                "offsets": [list(o) for o in res.offsets], "worst_token": worst},
        scores={"nll": nll, "n_tokens": float(res.n_tokens), "n_words": float(n_words), "n_bytes": float(n_bytes),
                "token_perplexity": math.exp(nll / max(res.n_tokens, 1)), "bits_per_byte": nll / n_bytes / LN2},
        tags=dict(case.tags))
