"""Findings of a task run: one per metric (value, n, 95% CI, worst cases), per-class accuracy for choice
tasks (where the model does badly, not only how badly) and a reliability diagram with ECE."""
from __future__ import annotations

import functools
import math
from collections import defaultdict
from typing import Any, Callable, Sequence

from lmcritic import plots, stats
from lmcritic.findings import make_finding, shortfall
from lmcritic.probes.base import Estimate, Finding, Record
from lmcritic.tasks.spec import OWN_METRICS, TaskSpec

LOWER_IS_BETTER = {"word_perplexity", "byte_perplexity", "bits_per_byte", "token_perplexity"}


def columns(records: Sequence[Record]) -> dict[str, list[Any]]:
    """Aligned columns for registry metrics (see lmcritic.metrics)."""
    recs = list(records)
    if recs and "reference" in recs[0].output:  # generate
        return {"predictions": [r.prediction for r in recs],
                "references": [r.output["reference"] for r in recs]}
    return {"predictions": [r.prediction for r in recs], "references": [r.output["gold"] for r in recs],
            "confidences": [r.scores["confidence"] for r in recs], "correct": [bool(r.passed) for r in recs],
            "probs": [r.output["probs"] for r in recs], "labels": [r.input["gold"] for r in recs]}


def metric_estimate(task: TaskSpec, name: str, records: Sequence[Record]) -> Estimate:
    if name in OWN_METRICS["perplexity"]:
        return _perplexity(name, records)
    if name in OWN_METRICS["multiple_choice"]:
        return stats.proportion([r.scores[name] == 1.0 for r in records])
    from lmcritic.metrics import estimate

    return estimate(name, columns(records))


def _perplexity(name: str, records: Sequence[Record]) -> Estimate:
    nll = [r.scores["nll"] for r in records]
    den = {"word_perplexity": "n_words", "byte_perplexity": "n_bytes", "bits_per_byte": "n_bytes",
           "token_perplexity": "n_tokens"}[name]
    ratio = stats.ratio_of_sums(nll, [r.scores[den] for r in records])
    return stats.transform(ratio, (lambda x: x / math.log(2)) if name == "bits_per_byte" else math.exp)


def higher_is_better(name: str) -> bool:
    if name in LOWER_IS_BETTER:
        return False
    if name in OWN_METRICS["multiple_choice"]:
        return True
    from lmcritic.metrics import METRICS

    return METRICS.get(name).higher_is_better


def metric_finding(probe: str, task: TaskSpec, name: str, est: Estimate, records: Sequence[Record],
                   plot: plots.Plot | None) -> Finding:
    higher = higher_is_better(name)
    threshold = task.thresholds.get(name)
    gap = shortfall(est.value, threshold, higher)
    rel = gap / max(abs(threshold), 1e-9) if threshold else 0.0
    judged = "no threshold set" if threshold is None else f"threshold {'≥' if higher else '≤'} {threshold:g}"
    details: dict[str, Any] = {"task": task.name, "task_fingerprint": task.fingerprint(), "metric": name,
                               "higher_is_better": higher, "threshold": threshold, "source": task.source,
                               "data": task.data.describe(), "fewshot": task.fewshot.n}
    if plot:
        details["plots"] = plots.to_details(plot)
    return make_finding(probe=probe, name=name, failed=gap > 0,
                        effect=rel, summary=f"{task.name}: {name} {est}; {judged}", estimate=est,
                        evidence=tuple(r.case_id for r in worst(records)[:10]), details=details)


def worst(records: Sequence[Record]) -> list[Record]:
    """Worst cases first: confidently wrong (choice), lowest F1 (generate), highest NLL/token (perplexity)."""
    recs = list(records)
    if recs and "nll" in recs[0].scores:
        return sorted(recs, key=lambda r: -r.scores["nll"] / max(r.scores["n_tokens"], 1))
    if recs and "token_f1" in recs[0].scores:
        return sorted(recs, key=lambda r: (r.scores["exact_match"], r.scores["token_f1"]))
    return sorted((r for r in recs if not r.passed), key=lambda r: -r.scores["confidence"])


def metrics_plot(task: TaskSpec, ests: dict[str, Estimate]) -> plots.Bars:
    return plots.bars(f"{task.name}: metrics (95% CI)", list(ests), list(ests.values()))


def slices(task: TaskSpec, records: Sequence[Record]) -> list[tuple[str, str, Callable[[Record], str]]]:
    """(finding name, what, key) of the slices worth reporting: gold class (classification), gold answer
    position (multiple choice: position bias), and each tag column with 2–20 distinct values."""
    out: list[tuple[str, str, Callable[[Record], str]]] = []
    if task.output_type == "classification":
        words = task.labels
        out.append(("per_class_accuracy", "gold class",
                    lambda r: _named(str(r.output["gold"]), words.get(str(r.output["gold"])))))
    elif task.output_type == "multiple_choice":
        out.append(("accuracy_by_gold_position", "gold answer position", lambda r: f"choice {r.input['gold']}"))
    for col in task.tags:
        values = {str(r.tags.get(col)) for r in records}
        if 2 <= len(values) <= 20:
            out.append((f"accuracy_by_{col}", col, functools.partial(_tag_value, col)))
    return out


def _tag_value(column: str, r: Record) -> str:
    return str(r.tags.get(column))


def _named(key: str, word: str | None) -> str:
    return key if word is None or word.strip() == key else f"{key} ({word.strip()})"


def slice_finding(probe: str, task: TaskSpec, records: Sequence[Record], name: str, what: str,
                  key: Callable[[Record], str]) -> Finding:
    """Accuracy (exact match for generate) per slice with Wilson CIs; FAIL when the worst and best slices'
    CIs do not overlap, i.e. the model does clearly worse on some part of the data."""
    by: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by[key(r)].append(bool(r.passed))
    names = sorted(by, key=lambda k: (sum(by[k]) / len(by[k]), k))
    ests = {k: stats.proportion(by[k]) for k in names}
    lo, hi = ests[names[0]], ests[names[-1]]
    apart = len(names) > 1 and lo.ci_high < hi.ci_low
    plot = plots.bars(f"{task.name}: accuracy by {what} (95% Wilson CI)", names, [ests[k] for k in names])
    wrong = [r for r in worst(records) if key(r) == names[0] and not r.passed]
    return make_finding(
        probe=probe, name=name, failed=apart,
        effect=hi.value - lo.value if apart else 0.0,
        summary=f"{task.name}: accuracy by {what} lowest on {names[0]!r} {lo}, highest on {names[-1]!r} {hi}"
        + ("; the CIs do not overlap" if apart else ""),
        estimate=lo, evidence=tuple(r.case_id for r in wrong[:10]),
        details={"task": task.name, "slice": what, "slices": {k: {"value": e.value, "n": e.n, "ci_low": e.ci_low,
                 "ci_high": e.ci_high} for k, e in ests.items()}, "plots": plots.to_details(plot),
                 **({} if task.output_type == "generate" else {"predicted_share": _predicted_share(records)})})


def _predicted_share(records: Sequence[Record]) -> dict[str, float]:
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        counts[str(r.prediction)] += 1
    return {k: v / len(records) for k, v in sorted(counts.items())}


def reliability_plot(task: TaskSpec, records: Sequence[Record]) -> plots.Reliability:
    from lmcritic.metrics.calibration import reliability_bins

    bins = reliability_bins([r.scores["confidence"] for r in records], [bool(r.passed) for r in records])
    return plots.reliability(f"{task.name}: reliability (confidence of the predicted answer)", bins)
