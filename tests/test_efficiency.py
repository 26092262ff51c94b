"""Efficiency and quantization-cost probes on the tiny GPT-2: real timings, real int8 copies.

No assertion is on absolute speed (the machine is shared): only that timings exist, are positive, come
from real model calls, and that statistics are well-formed and paired on identical cases.
"""
from __future__ import annotations

import math
from typing import Sequence

import pytest

from lmcritic.backends import ModelSpec
from lmcritic.backends.base import Backend
from lmcritic.probes.performance.efficiency import Efficiency
from lmcritic.probes.performance.quantization import QuantizationCost, coverage, quantize_linear
from lmcritic.requests import Capability, LoglikelihoodRequest, LoglikelihoodResult
from lmcritic.runner import Runner, make_plan
from lmcritic.spec import ProbeSpec, RunSpec

EFF = {"prompts": 3, "repeats": 3, "max_new_tokens": 4}
QUANT = {"sst2": {"n": 12}, "perplexity": {"docs": 3, "window": 32, "stride": 16}}


class CharBackend(Backend):
    """A black box that scores text by a uniform character model: LOGLIKELIHOOD only, no weights."""

    kind = "chars"

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.LOGLIKELIHOOD})

    def fingerprint(self) -> str:
        return "chars-uniform-64"

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        return [LoglikelihoodResult(-len(r.continuation) * math.log(64), False, len(r.continuation.split()))
                for r in requests]


class Counting(Backend):
    """Delegates to a real backend and counts the calls that reach it (not named ``inner`` on purpose:
    the probe must stop unwrapping here, below the cache)."""

    kind = "counting"

    def __init__(self, wrapped: Backend) -> None:
        self.wrapped, self.calls = wrapped, 0

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.wrapped.capabilities

    def fingerprint(self) -> str:
        return self.wrapped.fingerprint()

    def describe(self) -> dict:
        return self.wrapped.describe()

    def loglikelihood(self, requests):
        self.calls += 1
        return self.wrapped.loglikelihood(requests)

    def generate(self, requests):
        self.calls += 1
        return self.wrapped.generate(requests)


def _run(tmp_path, model_dir, model: Backend, name: str, config: dict):
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(RunSpec(model=ModelSpec(name=str(model_dir)), probes=(ProbeSpec(name, config),)), model=model)
    assert out.status == "done", out.message
    [probe_run] = runner.store.probe_runs(out.run_id)
    assert probe_run.status == "done", probe_run
    findings = {f.name: f for f in runner.store.findings(out.run_id)}
    return runner.store.records(out.run_id, name), findings, runner.store.get_run(out.run_id)


def test_efficiency_times_real_calls_through_the_cache(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    counting = Counting(tiny_causal)
    calls = []
    for _ in range(2):  # the second run would be all cache hits if the probe timed the wrapper
        before = counting.calls
        records, findings, run = _run(tmp_path, tiny_causal_dir, counting, "performance.efficiency", EFF)
        calls.append(counting.calls - before)
        assert run.timings["cache"].get("hits", 0) == 0
    n_calls = 3 * 2 * (3 + 1)  # repeats × modes × (3 single calls + 1 batched)
    assert calls[0] == calls[1] == n_calls + 2 * 2  # plus one single and one batched warm-up per mode
    assert len(records) == n_calls
    for r in records:
        assert r.scores["latency_s"] > 0 and r.scores["elapsed_s"] >= r.scores["latency_s"]
        assert r.scores["tokens"] > 0 and r.scores["tokens_per_s"] > 0
    gen = [r for r in records if r.tags["mode"] == "generate"]
    assert all(0 < r.output["n_new_tokens"] <= 4 * r.scores["n_requests"] for r in gen)
    assert {r.tags["batch"] for r in records} == {"1", "batched"}
    for name in ("latency/score", "latency/generate", "throughput/score", "throughput/generate", "memory"):
        est = findings[name].estimate
        assert est.ci_low <= est.value <= est.ci_high and est.n > 0 and est.value >= 0, name
        assert findings[name].verdict.value == "pass"  # no limits set by default
    assert findings["latency/score"].estimate.n == 3 * 3  # repeats × prompts at batch size 1
    assert "limit none set" in findings["latency/score"].summary
    assert findings["memory"].details["n_parameters"] == sum(p.numel() for p in tiny_causal.model.parameters())


def test_efficiency_limits_fail_and_black_box_modes(tiny_causal) -> None:
    probe = Efficiency(prompts=2, repeats=2, modes=("score",), max_score_latency_ms=1e-6, min_score_tokens_per_s=1e12)
    cases = list(probe.cases())
    findings = {f.name: f for f in probe.summarize(probe.score(tiny_causal, cases))}
    assert findings["latency/score"].verdict.value == "fail" and "1e-06 ms" in findings["latency/score"].summary
    assert findings["throughput/score"].verdict.value == "fail"
    black = CharBackend()
    both = Efficiency(prompts=2, repeats=2)
    assert both.not_applicable(black) is None
    records = both.score(black, list(both.cases()))
    skipped = [r for r in records if "skipped" in r.output]
    assert skipped and all(r.tags["mode"] == "generate" for r in skipped)
    names = {f.name for f in both.summarize(records)}
    assert "latency/score" in names and "latency/generate" not in names


def test_quantized_copy_is_close_but_not_identical(tiny_causal) -> None:
    import torch

    model = tiny_causal.model
    quant = quantize_linear(model)
    ids = torch.tensor([[5, 17, 42, 7, 99, 3]])
    with torch.no_grad():
        a, b = model(ids.to(next(model.parameters()).device)).logits.cpu(), quant(ids).logits
    gap = (a - b).abs().max().item()
    assert 0 < gap < 0.1 * a.std().item() + 1e-3
    assert next(model.parameters()).dtype == torch.float32  # original untouched
    assert not any(isinstance(m, torch.nn.Linear) for m in quant.modules())
    cov = coverage(model)
    assert "Conv1D" in cov["not_quantized_2d_modules"]  # GPT-2 blocks are Conv1D, not nn.Linear
    assert cov["tied_to_unquantized"] == ["lm_head"]
    kept = quantize_linear(model, exclude=("lm_head",))  # the only Linear: nothing is quantized
    with torch.no_grad():
        assert torch.allclose(kept(ids).logits, a, atol=1e-5)
    assert "Linear (excluded)" in coverage(model, ("lm_head",))["not_quantized_2d_modules"]


def test_quantization_probe_pairs_identical_cases(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    records, findings, _ = _run(tmp_path, tiny_causal_dir, tiny_causal, "performance.quantization", QUANT)
    ids = [r.case_id for r in records]
    assert len(ids) == len(set(ids)) == 12 + 3
    sst = [r for r in records if r.tags["task"] == "sst2"]
    assert all(r.case_id == "sst2/" + r.tags["inner_id"] for r in sst)
    assert all({"original_correct", "quantized_correct"} <= set(r.scores) for r in sst)
    acc = findings["accuracy_delta"]
    assert acc.details["n_pairs"] == acc.estimate.n == 12
    assert acc.estimate.ci_low <= acc.estimate.value <= acc.estimate.ci_high
    assert 0 <= acc.details["p_mcnemar"] <= 1 and acc.details["p_adjusted"] >= acc.details["p_mcnemar"]
    ppl = findings["perplexity_ratio"]
    assert ppl.estimate.n == 3 and ppl.estimate.ci_low <= ppl.estimate.value <= ppl.estimate.ci_high
    assert abs(ppl.estimate.value - 1) < 0.2 and ppl.estimate.value != 1  # close, yet changed
    size = findings["model_size"]
    assert "Linear ×1" in size.summary and "Conv1D" in size.summary and "lm_head" in size.summary
    assert size.details["size_quantized_bytes"] > 0 and size.details["size_original_bytes"] > 0
    assert findings["speedup"].estimate.value > 0


def test_quantization_needs_a_white_box_model() -> None:
    probe = QuantizationCost(**QUANT)
    reason = probe.not_applicable(CharBackend())
    assert reason and "needs a white-box model to quantize" in reason
    plan = make_plan(RunSpec(model=ModelSpec(name="x"), probes=(ProbeSpec("performance.quantization", QUANT),)),
                     CharBackend())
    assert "white-box" in plan[0].skip_reason
    assert Efficiency(modes=("generate",)).not_applicable(CharBackend())


def test_quantization_config_merges_task_defaults() -> None:
    probe = QuantizationCost(sst2={"shots": 1})
    assert probe.config.sst2 == {"n": 100, "shots": 1} and probe.config.perplexity == {"docs": 10}
    with pytest.raises(Exception, match="tasks"):
        QuantizationCost(tasks=("mmlu",))
