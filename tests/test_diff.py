"""Run comparison (paired tests, BH), the diff command and the CI gate."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmcritic import stats
from lmcritic.probes.base import Estimate, Finding, Record, Severity, Verdict
from lmcritic.report.compare import compare_records, compare_runs, higher_is_better, two_sample_bootstrap
from lmcritic.store.runs import RunStore


def recs(passed: list[bool], score: list[float] | None = None, prefix: str = "c") -> list[Record]:
    score = score if score is not None else [float(p) for p in passed]
    return [Record(f"{prefix}{i}", {"text": f"t{i}"}, {}, {"correct": float(p), "nll": s, "n_words": float(i % 7)},
                   {}, p)
            for i, (p, s) in enumerate(zip(passed, score))]


def synthetic_run(store: RunStore, passed: list[bool], nll: list[float], failing: tuple[str, ...] = (),
                  prefix: str = "c") -> str:
    run_id = store.create_run({"model": {"name": "m"}}, {"name": "m"}, "fp")
    store.start_probe(run_id, "performance.toy", "performance.toy", len(passed))
    store.add_records(run_id, "performance.toy", recs(passed, nll, prefix))
    findings = [Finding("performance.toy", name, Verdict.FAIL if name in failing else Verdict.PASS,
                        Severity.HIGH if name in failing else Severity.INFO, name, Estimate(0.5, 10, 0.4, 0.6))
                for name in ("accuracy", "skew")]
    store.add_findings(run_id, "performance.toy", findings)
    store.finish_probe(run_id, "performance.toy")
    store.finish_run(run_id, {"total_s": 1.0}, {})
    return run_id


def test_paired_binary_uses_mcnemar() -> None:
    rng = np.random.default_rng(0)
    a = list(rng.random(200) < 0.8)
    b = [x and rng.random() > 0.25 for x in a]  # B loses ~20% of A's passes, gains none
    d = next(m for m in compare_records("p", recs(a), recs(b)) if m.metric == "pass_rate")
    assert d.test == "mcnemar" and d.n_paired == 200
    assert d.p_value == pytest.approx(stats.mcnemar(a, b)) and d.p_value < 1e-6
    assert d.delta.value == pytest.approx(np.mean(b) - np.mean(a)) and d.delta.ci_high < 0
    assert d.regression > 0.1


def test_paired_scores_and_no_change() -> None:
    x = list(np.linspace(1, 3, 50))
    same = compare_records("p", recs([True] * 50, x), recs([True] * 50, x))
    assert all(m.p_value == 1.0 and m.delta.value == 0 for m in same)
    shifted = compare_records("p", recs([True] * 50, x), recs([True] * 50, [v + 0.05 for v in x]))
    nll = next(m for m in shifted if m.metric == "nll")
    assert nll.test == "paired-bootstrap" and nll.p_value < 0.01  # tiny but consistent shift: paired test sees it
    _, p_unpaired = two_sample_bootstrap(x, [v + 0.05 for v in x])
    assert p_unpaired > 0.3  # the same shift is invisible without pairing
    assert nll.higher_is_better is False and nll.regression == pytest.approx(0.05)


def test_unpaired_falls_back_to_two_sample() -> None:
    a = recs([True] * 30, [1.0] * 30, prefix="a")
    b = recs([False] * 30, [2.0] * 30, prefix="b")
    ms = {m.metric: m for m in compare_records("p", a, b)}
    assert ms["pass_rate"].test == "two-sample-bootstrap" and ms["pass_rate"].n_paired == 0
    assert ms["pass_rate"].p_value < 0.01 and ms["nll"].delta.value == pytest.approx(1.0)


def test_direction_rules() -> None:
    assert higher_is_better("bleu") is True and higher_is_better("ece") is False  # from the metrics registry
    assert higher_is_better("token_perplexity") is False and higher_is_better("correct") is True
    assert higher_is_better("n_words") is None


def test_direction_of_rates_and_whole_words() -> None:
    # A throughput ends like a duration (_s) but higher is better; substrings of other words say nothing.
    assert higher_is_better("tokens_per_s") is True and higher_is_better("requests_per_second") is True
    assert higher_is_better("latency_s") is False and higher_is_better("elapsed_s") is False
    assert higher_is_better("max_disagreement") is False and higher_is_better("word_ppl") is False
    assert higher_is_better("after") is None and higher_is_better("applicability") is None
    assert higher_is_better("ter") is False


def test_faster_throughput_is_not_a_regression() -> None:
    # The mitigation re-verification listed tokens_per_s 32.7 -> 66.17 among the "significantly worse" metrics.
    def timed(rate: float, k: int) -> list[Record]:
        return [Record(f"c{i}", {"text": f"t{i}"}, {}, {"tokens_per_s": rate + 0.1 * (i % 3), "latency_s": 1 / rate},
                       {}, True) for i in range(k)]
    ms = {m.metric: m for m in compare_records("performance.efficiency", timed(32.7, 20), timed(66.17, 20))}
    assert ms["tokens_per_s"].p_value < 0.05 and ms["tokens_per_s"].regression < 0
    assert ms["latency_s"].regression < 0  # shorter latency: better too


def test_compare_runs_bh_and_findings(tmp_path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    a = synthetic_run(store, [True] * 60, [1.0] * 60, failing=("skew",))
    b = synthetic_run(store, [True] * 30 + [False] * 30, [1.5] * 60, failing=("accuracy",))
    comp = compare_runs(store, a, b)
    raw = [m.p_value for m in comp.metrics]
    assert [m.p_adjusted for m in comp.metrics] == pytest.approx(stats.benjamini_hochberg(raw))
    changes = {f.name: f.change for f in comp.findings}
    assert changes == {"accuracy": "appeared", "skew": "disappeared"}
    assert {m.key for m in comp.changed()} >= {"performance.toy:pass_rate", "performance.toy:nll"}


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The real command line, in process (fast); `test_gate_subprocess` checks the exit code of the real binary."""
    import contextlib
    import io

    from lmcritic.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    old = os.environ.get("LMCRITIC_HOME")
    os.environ["LMCRITIC_HOME"] = str(home)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.environ.pop("LMCRITIC_HOME") if old is None else os.environ.__setitem__("LMCRITIC_HOME", old)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_gate_subprocess(pair) -> None:
    home, base, worse, _ = pair
    env = {**os.environ, "LMCRITIC_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "lmcritic.cli.main", "gate", worse, "--baseline", base,
                           "--max-regression", "pass_rate=0.02"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 4 and proc.stdout.strip().endswith("gate FAILED"), proc.stderr


@pytest.fixture()
def pair(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    rng = np.random.default_rng(1)
    base = synthetic_run(store, [True] * 100, list(rng.normal(2, 0.1, 100)))
    worse = synthetic_run(store, [True] * 70 + [False] * 30, list(rng.normal(2, 0.1, 100)), failing=("accuracy",))
    slight = synthetic_run(store, [True] * 99 + [False], list(rng.normal(2, 0.1, 100)))
    store.close()
    return tmp_path, base, worse, slight


def test_gate_exit_codes(pair) -> None:
    home, base, worse, slight = pair
    rule = "performance.toy:pass_rate=0.02"
    failed = cli(home, "gate", worse, "--baseline", base, "--max-regression", rule)
    assert failed.returncode == 4 and "gate FAILED" in failed.stdout, failed.stdout + failed.stderr
    assert cli(home, "gate", worse, "--baseline", base, "--max-regression", "pass_rate=0.5").returncode == 0
    # 1 case of 100 lost: beyond 0.002 but not significant (McNemar p = 1), so the gate passes
    assert cli(home, "gate", slight, "--baseline", base, "--max-regression", "pass_rate=0.002").returncode == 0
    assert cli(home, "gate", base, "--baseline", base, "--max-regression", "nll=5%").returncode == 0
    assert cli(home, "gate", base, "--baseline", base, "--max-regression", "n_words=0", "--lower-is-better",
               "n_words").returncode == 0
    new = cli(home, "gate", worse, "--baseline", base, "--fail-on-new-findings")
    assert new.returncode == 4 and "new failing finding performance.toy:accuracy" in new.stdout
    doc = json.loads(cli(home, "gate", worse, "--baseline", base, "--max-regression", rule, "--format",
                         "json").stdout)
    assert doc["failed"] is True and doc["checks"][0]["regression"] == pytest.approx(0.3)


@pytest.mark.parametrize(("args", "expect"), [
    (("--max-regression", "nope=0.1"), "no metric 'nope'"),
    (("--max-regression", "pass_rate"), "not METRIC=TOL"),
    (("--max-regression", "pass_rate=abc"), "not a number"),
    (("--max-regression", "n_words=0.1"), "cannot tell whether higher"),
    ((), "at least one"),
])
def test_gate_bad_input_one_line(pair, args, expect) -> None:
    home, base, worse, _ = pair
    proc = cli(home, "gate", worse, "--baseline", base, *args)
    assert proc.returncode == 2 and expect in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_diff_formats(pair) -> None:
    home, base, worse, _ = pair
    text = cli(home, "diff", base, worse).stdout
    assert "pass_rate" in text and "WORSE" in text and "defects that appeared (fail in B only): 1" in text
    md = cli(home, "diff", base, worse, "--format", "md", "--all").stdout
    assert md.startswith("# Diff") and "| performance.toy | nll |" in md.replace("\\", "")
    doc = json.loads(cli(home, "diff", base, worse, "--format", "json").stdout)
    pr = next(m for m in doc["metrics"] if m["metric"] == "pass_rate")
    assert pr["test"] == "mcnemar" and pr["verdict"] == "WORSE" and pr["significant"] is True


def test_diff_real_runs(tmp_path, tiny_causal_dir, tiny_causal) -> None:
    """Two runs of the same model agree case for case: nothing significant, the gate passes."""
    from lmcritic.backends import ModelSpec
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
    spec = RunSpec(model=ModelSpec(name=str(tiny_causal_dir)), probes=(ProbeSpec("performance.sst2", {"n": 16}),))
    a, b = (runner.run(spec, model=tiny_causal).run_id for _ in range(2))
    comp = compare_runs(runner.store, a, b)
    assert comp.metrics and not comp.changed() and all(m.n_paired == 16 for m in comp.metrics)
    assert all(f.change in ("persists", "unchanged") for f in comp.findings)
