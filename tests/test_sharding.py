"""Sharded scans: the probes of a run on several worker processes (or Ray actors) at once, all writing to one run.
The results equal the sequential run's; a worker killed mid-probe is replaced, or its probe is resumed, with no case
lost, none stored twice and no stored case asked again; a killed driver's run resumes; the budget is shared."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from lmcritic.backends import ModelSpec
from lmcritic.errors import ConfigError
from lmcritic.runner import Runner
from lmcritic.spec import BudgetSpec, ParallelSpec, ProbeSpec, RunSpec, StageSpec

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-c", "from lmcritic.cli.main import main; raise SystemExit(main())"]
MODEL = ModelSpec("_shard_models:sentiment", "python", {"task": "classify", "labels": ["negative", "positive"]})
PROBES = (ProbeSpec("performance.sst2", {"n": 80}), ProbeSpec("performance.perplexity"),
          ProbeSpec("robustness.register", {"n": 12}),
          ProbeSpec("bias.counterfactual", {"n_per_attribute": 6, "max_groups": 2, "natural": 0}))
SPEC = RunSpec(model=MODEL, probes=PROBES, stages=(StageSpec("interpret.explain", {"k": 2}),))
MEASURED = ("timings", "seconds")  # wall times the explain stage stores with its explanations
SST2 = "performance.sst2"


@pytest.fixture(autouse=True)
def importable_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spawned workers (and Ray actors) import the test model from tests/."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.delenv("LMCRITIC_TEST_DIE_ON", raising=False)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runner, str]:
    d = tmp_path_factory.mktemp("sequential")
    runner = Runner(d / "runs.sqlite", d / "cache.sqlite", progress=False)
    out = runner.run(SPEC)
    assert out.status == "done"
    return runner, out.run_id


def sharded(tmp_path: Path, workers: int = 2, **parallel: Any) -> tuple[Runner, RunSpec]:
    spec = replace(SPEC, parallel=ParallelSpec(workers=workers, **parallel))
    return Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False), spec


def unmeasured(data: Any) -> Any:
    """``data`` without the wall times measured while it was made (they differ between any two runs)."""
    if isinstance(data, dict):
        return {k: unmeasured(v) for k, v in data.items() if k not in MEASURED}
    if isinstance(data, list):
        return [unmeasured(v) for v in data]
    return data


def assert_same_results(runner: Runner, run_id: str, sequential: tuple[Runner, str], stages: bool = True) -> None:
    """Every probe's (and stage's) status, the records (ids, outputs, scores, in case order) and the findings equal
    the sequential run's. ``stages=False``: the probes' only (a stage that ran on a partial run is not rerun)."""
    one, one_id = sequential
    keep = (lambda key: True) if stages else (lambda key: key in {p.key for p in PROBES})
    statuses = [(p.probe_key, p.status) for p in runner.store.probe_runs(run_id) if keep(p.probe_key)]
    assert statuses == [(p.probe_key, p.status) for p in one.store.probe_runs(one_id) if keep(p.probe_key)]
    assert [(s.stage, s.status) for s in runner.store.stage_runs(run_id)] == [("interpret.explain", "done")]
    keys = [k for k in runner.store.record_keys(run_id) if keep(k)]
    assert keys == [k for k in one.store.record_keys(one_id) if keep(k)]
    for key in keys:
        got = runner.store.records(run_id, key)
        assert len({r.case_id for r in got}) == len(got)  # none twice
        want = one.store.records(one_id, key)
        assert [replace(r, output=unmeasured(r.output)) for r in got] == \
            [replace(r, output=unmeasured(r.output)) for r in want], key
    assert [f for f in runner.store.findings(run_id) if keep(f.probe)] == \
        [f for f in one.store.findings(one_id) if keep(f.probe)]


def die_on(monkeypatch: pytest.MonkeyPatch, sequential: tuple[Runner, str], flag: Path, who: str = "worker",
           case: int = 40) -> None:
    """The worker that classifies the SST-2 probe's case ``case`` (in its second chunk of 32) dies there."""
    one, one_id = sequential
    text = one.store.records(one_id, SST2)[case].input["text"]
    monkeypatch.setenv("LMCRITIC_TEST_DIE_ON", f"{text}\t{flag}\t{who}")


def created(store_path: Path, run_id: str, key: str) -> dict[str, float]:
    """When each stored case of ``key`` was (last) written: a case asked again would be written again."""
    with sqlite3.connect(store_path) as conn:
        rows = conn.execute("SELECT case_id, created FROM cases WHERE run_id = ? AND probe_key = ?",
                            (run_id, key)).fetchall()
    return dict(rows)


def test_two_workers_give_the_sequential_results(tmp_path, sequential) -> None:
    runner, spec = sharded(tmp_path)
    out = runner.run(spec)
    assert out.status == "done"
    assert runner.shards is not None and len(set(runner.shards.pids)) == 2 and os.getpid() not in runner.shards.pids
    assert_same_results(runner, out.run_id, sequential)
    timings = runner.store.get_run(out.run_id).timings
    assert timings["parallel"] == {"workers": 2, "engine": "local", "restarts": 0}
    assert set(timings["probes"]) == {SST2, "robustness.register", "bias.counterfactual", "stage:interpret.explain"}
    assert timings["cache"]["misses"] >= sequential[0].store.get_run(sequential[1]).timings["cache"]["misses"]


def test_a_worker_killed_mid_probe_is_replaced(tmp_path, sequential, monkeypatch) -> None:
    flag = tmp_path / "died"
    die_on(monkeypatch, sequential, flag)
    runner, spec = sharded(tmp_path)
    out = runner.run(spec)
    assert flag.exists()  # a worker process really was killed, in the middle of the probe
    assert out.status == "done" and runner.shards is not None and runner.shards.restarts == 1
    assert int(flag.read_text()) not in runner.shards.pids
    assert_same_results(runner, out.run_id, sequential)
    died_at = flag.stat().st_mtime
    written = created(tmp_path / "runs.sqlite", out.run_id, SST2)
    first_chunk = [r.case_id for r in sequential[0].store.records(sequential[1], SST2)[:32]]
    assert all(written[c] <= died_at for c in first_chunk)  # stored before the kill, not asked again after it


def test_a_killed_worker_without_restarts_fails_its_probe_and_resume_completes(tmp_path, sequential,
                                                                              monkeypatch) -> None:
    flag = tmp_path / "died"
    die_on(monkeypatch, sequential, flag)
    runner, spec = sharded(tmp_path, max_restarts=0)
    out = runner.run(spec)
    assert flag.exists() and out.status == "partial"
    assert any(e.startswith(f"{SST2}: worker") and "died" in e for e in out.errors)
    before = {p.probe_key: p for p in runner.store.probe_runs(out.run_id)}
    kept = created(tmp_path / "runs.sqlite", out.run_id, SST2)
    assert 32 <= len(kept) < 80  # the first chunk was stored before the kill

    again = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False).run(spec, resume=out.run_id)
    assert again.status == "done"
    assert_same_results(runner, out.run_id, sequential, stages=False)
    after = {p.probe_key: p for p in runner.store.probe_runs(out.run_id)}
    for key in ("robustness.register", "bias.counterfactual"):  # finished before: not run again
        assert after[key].finished == before[key].finished
    written = created(tmp_path / "runs.sqlite", out.run_id, SST2)
    assert all(written[c] == t for c, t in kept.items())  # the stored cases were not asked again


def test_a_killed_driver_takes_its_workers_down_and_the_run_resumes(tmp_path, sequential, monkeypatch) -> None:
    flag = tmp_path / "died"
    die_on(monkeypatch, sequential, flag, who="driver")
    spec_file = tmp_path / "spec.yaml"
    data = replace(SPEC, parallel=ParallelSpec(workers=2)).to_dict()
    spec_file.write_text(yaml.safe_dump(data))
    cmd = [*CLI, "run", str(spec_file), "--store", str(tmp_path / "runs.sqlite"), "--create", "--cache",
           str(tmp_path / "cache.sqlite"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ,
                                                                                "LMCRITIC_HOME": str(tmp_path)})
    assert proc.returncode == -signal.SIGKILL and flag.exists(), proc.stderr[-2000:]
    worker = int(flag.read_text())
    for _ in range(100):  # the parent-death signal: the worker goes with its driver
        if not Path(f"/proc/{worker}").exists():
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{worker}").exists()

    monkeypatch.delenv("LMCRITIC_TEST_DIE_ON")
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    run_id = runner.store.resolve("latest")
    assert runner.store.get_run(run_id).status == "interrupted"  # its process is gone
    out = runner.run(RunSpec.from_dict(runner.store.get_run(run_id).spec), resume=run_id)
    assert out.status == "done"
    assert_same_results(runner, run_id, sequential)


def test_the_budget_is_shared_by_the_workers(tmp_path, sequential) -> None:
    runner, spec = sharded(tmp_path)
    out = runner.run(replace(spec, budget=BudgetSpec(max_queries=60)))
    assert out.status == "interrupted" and out.interrupted_by == "budget"
    stored = sum(len(runner.store.records(out.run_id, k)) for k in runner.store.record_keys(out.run_id))
    assert stored <= 60  # one query per case: both workers together stayed within the budget
    again = runner.run(spec, resume=out.run_id)
    assert again.status == "done"
    assert_same_results(runner, out.run_id, sequential)


def test_parallel_in_specs_and_on_the_command_line(tmp_path) -> None:
    assert RunSpec.from_dict({"probes": ["performance.sst2"], "parallel": 3}).parallel == ParallelSpec(workers=3)
    spec = RunSpec.from_dict({"probes": ["performance.sst2"], "parallel": {"workers": 2, "engine": "ray",
                                                                          "num_gpus": 1}})
    assert RunSpec.from_dict(spec.to_dict()) == spec  # stored and replayed
    with pytest.raises(ConfigError, match="workers must be a whole number >= 1"):
        RunSpec.from_dict({"probes": ["performance.sst2"], "parallel": {"workers": 0}})
    with pytest.raises(ConfigError, match="did you mean 'engine'"):
        RunSpec.from_dict({"probes": ["performance.sst2"], "parallel": {"engin": "ray"}})
    with pytest.raises(ConfigError, match="cannot take a model object"):
        Runner(tmp_path / "r.sqlite", progress=False).run(replace(SPEC, parallel=ParallelSpec(workers=2)),
                                                         model=object())  # type: ignore[arg-type]


def test_the_scan_command_takes_workers(tmp_path) -> None:
    env = {**os.environ, "LMCRITIC_HOME": str(tmp_path)}
    cmd = [*CLI, "scan", "--model", "_shard_models:sentiment", "--backend", "python", "--option", "task=classify",
           "--probe", "performance.sst2", "--probe", "robustness.register", "--set", "performance.sst2.n=24", "--set",
           "robustness.register.n=6", "--no-stages", "--workers", "2", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runner = Runner(tmp_path / "runs.sqlite", progress=False)
    run = runner.store.get_run("latest")
    assert run.status == "done" and run.spec["parallel"]["workers"] == 2
    assert run.timings["parallel"]["workers"] == 2
    assert len(runner.store.records(run.id, "performance.sst2")) == 24
    bad = subprocess.run([*cmd[:-3], "--workers", "0", "--no-progress"], capture_output=True, text=True,
                         timeout=300, env=env)
    assert bad.returncode == 2 and "parallel.workers must be a whole number >= 1, got 0" in bad.stderr
    assert "Traceback" not in bad.stderr  # --workers 0 is refused, not taken as 'unset' (a sequential scan)


def test_ray_workers_give_the_sequential_results_and_replace_a_dead_actor(tmp_path, sequential,
                                                                          monkeypatch) -> None:
    ray = pytest.importorskip("ray")
    flag = tmp_path / "died"
    die_on(monkeypatch, sequential, flag)
    ray.shutdown()
    try:
        runner, spec = sharded(tmp_path, engine="ray")
        out = runner.run(spec)
    finally:
        ray.shutdown()
    assert flag.exists() and out.status == "done"
    assert runner.shards is not None and runner.shards.restarts == 1
    assert_same_results(runner, out.run_id, sequential)
