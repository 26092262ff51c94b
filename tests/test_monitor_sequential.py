"""Sequential (CUSUM) alert rules: calibrated under no change, a change caught from a mid-window onset, an
accumulating small shift caught where no single window is significant, restart after an alert."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmcritic.errors import ConfigError
from lmcritic.monitor.alerts import Rule
from lmcritic.monitor.sequential import Cusum, design
from test_monitor import checked, load, traffic


def bernoulli(rng: np.random.Generator, p: float, n: int) -> list[float]:
    return (rng.random(n) < p).astype(float).tolist()


def test_window_p_values_are_calibrated_under_no_change() -> None:
    rng = np.random.default_rng(1)
    d = design("rate", 0.02, "up", k=40, n=2000)  # reference rate 2%
    assert d is not None
    chart = Cusum(d, seed=3)
    ps = [chart.update(bernoulli(rng, 0.02, 200))[0] for _ in range(60)]
    assert 0.35 < float(np.mean(ps)) < 0.65  # uniform under no change: mean 1/2
    assert sum(p < 0.05 for p in ps) <= 8  # 3 expected


def test_mean_charts_are_calibrated_on_the_reference_sample() -> None:
    rng = np.random.default_rng(2)
    sample = rng.exponential(1.0, 3000).tolist()  # skewed: a Gaussian calibration would be off
    d = design("mean", 0.5, "both", sample=sample)
    assert d is not None and len(d.a) == 8
    chart = Cusum(d, seed=4)
    ps = [chart.update(rng.exponential(1.0, 150).tolist())[0] for _ in range(40)]
    assert 0.3 < float(np.mean(ps)) < 0.7
    p, effect = chart.update(rng.exponential(2.0, 150).tolist())  # mean 1 -> 2
    assert p < 0.001 and 0.5 < effect < 1.6


def test_a_small_persistent_shift_accumulates_across_windows() -> None:
    """+1.5 points on a 1% rate: no 300-request window is significant alone, the chart gets there."""
    rng = np.random.default_rng(5)
    d = design("rate", 0.01, "up", k=40, n=4000)
    assert d is not None
    chart = Cusum(d, seed=1)
    for _ in range(5):
        chart.update(bernoulli(rng, 0.01, 300))
    ps = [chart.update(bernoulli(rng, 0.025, 300))[0] for _ in range(8)]
    assert min(ps) < 1e-3


def test_restart_needs_new_evidence() -> None:
    rng = np.random.default_rng(7)
    d = design("rate", 0.05, "up", k=20, n=2000)
    assert d is not None
    chart = Cusum(d, seed=2)
    p, effect = chart.update(bernoulli(rng, 0.01, 100) + bernoulli(rng, 0.3, 100))
    assert p < 1e-3 and 0.15 < effect < 0.45  # the shift since the change point, not the diluted window
    chart.restart()
    assert chart.fresh and not chart.s.any()
    assert chart.update(bernoulli(rng, 0.01, 200))[0] > 0.01


def test_no_design_without_room_for_the_shift() -> None:
    assert design("rate", 0.05, "down", k=2, n=2000) is None  # 0.1% cannot fall by 5 points
    assert design("mean", 0.1, "up", sample=[1.0]) is None


def test_mid_window_onset_alerts_in_that_window(tmp_path: Path) -> None:
    """PII 1% -> 8% from request 750 on, windows of 300: the window change test needs the fully changed window 900-1200
    (the half-changed one's rate is diluted); the CUSUM rule already alerts in 600-900."""
    from lmcritic.store.monitor import MonitorStore

    with MonitorStore(tmp_path / "runs.sqlite") as store:
        load(tmp_path, traffic(1200, pii_from=750, high=0.08), store)
        seq = checked(store, [Rule("response.pii", "cusum", 0.06, min_n=100)])
        win = checked(store, [Rule("response.pii", "change", 0.06, min_n=100)])
    assert [len(w.alerts) for w in seq.windows] == [0, 0, 1, 1]
    assert [len(w.alerts) for w in win.windows] == [0, 0, 0, 1]
    diluted = next(t for t in win.windows[2].tests if t.test == "change")
    assert diluted.p_adj < 0.01 and diluted.effect < 0.06  # significant, but the half window looks too small
    alert = seq.windows[2].alerts[0]
    assert alert.test.method == "cusum" and alert.test.effect > 0.03 and alert.evidence
    assert alert.at_request is not None and 751 <= alert.at_request <= 900  # ids from 1: the onset is #751
    assert f"request #{alert.at_request}" in alert.message


def test_cusum_rules_validate_and_fall_back_under_previous(tmp_path: Path) -> None:
    from lmcritic.store.monitor import MonitorStore

    with pytest.raises(ConfigError, match="threshold > 0"):
        Rule("response.pii", "cusum", 0.0)
    with pytest.raises(ConfigError, match="drift only"):
        Rule("prompt.language", "cusum", 0.1)
    with MonitorStore(tmp_path / "runs.sqlite") as store:
        load(tmp_path, traffic(900, pii_from=600), store)
        result = checked(store, [Rule("response.pii", "cusum", 0.05, min_n=100)], reference="previous")
    assert any("window change tests" in n for n in result.notes)
    assert result.alerts and all(a.test.test == "change" for a in result.alerts)


def test_p_values_resolve_beyond_the_simulation() -> None:
    """A raw Monte Carlo p-value stops at (1 + charts)/(B+1) ≈ 5e-4, above BH's bar for a lone signal among ~30
    tests at 0.01 (3.3e-4); the extrapolated tail goes on, and stays ordered with the evidence."""
    rng = np.random.default_rng(11)
    d = design("rate", 0.01, "up", k=8, n=4000)  # 0.2% in the reference, like rare injection flags
    assert d is not None
    ps = []
    for extra in (0.02, 0.04, 0.08):
        chart = Cusum(d, seed=5)
        for _ in range(3):
            chart.update(bernoulli(rng, 0.002, 500))
        ps.append(chart.update(bernoulli(rng, 0.002, 250) + bernoulli(rng, extra, 250))[0])
    assert ps[2] < 1e-5 and ps[1] < ps[0] + 1e-12 and ps[2] < ps[1]
    assert all(p > 0 for p in ps)


def test_rate_charts_fit_a_likelihood_ratio_tail() -> None:
    """A CUSUM of log-likelihood ratios has window maxima with an exponential tail of rate about 1 (Wald); the
    fit (a lower confidence bound, and the Jeffreys spread of the reference rate) sits a little under it."""
    d = design("rate", 0.05, "up", k=200, n=4000)
    assert d is not None
    chart = Cusum(d, seed=1)
    chart.fresh = False
    rates = chart.tail_fit(500)
    assert all(0.6 < r < 1.15 for r in rates)


def test_running_p_values_name_where_the_evidence_sufficed() -> None:
    from lmcritic.monitor.sequential import first_below

    rng = np.random.default_rng(3)
    d = design("rate", 0.02, "up", k=40, n=2000)
    assert d is not None
    chart = Cusum(d, seed=9)
    chart.update(bernoulli(rng, 0.02, 400))
    p, _ = chart.update(bernoulli(rng, 0.02, 200) + bernoulli(rng, 0.25, 200))
    run = chart.running
    assert len(run) == 400 and run[-1] == p and np.all(np.diff(run) <= 1e-12)
    at = first_below(run, 1e-4)
    assert at is not None and 200 <= at < 260  # after the onset, within a few dozen changed requests
    assert first_below(run, 0.0) is None
