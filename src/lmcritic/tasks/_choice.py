"""Scoring by choice: multiple choice and label-word classification by log-likelihood, classification by a
classifier head. acc / acc_norm / acc_bytes follow lm-eval's ``ConfigurableTask.process_results`` exactly:
``argmax(ll)``, ``argmax(ll / len(choice))`` (characters of the choice text without the delimiter) and
``argmax(ll / len(choice.encode()))`` (UTF-8 bytes), first index on ties; acc_mutual_info is
``argmax(ll(choice|ctx) - ll(choice|""))`` with the delimiter on the choice, as lm-eval."""
from __future__ import annotations

import math
from typing import Any, Sequence

from lmcritic.backends.base import Backend
from lmcritic.probes.base import Case, ExplainTarget, Record
from lmcritic.requests import ClassifyRequest, ClassifyResult, LoglikelihoodRequest
from lmcritic.tasks.spec import TaskSpec


def argmax(values: Sequence[float]) -> int:
    """First index of the maximum (numpy's argmax tie rule, which lm-eval relies on)."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


# -- log-likelihood (multiple choice and label words) --------------------------------------------------
def score_loglikelihood(task: TaskSpec, model: Backend, cases: Sequence[Case]) -> list[Record]:
    """One request per (case, choice); plus unconditional ones when acc_mutual_info is asked for."""
    mutual = "acc_mutual_info" in task.metrics
    reqs = [LoglikelihoodRequest(c.input["prompt"], cont) for c in cases for cont in c.input["continuations"]]
    if mutual:
        reqs += [LoglikelihoodRequest("", cont) for c in cases for cont in c.input["continuations"]]
    res = model.loglikelihood(reqs)
    out, i = [], 0
    uncond_at = len(reqs) // 2
    for c in cases:
        k = len(c.input["continuations"])
        unc = [r.logprob for r in res[uncond_at + i : uncond_at + i + k]] if mutual else None
        out.append(choice_record(task, c, res[i : i + k], unc))
        i += k
    return out


def choice_record(task: TaskSpec, case: Case, results: Sequence[Any], uncond: list[float] | None) -> Record:
    options, gold, conts = case.input["choices"], case.input["gold"], case.input["continuations"]
    lls = [r.logprob for r in results]
    pred = argmax(lls)
    pred_norm = argmax([ll / max(len(o), 1) for ll, o in zip(lls, options)])
    pred_bytes = argmax([ll / max(len(o.encode("utf-8")), 1) for ll, o in zip(lls, options)])
    probs = softmax(lls)
    scores = {"acc": float(pred == gold), "acc_norm": float(pred_norm == gold),
              "acc_bytes": float(pred_bytes == gold), "p_true": probs[gold],
              "confidence": probs[pred], "margin": lls[gold] - max(ll for j, ll in enumerate(lls) if j != gold)}
    output = {"prediction_norm": options[pred_norm], "gold": options[gold],
              "choice_logprobs": lls, "choice_n_tokens": [r.n_tokens for r in results],
              "choice_is_greedy": [r.is_greedy for r in results], "probs": probs,
              "truncated": any(r.truncated for r in results)}
    if uncond is not None:
        pmi = [a - b for a, b in zip(lls, uncond)]
        scores["acc_mutual_info"] = float(argmax(pmi) == gold)
        output["unconditional_logprobs"] = uncond
        output["prediction_mutual_info"] = options[argmax(pmi)]
    rival = pred if pred != gold else argmax([ll if j != gold else -math.inf for j, ll in enumerate(lls)])
    text = case.input.get("text")
    explain = ExplainTarget(case.input["prompt"], conts[gold], conts[rival], span=text)
    return Record(case_id=case.id, input=case.input, output=output, scores=scores,
                  tags={**case.tags, "predicted": options[pred]}, passed=pred == gold,
                  text=case.input["prompt"] if text is None else text, target=case.expected, prediction=options[pred],
                  label_probs=_label_probs(task, options, probs), explain=explain)


def _label_probs(task: TaskSpec, classes: Sequence[str], probs: Sequence[float]) -> dict[str, float] | None:
    """Probabilities over the task's fixed classes; None for multiple choice (its options vary per row)."""
    return dict(zip(classes, probs)) if task.output_type == "classification" else None


# -- classifier head ----------------------------------------------------------------------------------
def score_head(task: TaskSpec, model: Backend, cases: Sequence[Case]) -> list[Record]:
    if cases and cases[0].input.get("text") is None:
        from lmcritic.errors import ConfigError

        raise ConfigError(f"task {task.name!r}: a classifier head needs the raw text, and the prompt uses several "
                          "columns", "add text: COLUMN (or a template) to the task")
    res = model.classify([ClassifyRequest(c.input["text"]) for c in cases])
    return [head_record(task, c, r) for c, r in zip(cases, res)]


def head_record(task: TaskSpec, case: Case, result: ClassifyResult) -> Record:
    classes, gold = case.input["choices"], case.input["gold"]
    mapping = head_mapping(task, result.labels, classes)
    probs = [0.0] * len(classes)
    for label, p in zip(result.labels, result.probs):
        probs[mapping[label]] += p
    pred = argmax(probs)
    gold_labels = [lab for lab in result.labels if mapping[lab] == gold]
    text = case.input["text"]
    explain = ExplainTarget(text, gold_labels[0] if gold_labels else classes[gold], kind="label", span=text)
    others = [p for j, p in enumerate(probs) if j != gold]
    return Record(
        case_id=case.id, input=case.input,
        output={"gold": classes[gold], "probs": probs,
                "model_labels": list(result.labels), "model_probs": list(result.probs),
                "model_classes": [classes[mapping[lab]] for lab in result.labels]},
        scores={"acc": float(pred == gold), "p_true": probs[gold], "confidence": probs[pred],
                "margin": probs[gold] - max(others)},
        tags={**case.tags, "predicted": classes[pred]}, passed=pred == gold, text=text, target=case.expected,
        prediction=classes[pred], label_probs=_label_probs(task, classes, probs), explain=explain)


def head_mapping(task: TaskSpec, model_labels: Sequence[str], classes: list[str]) -> dict[str, int]:
    """Model label -> class index, through ``label_map`` or else by name (class value or label word)."""
    from lmcritic.probes._label_map import label_index

    words = {w.strip(): i for i, w in enumerate(task.labels.values())}
    return label_index(model_labels, classes, task.label_map, words)
