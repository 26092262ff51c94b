"""Per-request token counts of the default suite (issue 18's docs/scale.md works out cluster scan times from them).

The default suite runs against a stand-in that has the default model's tokenizer and chat template but no
weights: every request is tokenized exactly as the hf backend would (prompt tokens for generation, context +
continuation for log-likelihoods, every window's input for rolling log-probs), and each generation is counted
at its ``max_new_tokens`` (an upper bound: a real model may stop sooner). Its answers are fixed, so probes that
adapt to the model's answers (the character attack, the diagnosis searches) take the paths those answers lead to:
the attack, never succeeding, spends its whole query budget (an upper bound too). Probes that need gradients
(efficiency, quantization, explanations) are skipped by the planner, as they are for any black-box backend.
Writes benchmarks/results/suite_tokens.json.

Usage: python benchmarks/suite_tokens.py
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from lmcritic.backends.base import Backend
from lmcritic.requests import (
    Capability,
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
)

ROOT = Path(__file__).resolve().parents[1]
ANSWER = "I'm sorry, but I can't help with that. Here is a short, neutral answer instead."


class TokenCounter(Backend):
    """The default model's tokenizer without its weights: counts what each request would cost."""

    kind = "token-counter"

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length
        self.calls: list[dict[str, Any]] = []

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.GENERATE, Capability.CHAT, Capability.LOGLIKELIHOOD,
                          Capability.ROLLING_LOGPROBS})

    def fingerprint(self) -> str:
        return "token-counter-smollm2"

    def _n(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _log(self, method: str, prompt: list[int], new: list[int]) -> None:
        self.calls.append({"method": method, "prompt": prompt, "new": new})

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        sizes = [(self._n(r.context), self._n(r.context + r.continuation)) for r in requests]
        self._log("loglikelihood", [min(whole + 1, self.max_length) for _, whole in sizes], [0] * len(sizes))
        return [LoglikelihoodResult(-2.0 * max(1, whole - ctx), False, max(1, whole - ctx)) for ctx, whole in sizes]

    def rolling_logprobs(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        from lmcritic.backends._hf_rolling import windows_for

        out, inputs = [], []
        for r in requests:
            enc = self.tokenizer(r.text, add_special_tokens=False, return_offsets_mapping=True)
            ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
            window = min(r.window or self.max_length, self.max_length)
            inputs.append(sum(len(w.inp) for w in windows_for(0, ids, 0, window, r.stride or window)))
            toks = tuple(self.tokenizer.convert_ids_to_tokens(ids))
            lps = tuple(-3.0 if (i or r.prefix) else None for i in range(len(ids)))
            top1 = tuple(None for _ in ids) if r.top1 else None
            out.append(RollingResult(tuple(ids), toks, lps, tuple(offsets), top1))  # type: ignore[arg-type]
        self._log("rolling_logprobs", inputs, [0] * len(requests))
        return out

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        prompts = [self._prompt_tokens(r) for r in requests]
        news = [r.params.max_new_tokens for r in requests]
        self._log("generate", prompts, news)
        return [GenerateResult(ANSWER, "length", p, n) for p, n in zip(prompts, news)]

    def _prompt_tokens(self, r: GenerateRequest) -> int:
        if r.is_chat:
            rows = [{"role": m.role, "content": m.content} for m in r.messages or ()]
            return self._n(str(self.tokenizer.apply_chat_template(rows, add_generation_prompt=True, tokenize=False)))
        return max(1, self._n(r.prompt or ""))


def summary(calls: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"prompt": [], "new": [], "call_sizes": []})
    for c in calls:
        by[c["method"]]["prompt"] += c["prompt"]
        by[c["method"]]["new"] += c["new"]
        by[c["method"]]["call_sizes"].append(len(c["prompt"]))
    out = {}
    for method, d in by.items():
        p, n, sizes = d["prompt"], d["new"], d["call_sizes"]
        out[method] = {"requests": len(p), "calls": len(sizes), "input_tokens": sum(p), "new_tokens_max": sum(n),
                       "mean_input_tokens": round(statistics.mean(p), 1), "median_input_tokens": statistics.median(p),
                       "p95_input_tokens": sorted(p)[int(0.95 * (len(p) - 1))],
                       "mean_new_tokens_max": round(statistics.mean(n), 1),
                       "call_size_histogram": _histogram(sizes)}
    return out


def _histogram(sizes: list[int]) -> dict[str, int]:
    edges = [(1, 1), (2, 7), (8, 31), (32, 127), (128, 10**9)]
    return {f"{a}-{b if b < 10**9 else 'inf'}": sum(a <= s <= b for s in sizes) for a, b in edges}


def main() -> None:
    from lmcritic.backends import load_model
    from lmcritic.runner import Runner
    from lmcritic.spec import RunSpec

    real = load_model("smollm2-135m")  # for its tokenizer and context length only
    counter = TokenCounter(real.tokenizer, real.max_length)
    real.close()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(Path(tmp) / "runs.sqlite", Path(tmp) / "cache.sqlite", progress=False)
        out = runner.run(RunSpec.default(), model=counter)
        probes = runner.store.get_run(out.run_id).summary or {}
    result = {"bench": "default suite, per-request token counts (SmolLM2 tokenizer, no weights)",
              "run_status": out.status, "run_message": out.message, "wall_s": round(time.perf_counter() - start, 1),
              "max_length": counter.max_length, "by_method": summary(counter.calls), "run_summary": probes,
              "calls": [[c["method"], len(c["prompt"]), sum(c["prompt"]), max(c["new"], default=0)]
                        for c in counter.calls],
              "load_avg_at_end": os.getloadavg()}
    path = ROOT / "benchmarks" / "results" / "suite_tokens.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("run_summary", "calls")}, indent=2, default=str))


if __name__ == "__main__":
    main()
