"""Metrics against values worked out by hand."""
from __future__ import annotations

import pytest

from lmcritic.metrics import METRICS, estimate
from lmcritic.metrics.calibration import accuracy_at_coverage, brier, ece, reliability_bins
from lmcritic.metrics.classification import exact_match, macro_f1, token_f1


def test_ece_by_hand() -> None:
    # bins (0.8,0.9], (0.7,0.8], (0.5,0.6], (0.9,1.0] hold one case each
    assert ece([0.9, 0.8, 0.6, 0.95], [1, 0, 1, 1]) == pytest.approx((0.1 + 0.8 + 0.4 + 0.05) / 4)
    bins = reliability_bins([0.9, 0.8, 0.6, 0.95], [1, 0, 1, 1])
    assert sum(b["count"] for b in bins) == 4 and bins[7]["accuracy"] == 0.0


def test_brier_and_coverage() -> None:
    assert brier([[0.2, 0.8], [0.9, 0.1]], [1, 0]) == pytest.approx((0.04 + 0.04 + 0.01 + 0.01) / 2)
    assert accuracy_at_coverage([0.9, 0.1, 0.8, 0.2], [1, 0, 1, 1], (0.5, 1.0)) == {0.5: 1.0, 1.0: 0.75}


def test_f1_and_exact_match() -> None:
    # class 1: tp=3 fp=1 fn=0 → 6/7; class 0: tp=2 fp=0 fn=1 → 4/5
    assert macro_f1([1, 0, 1, 1, 0, 1], [1, 0, 0, 1, 0, 1]) == pytest.approx((6 / 7 + 4 / 5) / 2)
    assert exact_match(["The Eiffel tower!"], ["eiffel tower"]) == 1.0
    assert token_f1(["Paris France"], ["Paris"]) == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_estimate_has_ci_and_checks_columns() -> None:
    est = estimate("accuracy", {"predictions": [1, 1, 0, 1] * 10, "references": [1] * 40})
    assert est.n == 40 and est.ci_low <= 0.75 <= est.ci_high
    assert "ece" in METRICS.names()
    with pytest.raises(Exception, match="needs column"):
        estimate("ece", {"confidences": [0.5]})
