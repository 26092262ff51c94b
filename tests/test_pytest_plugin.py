"""Statistical assertions, the pytest plugin (a real pytest process per check) and `lmcritic export-tests`.

The runs come from two importable classifiers with planted accuracies on the 300-sentence SST-2 sample
(`_toy_classifiers`: good ~0.95, worse ~0.70), scanned through the python backend.
"""
from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmcritic import stats
from lmcritic.probes.base import Estimate
from lmcritic.testing import CritiqueAssertionError, Pin, assert_finding, check_finding, check_not_worse

HERE = Path(__file__).resolve().parent
SST2 = {"name": "performance.task", "key": "sst2", "config": {"task": "sst2"}}
CLASSIFY = {"task": "classify", "labels": ["negative", "positive"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import lmcritic

    sys.path.insert(0, str(HERE))
    import _toy_classifiers as toy

    tmp = tmp_path_factory.mktemp("plugin")
    where = {"store": tmp / "runs.sqlite", "cache": tmp / "cache.sqlite", "progress": False}
    good = lmcritic.scan(toy.good, options=CLASSIFY, probes=[SST2], stages=False, **where)
    worse = lmcritic.scan(toy.worse, options=CLASSIFY, probes=[SST2], stages=False, **where)
    return tmp, good, worse


# -- the statistics -----------------------------------------------------------------------------------
def test_bounds_match_the_stored_interval_and_wilson() -> None:
    boot = Estimate(0.5, 40, 0.38, 0.66, "bootstrap")
    assert stats.one_sided_bound(boot, 0.025, "lower") == pytest.approx(0.38)  # the stored 95% ends
    assert stats.one_sided_bound(boot, 0.025, "upper") == pytest.approx(0.66)
    assert 0.38 < stats.one_sided_bound(boot, 0.05, "lower") < 0.5  # one-sided 95%: tighter, still skewed
    k, n = 170, 200
    lo, hi = stats.wilson(k, n)
    est = Estimate(k / n, n, lo, hi, "wilson")
    assert stats.one_sided_bound(est, 0.05, "lower") == pytest.approx(stats.wilson(k, n, 0.90)[0])


def test_difference_interval_is_newcombes_for_proportions() -> None:
    """Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 - 48/80, method 10: [0.0524, 0.3339]."""
    a, b = (Estimate(56 / 70, 70, *stats.wilson(56, 70), "wilson"), Estimate(48 / 80, 80, *stats.wilson(48, 80),
                                                                             "wilson"))
    low, high = stats.difference_interval(a, b)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_type_one_error_of_the_assertions_is_at_most_alpha() -> None:
    """At the boundary (true accuracy exactly 0.8) `ge=0.8` passes in at most ~alpha of samples; with no change,
    the regression pin fails in at most ~alpha of pairs of runs."""
    rng = np.random.default_rng(0)
    n, alpha, p = 200, 0.05, 0.8
    ks = rng.binomial(n, p, size=4000)
    passes = np.mean([stats.one_sided_bound(Estimate(k / n, n, *stats.wilson(k, n), "wilson"), alpha, "lower")
                      >= p for k in ks])
    assert passes <= alpha + 0.01
    regress = 0
    for k0, k1 in zip(ks[:2000], ks[2000:]):
        old, new = (Estimate(k / n, n, *stats.wilson(k, n), "wilson") for k in (k0, k1))
        regress += stats.difference_interval(new, old, 1 - 2 * alpha)[1] < 0
    assert regress / 2000 <= alpha + 0.01


# -- assertions on real runs ---------------------------------------------------------------------------
def test_assert_finding_needs_the_interval_not_just_the_point(runs) -> None:
    _, good, _ = runs
    acc = good.finding("sst2:acc").estimate
    assert acc.value > 0.93  # the point estimate clears 0.93 ...
    assert not check_finding(good, "sst2:acc", ge=0.93).passed  # ... but 300 cases do not show it at alpha 0.05
    assert_finding(good, "sst2:acc", ge=0.9, alpha=0.05)
    with pytest.raises(CritiqueAssertionError, match=r"does not support ≥ 0.93 .* lower bound 0\.9"):
        assert_finding(good, "sst2:acc", ge=0.93)
    assert check_finding(good, "sst2:ece", le=0.1).passed
    missing = check_finding(good, "sst2:acc_norm", ge=0.5)
    assert not missing.passed and "did you mean" in missing.message


def test_regression_pin_passes_on_itself_and_fails_on_worse(runs) -> None:
    from lmcritic.testing import pin_of

    _, good, worse = runs
    pin = pin_of(good.finding("sst2:acc"))
    assert pin.higher_is_better is True and pin.method == "wilson"
    assert check_not_worse(good, pin).passed
    failed = check_not_worse(worse, pin)
    assert not failed.passed and "significantly worse" in failed.message
    ece = pin_of(good.finding("sst2:ece"))
    assert ece.higher_is_better is False and not check_not_worse(worse, ece).passed  # ECE rose: worse
    verdict_only = Pin("sst2:acc", verdict="pass")
    assert not check_not_worse(worse, verdict_only).passed  # acc fails in the worse run


# -- the plugin and export-tests, in real pytest processes ------------------------------------------------
def pytest_in(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "LMCRITIC_HOME": str(tmp / "home")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *args],
                          capture_output=True, text=True, cwd=tmp, env=env, timeout=300)


def test_plugin_shows_a_passing_and_a_failing_statistical_assertion(runs) -> None:
    tmp, _, _ = runs
    (tmp / "test_model_quality.py").write_text(
        "import pytest\n"
        "from lmcritic.testing import assert_finding\n\n"
        "pytestmark = pytest.mark.lmcritic(model={'name': '_toy_classifiers:good', 'backend': 'python', "
        "'options': {'task': 'classify', 'labels': ['negative', 'positive']}}, probes=[" + repr(SST2) + "])\n\n"
        "def test_accuracy_at_least_0_9(lmcritic_results):\n"
        "    assert_finding(lmcritic_results, 'sst2:acc', ge=0.9, alpha=0.05)\n\n"
        "def test_accuracy_at_least_0_93(lmcritic_results):\n"
        "    assert_finding(lmcritic_results, 'sst2:acc', ge=0.93, alpha=0.05)\n")
    proc = pytest_in(tmp, "test_model_quality.py", "--lmcritic-store", str(tmp / "runs.sqlite"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "PASSED test_model_quality.py::test_accuracy_at_least_0_9" in proc.stdout
    assert "FAILED test_model_quality.py::test_accuracy_at_least_0_93" in proc.stdout
    assert "does not support ≥ 0.93" in proc.stdout and "1 failed, 1 passed" in proc.stdout


def test_export_tests_round_trips(runs) -> None:
    from lmcritic.cli.main import main

    tmp, good, worse = runs
    out = tmp / "test_pinned.py"
    assert main(["export-tests", good.run_id, "--store", str(tmp / "runs.sqlite"), "-o", str(out)]) == 0
    source = out.read_text()
    literals_only(source)
    store = ["--lmcritic-store", str(tmp / "runs.sqlite")]
    same = pytest_in(tmp, out.name, "--lmcritic-run", good.run_id, *store)
    assert same.returncode == 0 and "5 passed" in same.stdout, same.stdout + same.stderr
    bad = pytest_in(tmp, out.name, "--lmcritic-run", worse.run_id, *store)
    assert bad.returncode == 1 and "FAILED test_pinned.py::test_not_worse[sst2:acc]" in bad.stdout, bad.stdout
    assert "significantly worse" in bad.stdout
    rerun = pytest_in(tmp, out.name, *store)  # no run given: the marker's spec critiques the model again
    assert rerun.returncode == 0 and "5 passed" in rerun.stdout, rerun.stdout + rerun.stderr


def literals_only(source: str) -> None:
    """The generated file: SPEC and the pins are literals, so nothing stored can have become code."""
    tree = ast.parse(source)
    assigned = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    ast.literal_eval(assigned["SPEC"])
    for call in assigned["PINS"].elts:
        assert isinstance(call, ast.Call) and call.func.id == "Pin" and not call.args
        values = [ast.literal_eval(k.value) for k in call.keywords]
        assert all(not isinstance(v, float) or math.isfinite(v) for v in values)
