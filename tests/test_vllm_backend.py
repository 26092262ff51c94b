"""The vllm backend without a GPU: its bookkeeping on vLLM output structures built per vLLM's documented types.

``RequestOutput.prompt_logprobs`` is a list with None at position 0 and, at every later position, a mapping
token id -> ``Logprob(logprob, rank, decoded_token)`` holding the prompt's own token and the top-k ones. The
engine double below fills those structures from the tiny GPT-2's real forward pass, so the backend's prompt and
position bookkeeping is checked against the hf backend on the same weights. vLLM itself is never imported here;
the real engine's parity with hf runs in ``test_vllm_gpu_parity`` (skipped without vllm and CUDA) and in
``benchmarks/gpu_check.sh``.
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from lmcritic.backends import _vllm_io
from lmcritic.errors import BackendError, ConfigError
from lmcritic.requests import GenerateRequest, GenParams, LoglikelihoodRequest, RollingRequest


@dataclass
class Logprob:  # vllm.logprobs.Logprob
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:  # vllm.outputs.CompletionOutput (the fields the backend reads)
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None


@dataclass
class RequestOutput:  # vllm.outputs.RequestOutput (the fields the backend reads)
    request_id: str
    prompt_token_ids: list[int]
    prompt_logprobs: list[dict[int, Logprob] | None] | None
    outputs: list[CompletionOutput]
    finished: bool = True


class SamplingParams:  # records what the backend asks vLLM for
    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update({"n": 1, "temperature": 1.0, "max_tokens": 16, "prompt_logprobs": None,
                              "logprobs": None, "stop": None, **kwargs})


@dataclass
class _Config:
    max_model_len: int
    dtype: str = "torch.float32"


@dataclass
class _Engine:
    model_config: _Config


@dataclass
class TorchEngine:
    """``vllm.LLM``'s ``generate``/``get_tokenizer`` interface, computed by a transformers model on CPU."""

    model: Any
    tokenizer: Any
    max_model_len: int
    calls: list[tuple[int, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.llm_engine = _Engine(_Config(self.max_model_len))

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(self, prompts: list[dict[str, list[int]]], sampling_params: Any = None,
                 use_tqdm: bool = True) -> list[RequestOutput]:
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        self.calls.append((len(prompts), params[0]))
        return [self._one(str(i), p["prompt_token_ids"], sp) for i, (p, sp) in enumerate(zip(prompts, params))]

    def _one(self, rid: str, ids: list[int], sp: Any) -> RequestOutput:
        assert len(ids) + sp.max_tokens <= self.max_model_len
        rows = self._logprobs(ids)
        prompt_lps = None
        if sp.prompt_logprobs is not None:
            prompt_lps = [None] + [self._entry(rows[i - 1], ids[i], sp.prompt_logprobs) for i in range(1, len(ids))]
        eos = None if getattr(sp, "ignore_eos", False) else self.tokenizer.eos_token_id
        new = self._greedy(ids, sp.max_tokens, eos)
        sample = None
        if sp.logprobs is not None:
            sample = [self._entry(r, t, sp.logprobs) for r, t in zip(self._logprobs(ids + new)[len(ids) - 1:], new)]
        finish = "stop" if new and new[-1] == eos else "length"
        out = CompletionOutput(0, self.tokenizer.decode(new, skip_special_tokens=True), new, None, sample, finish)
        return RequestOutput(rid, ids, prompt_lps, [out])

    def _logprobs(self, ids: list[int]) -> Any:
        import torch

        with torch.inference_mode():
            return torch.log_softmax(self.model(torch.tensor([ids])).logits[0].float(), -1)

    @staticmethod
    def _entry(row: Any, token: int, k: int) -> dict[int, Logprob]:
        """The token itself and the top ``k``, ranked as vLLM ranks them (1 = most likely)."""
        ranks = (row > row[token]).sum().item() + 1
        entry = {token: Logprob(row[token].item(), int(ranks))}
        for r, t in enumerate(row.topk(k).indices.tolist() if k else []):
            entry[t] = Logprob(row[t].item(), r + 1)
        return entry

    def _greedy(self, ids: list[int], n: int, eos: int | None) -> list[int]:
        """Greedy tokens up to ``n``, ending with the end-of-text token where it comes (kept, as vLLM keeps it)."""
        new: list[int] = []
        while len(new) < n and (not new or new[-1] != eos):
            new.append(int(self._logprobs(ids + new)[-1].argmax()))
        return new


@pytest.fixture(scope="module")
def engine(tiny_causal) -> TorchEngine:
    return TorchEngine(tiny_causal.model, tiny_causal.tokenizer, tiny_causal.max_length)


@pytest.fixture(scope="module")
def vbackend(engine):
    from lmcritic.backends.vllm import VLLMBackend

    return VLLMBackend.from_engine(engine, SamplingParams, name="tiny", weights="tiny-weights")


# -- pure conversions on hand-built structures ---------------------------------------------------------
def test_pair_prompt_ends_with_the_last_target_and_truncates_on_the_left() -> None:
    s = _vllm_io.pair_prompt((1, 2, 3), (4, 5), max_length=10)
    assert s == _vllm_io.Scoring((1, 2, 3, 4, 5), 2, False)
    cut = _vllm_io.pair_prompt((1, 2, 3, 4), (5, 6), max_length=3)  # 3 inputs + the last target
    assert cut == _vllm_io.Scoring((3, 4, 5, 6), 2, True)


def test_window_prompt_scores_the_targets_as_the_prompts_last_tokens() -> None:
    # hf window: inputs (prefix, t0, t1) predict targets (t0, t1, t2)
    assert _vllm_io.window_prompt((0, 10, 11), (10, 11, 12)) == _vllm_io.Scoring((0, 10, 11, 12), 3)
    assert _vllm_io.window_prompt((0,), ()) == _vllm_io.Scoring((0,), 0)


def test_scored_positions_reads_the_prompt_token_and_the_rank_1_token() -> None:
    scoring = _vllm_io.Scoring((7, 8, 9), 2)
    plps = [None, {8: Logprob(-0.5, 1, "b")}, {9: Logprob(-2.0, 3, "c"), 4: Logprob(-0.1, 1, "d")}]
    assert _vllm_io.scored_positions(plps, scoring) == [(-0.5, 8, -0.5), (-2.0, 4, -0.1)]
    res = _vllm_io.loglikelihood_result(_vllm_io.scored_positions(plps, scoring), scoring, (8, 9))
    assert (res.logprob, res.is_greedy, res.n_tokens) == (-2.5, False, 2)
    # old vLLM: bare floats, no ranks -> the larger log-prob is the top token
    assert _vllm_io.scored_positions([None, {8: -0.5, 3: -0.2}, {9: -0.1}], scoring)[0] == (-0.5, 3, -0.2)


def test_missing_prompt_logprobs_fail_with_the_fix() -> None:
    scoring = _vllm_io.Scoring((7, 8), 1)
    with pytest.raises(BackendError, match="prompt_logprobs=1"):
        _vllm_io.scored_positions(None, scoring)
    with pytest.raises(BackendError, match="no log-prob for prompt token 8"):
        _vllm_io.scored_positions([None, {5: Logprob(-1.0, 1)}], scoring)
    assert _vllm_io.scored_positions(None, _vllm_io.Scoring((7,), 0)) == []


def test_generate_result_cuts_stops_and_converts_logprobs() -> None:
    out = CompletionOutput(0, "yes. STOP more", [5, 6, 7], None,
                           [{5: Logprob(-0.1, 1)}, {6: Logprob(-1.0, 2), 9: Logprob(-0.5, 1)}, {7: Logprob(-0.2, 1)}],
                           "length")
    res = _vllm_io.generate_result(out, 4, GenParams(stop=("STOP",), logprobs=1), lambda t: f"<{t}>")
    assert (res.text, res.finish_reason, res.n_prompt_tokens, res.n_new_tokens) == ("yes. ", "stop", 4, 3)
    assert res.logprobs is not None and res.logprobs[1].token == "<6>"
    assert res.logprobs[1].top == (("<9>", -0.5),)


# -- the backend's requests and bookkeeping against the hf backend on the same weights -------------------
LL = [LoglikelihoodRequest("the film was", " great"), LoglikelihoodRequest("", "a dull movie"),
      LoglikelihoodRequest("a story ", "about nothing at all")]


def test_loglikelihood_matches_hf(vbackend, tiny_causal, engine) -> None:
    want, got = tiny_causal.loglikelihood(LL), vbackend.loglikelihood(LL)
    for w, g in zip(want, got):
        assert math.isclose(w.logprob, g.logprob, abs_tol=1e-4)
        assert (w.is_greedy, w.n_tokens, w.truncated) == (g.is_greedy, g.n_tokens, g.truncated)
    n, params = engine.calls[-1]
    assert n == len(LL) and (params.prompt_logprobs, params.max_tokens, params.temperature) == (1, 1, 0.0)


def test_long_context_is_truncated_like_hf(vbackend, tiny_causal) -> None:
    """vLLM must generate a token after the prompt, so its longest scored window is two short of the model's."""
    from lmcritic.backends.hf import HFBackend

    hf = HFBackend.from_objects(tiny_causal.model, tiny_causal.tokenizer, max_length=vbackend.max_length)
    long = [LoglikelihoodRequest(" ".join(["word"] * 400), " end")]
    want, got = hf.loglikelihood(long)[0], vbackend.loglikelihood(long)[0]
    assert got.truncated and want.truncated and math.isclose(want.logprob, got.logprob, abs_tol=1e-4)


@pytest.mark.parametrize("req", [RollingRequest("a good film with a bad end", top1=True),
                                 RollingRequest("a good film with a bad end " * 30, window=64, stride=16),
                                 RollingRequest("no prefix here at all", prefix=False)])
def test_rolling_matches_hf(vbackend, tiny_causal, req) -> None:
    want, got = tiny_causal.rolling_logprobs([req])[0], vbackend.rolling_logprobs([req])[0]
    assert (want.token_ids, want.tokens, want.offsets) == (got.token_ids, got.tokens, got.offsets)
    for w, g in zip(want.logprobs, got.logprobs):
        assert (w is None and g is None) or math.isclose(w, g, abs_tol=1e-4)
    if req.top1:
        assert want.top1 is not None and got.top1 is not None
        assert [t[0] for t in want.top1 if t] == [t[0] for t in got.top1 if t]


def test_greedy_generation_matches_hf(vbackend, tiny_causal, engine) -> None:
    """One prompt runs to the token limit, one to the end-of-text token (the tiny model ends 'the film' at once)."""
    reqs = [GenerateRequest(prompt=p, params=GenParams(max_new_tokens=6)) for p in ("the movie is", "the film")]
    want, got = tiny_causal.generate(reqs), vbackend.generate([*reqs, GenerateRequest(prompt="x", params=GenParams(
        max_new_tokens=0))])
    assert [(g.text, g.n_new_tokens, g.finish_reason) for g in got[:2]] == \
        [(w.text, w.n_new_tokens, w.finish_reason) for w in want]
    assert want[0].n_new_tokens == 6 and want[1].n_new_tokens < 6  # both paths taken
    assert got[2].text == "" and engine.calls[-1][0] == 2  # nothing sent for max_new_tokens=0


def test_beam_search_is_refused_before_anything_runs(vbackend) -> None:
    with pytest.raises(ConfigError, match="num_beams"):
        vbackend.generate([GenerateRequest(prompt="x", params=GenParams(num_beams=2))])


def test_fingerprint_and_description(vbackend) -> None:
    assert vbackend.fingerprint() == vbackend.fingerprint() and len(vbackend.fingerprint()) >= 16
    assert vbackend.describe()["backend"] == "vllm" and vbackend.max_length == vbackend.max_model_len - 2


def test_options_are_checked_before_vllm_is_imported() -> None:
    from lmcritic.backends.vllm import VLLMBackend

    with pytest.raises(ConfigError, match="tensor_parallel_size"):
        VLLMBackend("m", tensor_parallel_size=0)
    with pytest.raises(ConfigError, match="dtype"):
        VLLMBackend("m", dtype="fp8x")


def _gpu_missing() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install vllm on a machine with a GPU; see benchmarks/gpu_check.sh)"
    import torch

    return None if torch.cuda.is_available() else "CUDA is not available: vLLM needs a GPU"


@pytest.mark.skipif(_gpu_missing() is not None, reason=str(_gpu_missing()))
def test_vllm_gpu_parity(tiny_causal_dir) -> None:
    """The real engine on the tiny GPT-2 in fp32 agrees with the hf backend to 1e-3 per request."""
    from lmcritic.backends.hf import HFBackend
    from lmcritic.backends.vllm import VLLMBackend

    hf = HFBackend(model=str(tiny_causal_dir), device="cpu")
    vb = VLLMBackend(str(tiny_causal_dir), dtype="float32", gpu_memory_utilization=0.3)
    for w, g in zip(hf.loglikelihood(LL), vb.loglikelihood(LL)):
        assert math.isclose(w.logprob, g.logprob, abs_tol=1e-3) and w.n_tokens == g.n_tokens
    want, got = hf.rolling_logprobs([RollingRequest("a good film")])[0], vb.rolling_logprobs(
        [RollingRequest("a good film")])[0]
    assert want.token_ids == got.token_ids
    assert all(math.isclose(a, b, abs_tol=1e-3) for a, b in zip(want.logprobs, got.logprobs))
