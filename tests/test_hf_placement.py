"""hf backend with accelerate placing the layers (``device_map``, ``max_memory``, disk offload), on CPU."""
from __future__ import annotations

import math

import pytest

from lmcritic.backends.hf import HFBackend
from lmcritic.errors import ConfigError
from lmcritic.requests import GenerateRequest, GenParams, LoglikelihoodRequest, RollingRequest

LL = [LoglikelihoodRequest("the film was", " great"), LoglikelihoodRequest("a story ", "about nothing")]
ROLL = [RollingRequest("a good film with a bad end " * 3)]
GEN = [GenerateRequest(prompt="the film", params=GenParams(max_new_tokens=5))]


def _same(a: HFBackend, b: HFBackend) -> None:
    for x, y in zip(a.loglikelihood(LL), b.loglikelihood(LL)):
        assert math.isclose(x.logprob, y.logprob, abs_tol=1e-5) and x.is_greedy == y.is_greedy
    for x, y in zip(a.rolling_logprobs(ROLL), b.rolling_logprobs(ROLL)):
        assert x.token_ids == y.token_ids and x.logprobs == pytest.approx(y.logprobs, abs=1e-5)
    assert a.generate(GEN)[0].text == b.generate(GEN)[0].text


def test_device_map_auto_and_cpu_match_the_plain_load(tiny_causal, tiny_causal_dir) -> None:
    for device_map in ("auto", "cpu"):
        placed = HFBackend(model=str(tiny_causal_dir), device_map=device_map)
        assert str(placed.device) == "cpu"  # one device: transformers loads it whole (no hf_device_map)
        _same(placed, tiny_causal)


def test_max_memory_offloads_layers_to_disk_and_results_hold(tiny_causal, tiny_causal_dir, tmp_path) -> None:
    placed = HFBackend(model=str(tiny_causal_dir), device_map="auto", max_memory={"cpu": "150KB"},
                       offload_folder=str(tmp_path / "offload"))
    assert "disk" in set(placed.model.hf_device_map.values())  # the budget really pushed layers out of RAM
    _same(placed, tiny_causal)
    assert placed.fingerprint() == tiny_causal.fingerprint()  # weights read back from disk: the same model


def test_placement_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="need device_map"):
        HFBackend(model="x", max_memory={"cpu": "1GB"})
    with pytest.raises(ConfigError, match="unknown device_map"):
        HFBackend(model="x", device_map="everywhere")
