"""The runner end to end on a tiny model: planning, storing every case, budgets, and resume after a kill."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lmcritic.backends import ModelSpec
from lmcritic.runner import Runner, make_plan
from lmcritic.spec import BudgetSpec, ProbeSpec, RunSpec

SMALL = (
    ProbeSpec("performance.sst2", {"n": 12}),
    ProbeSpec("performance.perplexity", {"docs": 3, "window": 32, "stride": 16}),
)


def _spec(model_dir: Path, **kw) -> RunSpec:
    return RunSpec(model=ModelSpec(name=str(model_dir)), probes=SMALL, **kw)


def test_run_stores_cases_findings_and_report(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(_spec(tiny_causal_dir), model=tiny_causal)
    assert out.status == "done"
    store = runner.store
    sst = store.records(out.run_id, "performance.sst2")
    assert len(sst) == 12 and all(r.tags["source"] == "sst2_dev" and r.tags["line"] > 1 for r in sst)
    assert all(abs(sum(r.label_probs.values()) - 1) < 1e-6 for r in sst)
    ppl = store.records(out.run_id, "performance.perplexity")
    assert len(ppl) == 3 and all(len(r.output["logprobs"]) == r.scores["n_tokens"] for r in ppl)
    findings = {f.name: f for f in store.findings(out.run_id)}
    acc = findings["accuracy"].estimate
    assert acc.n == 12 and acc.ci_low <= acc.value <= acc.ci_high
    assert findings["perplexity"].estimate.value > 1
    spec_back = RunSpec.from_dict(store.get_run(out.run_id).spec)
    assert spec_back.probes[0].config["n"] == 12 and spec_back.probes[0].config["shots"] == 0  # defaults stored

    from lmcritic.report.markdown import write_report

    text = write_report(store, out.run_id, tmp_path / "r" / "report.md").read_text()
    assert "## Scorecard" in text and "performance.sst2" in text and "Worst spans" in text


def test_same_results_from_cache_and_replay(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    a = runner.run(_spec(tiny_causal_dir), model=tiny_causal)
    b = runner.run(RunSpec.from_dict(runner.store.get_run(a.run_id).spec), model=tiny_causal)
    ra = runner.store.records(a.run_id, "performance.sst2")
    rb = runner.store.records(b.run_id, "performance.sst2")
    assert [r.scores for r in ra] == [r.scores for r in rb]
    assert runner.store.get_run(b.run_id).timings["cache"]["misses"] == 0


def test_planner_skips_with_reason_before_running(tmp_path, tiny_classifier) -> None:
    # a classifier head runs its own task (performance.sst2 through classify); these need log-probs or generation
    spec = RunSpec(model=ModelSpec(name="x"),
                   probes=(SMALL[1], ProbeSpec("performance.task", {"task": "mc_knowledge"})))
    plan = make_plan(spec, tiny_classifier)
    assert all(item.skip_reason and ("loglikelihood" in item.skip_reason or "rolling" in item.skip_reason)
               for item in plan)
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(spec, model=tiny_classifier)
    assert out.status == "failed" and "no probe could run" in out.message  # nothing measured is not "done"
    assert {p.status for p in runner.store.probe_runs(out.run_id)} == {"skipped"}


def test_budget_interrupts_then_resume_finishes(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(_spec(tiny_causal_dir, budget=BudgetSpec(max_queries=10)), model=tiny_causal)
    assert out.status == "interrupted" and "--resume" in out.message
    stored = len(runner.store.records(out.run_id, "performance.sst2"))
    assert stored < 12
    runner2 = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    big = _spec(tiny_causal_dir, budget=BudgetSpec(max_queries=1000))
    done = runner2.run(big, resume=out.run_id, model=tiny_causal)
    assert done.status == "done" and done.run_id == out.run_id
    assert len(runner2.store.records(out.run_id, "performance.sst2")) == 12


SCRIPT = textwrap.dedent("""
    import sys, time
    from lmcritic.backends.hf import HFBackend
    from lmcritic.probes import PROBES
    from lmcritic.probes.performance.sst2 import SST2Accuracy
    from lmcritic.runner import Runner
    from lmcritic.spec import RunSpec, ProbeSpec
    from lmcritic.backends import ModelSpec

    class Slow(SST2Accuracy):
        chunk_size = 4
        def score(self, model, cases):
            calls = open(sys.argv[4], "a"); calls.write(f"{len(cases)}\\n"); calls.close()
            time.sleep(0.3)
            return super().score(model, cases)

    PROBES.add("test.slow", Slow)
    spec = RunSpec(model=ModelSpec(name=sys.argv[1]), probes=(ProbeSpec("test.slow", {"n": 40}),))
    runner = Runner(sys.argv[2] + "/runs.sqlite", sys.argv[2] + "/cache.sqlite", progress=False)
    resume = sys.argv[3] if sys.argv[3] != "-" else None
    out = runner.run(spec, resume=resume, model=HFBackend(model=sys.argv[1]))
    print(out.run_id, out.status)
""")


def test_killed_run_resumes_without_recomputing(tmp_path, tiny_causal_dir) -> None:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    calls = tmp_path / "calls.txt"
    args = [sys.executable, str(script), str(tiny_causal_dir), str(tmp_path)]
    proc = subprocess.Popen(args + ["-", str(calls)], stdout=subprocess.PIPE, text=True)
    db = tmp_path / "runs.sqlite"
    deadline = time.time() + 60
    while time.time() < deadline and _count(db) < 12:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = _count(db)
    assert 12 <= finished < 40, "the kill should land mid-probe"
    run_id = sqlite3.connect(db).execute("select id from runs").fetchone()[0]
    calls.write_text("")
    out = subprocess.run(args + [run_id, str(calls)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [run_id, "done"]
    rescored = sum(int(x) for x in calls.read_text().split())
    assert rescored == 40 - finished  # only unfinished cases went back to the probe
    assert _count(db) == 40


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return sqlite3.connect(db).execute("select count(*) from cases").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_stages_run_after_probes_once_and_resume_skips_them(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    """A stage sees the probes' records through the cached model, stores its own; resume does not redo it."""
    from lmcritic.errors import ConfigError
    from lmcritic.probes.base import Record
    from lmcritic.requests import LoglikelihoodRequest
    from lmcritic.spec import StageSpec
    from lmcritic.stages import STAGES

    calls: list[int] = []

    def count_wrong(ctx, top: int = 3) -> None:
        wrong = [r for r in ctx.store.records(ctx.run_id, "performance.sst2") if not r.passed][:top]
        lls = ctx.model.loglikelihood([LoglikelihoodRequest(r.input["prompt"], " maybe") for r in wrong])
        calls.append(len(wrong))
        recs = [Record(f"x-{r.case_id}", {}, {"ll": x.logprob}, {}) for r, x in zip(wrong, lls)]
        ctx.store.add_records(ctx.run_id, "stage:test.count_wrong", recs)

    STAGES.add("test.count_wrong", count_wrong)
    spec = _spec(tiny_causal_dir, stages=(StageSpec("test.count_wrong", {"top": 2}),))
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(spec, model=tiny_causal)
    assert out.status == "done" and calls == [2]
    assert len(runner.store.records(out.run_id, "stage:test.count_wrong")) == 2
    assert RunSpec.from_dict(runner.store.get_run(out.run_id).spec).stages == spec.stages  # replayable
    runner.run(spec, resume=out.run_id, model=tiny_causal)
    assert calls == [2]
    with pytest.raises(ConfigError, match="did you mean 'top'"):
        RunSpec.from_dict({"model": "x", "probes": ["performance.sst2"],
                           "stages": [{"name": "test.count_wrong", "config": {"tops": 1}}]})
    with pytest.raises(ConfigError, match="stages"):
        RunSpec.from_dict({"model": "x", "probes": ["performance.sst2"], "stages": ["test.count_wrongg"]})


def test_a_failed_stage_makes_the_run_partial(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    """A diagnosis stage that failed (a training corpus with no text) printed its error and left the run "done",
    exit 0: the stage writes no probe row, and only probe rows were counted."""
    from lmcritic.spec import StageSpec

    empty = tmp_path / "train.tsv"
    empty.write_text("id\tlabel\n1\t0\n")
    spec = RunSpec(model=ModelSpec(name=str(tiny_causal_dir)), probes=(ProbeSpec("performance.sst2", {"n": 8}),),
                   stages=(StageSpec("diagnose", {"train": str(empty)}),))
    out = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False).run(spec, model=tiny_causal)
    assert out.status == "partial" and "1 of 2 probes/stages failed, 0 with failing cases" in out.message
    assert any(e.startswith("stage diagnose: ") and "no text column (columns: id, label)" in e
               for e in out.errors), out.errors


def test_builtin_stages_explain_and_diagnose_a_run(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    """The scan's stages on a real (tiny) run: explanations and the defect graph land in the run."""
    from lmcritic.spec import StageSpec

    stages = (StageSpec("interpret.explain", {"k": 2}), StageSpec("diagnose", {"max_queries": 300, "max_cases": 6}))
    spec = RunSpec(model=ModelSpec(name=str(tiny_causal_dir)), probes=(ProbeSpec("performance.sst2", {"n": 24}),),
                   stages=stages)
    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    out = runner.run(spec, model=tiny_causal)
    status = {s.stage: s.status for s in runner.store.stage_runs(out.run_id)}
    assert status == {"interpret.explain": "done", "diagnose": "done"}, status
    kinds = {p.probe_key: p.kind for p in runner.store.probe_runs(out.run_id)}
    assert kinds["performance.sst2"] == "probe" and kinds["interpret.explanations"] == kinds["diagnose"] == "stage"
    assert len(runner.store.records(out.run_id, "interpret.explanations")) == 2
    assert any(f.probe.startswith("diagnose") for f in runner.store.findings(out.run_id))
