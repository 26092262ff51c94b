"""The ray backend: replicas of a backend as Ray actors on a local Ray instance (skipped without Ray:
``pip install 'lmcritic[ray]'``). Results equal the single-process backend's; a replica that dies is replaced
and its batch sent again, with no case lost or counted twice."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from lmcritic.errors import ConfigError, UnknownNameError
from lmcritic.requests import Capability, GenerateRequest, GenParams, LoglikelihoodRequest, RollingRequest

ray = pytest.importorskip("ray")
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A fresh local instance whose workers can import tests/ (the test models live there)."""
    ray.shutdown()
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), old) if p)
    try:
        yield ray
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def test_two_replicas_give_the_single_process_results(local_ray, tiny_causal, tiny_causal_dir) -> None:
    from lmcritic.backends.ray import RayBackend

    rb = RayBackend({"backend": "hf", "options": {"model": str(tiny_causal_dir)}}, replicas=2, batch_size=3)
    try:
        assert rb.fingerprint() == tiny_causal.fingerprint()
        assert Capability.GRADIENTS not in rb.capabilities and Capability.LOGLIKELIHOOD in rb.capabilities
        ll = [LoglikelihoodRequest(f"review {i}: the film was", " great" if i % 2 else " dull") for i in range(11)]
        assert rb.loglikelihood(ll) == tiny_causal.loglikelihood(ll)
        rolling = [RollingRequest("a good film " * (i + 1)) for i in range(5)]
        for got, want in zip(rb.rolling_logprobs(rolling), tiny_causal.rolling_logprobs(rolling)):
            # windows of several texts share a padded forward pass, so sums differ in the last float digits
            assert (got.token_ids, got.offsets) == (want.token_ids, want.offsets)
            assert got.logprobs == pytest.approx(want.logprobs, abs=1e-5)
        gens = [GenerateRequest(prompt=f"movie {i}", params=GenParams(max_new_tokens=5)) for i in range(7)]
        assert rb.generate(gens) == tiny_causal.generate(gens)
        assert rb.describe()["replicas"] == 2 and rb.restarts == 0
    finally:
        rb.close()


def test_a_dead_replica_is_replaced_and_its_batch_sent_again(local_ray, tmp_path) -> None:
    from lmcritic.backends.ray import RayBackend

    rb = RayBackend({"backend": "python", "name": "_ray_models:echo_or_die"}, replicas=2, batch_size=2)
    try:
        prompts = [f"case {i}" for i in range(9)] + [f"die:{tmp_path / 'died'}"] + [f"case {i}" for i in range(9, 20)]
        out = rb.generate([GenerateRequest(prompt=p) for p in prompts])
        assert (tmp_path / "died").exists()  # a replica's process really exited mid-call
        assert [r.text for r in out] == [p[::-1] for p in prompts]  # every case once, in order
        assert (rb.restarts, rb.resent) == (1, 2)
    finally:
        rb.close()


def test_inner_spec_is_checked_before_ray_starts() -> None:
    from lmcritic.backends.ray import RayBackend

    with pytest.raises(ConfigError, match="did you mean 'options'"):
        RayBackend({"name": "x", "option": {}})
    with pytest.raises(UnknownNameError):
        RayBackend({"name": "x", "backend": "hff"})
    with pytest.raises(ConfigError, match="inner backend is ray"):
        RayBackend({"name": "x", "backend": "ray"})


def test_scan_on_two_replicas_with_one_killed_mid_scan(local_ray, tmp_path, tiny_causal, tiny_causal_dir) -> None:
    """The run completes with every case stored once and the single-process run's findings. The replica is killed
    at a fixed point (when the second chunk's result comes back, with chunks of the same call still to go), and the
    kill is waited for, so the test does not depend on timing."""
    from ray.exceptions import RayActorError

    from lmcritic.backends import ModelSpec
    from lmcritic.backends.ray import RayBackend
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    probes = (ProbeSpec("performance.sst2", {"n": 12}),
              ProbeSpec("performance.perplexity", {"docs": 3, "window": 32, "stride": 16}))
    inner = {"backend": "hf", "options": {"model": str(tiny_causal_dir)}}
    spec = RunSpec(model=ModelSpec(str(tiny_causal_dir), "ray", {"inner": inner, "replicas": 2, "batch_size": 4}),
                   probes=probes)
    single = Runner(tmp_path / "one.sqlite", tmp_path / "one-cache.sqlite", progress=False).run(spec, model=tiny_causal)
    rb = RayBackend(inner, replicas=2, batch_size=4)
    get, killed = rb._get, []

    def get_then_kill_at_the_second_chunk(ref: Any) -> Any:
        out = get(ref)
        if rb.chunks_done == 1 and not killed:  # this is the second chunk's result
            killed.append(rb.actors[0])
            local_ray.kill(rb.actors[0], no_restart=True)
            while True:  # the kill is asynchronous: a call sent just after it may still be served
                try:
                    local_ray.get(killed[0].identity.remote())
                except RayActorError:
                    break
        return out

    rb._get = get_then_kill_at_the_second_chunk  # type: ignore[method-assign]
    runner = Runner(tmp_path / "ray.sqlite", tmp_path / "ray-cache.sqlite", progress=False)
    try:
        out = runner.run(spec, model=rb)
        assert killed and out.status == "done" and rb.restarts == 1 and rb.resent >= 1
    finally:
        rb.close()
    one = Runner(tmp_path / "one.sqlite", tmp_path / "one-cache.sqlite", progress=False).store
    for key, n in (("performance.sst2", 12), ("performance.perplexity", 3)):
        got, want = runner.store.records(out.run_id, key), one.records(single.run_id, key)
        assert len(got) == n and sorted(r.case_id for r in got) == sorted(r.case_id for r in want)
    found = {(f.probe, f.name): f for f in runner.store.findings(out.run_id)}
    expected = {(f.probe, f.name): f for f in one.findings(single.run_id)}
    assert found.keys() == expected.keys()
    for key, f in expected.items():
        assert found[key].verdict == f.verdict
        if f.estimate is not None:
            est = found[key].estimate
            assert est is not None and est.n == f.estimate.n
            assert est.value == pytest.approx(f.estimate.value, rel=1e-6)
    queries = [s.get_run(r).timings["cache"]["queries"] for s, r in ((runner.store, out.run_id), (one, single.run_id))]
    assert queries[0] == queries[1]  # nothing asked twice
