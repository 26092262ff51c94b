"""The per-cause plots of a diagnosis finding: a ranking score has no interval; the tests' effects carry theirs."""
from __future__ import annotations

from lmcritic.diagnose.defects import Defect
from lmcritic.diagnose.graph import DefectNode
from lmcritic.diagnose.hypotheses.base import CauseVerdict
from lmcritic.diagnose.storage import _finding
from lmcritic.probes.base import Estimate
from lmcritic.report._plots_data import finding_plots
from lmcritic.report.markdown import _plot


def node() -> DefectNode:
    defect = Defect("D1", "performance.sst2", "sst2", "all cases", (), ("a", "b"), ("a", "b", "c"),
                    Estimate(0.525, 40, 0.375, 0.67, "wilson"))
    causes = (CauseVerdict("objective_conflict", "inconclusive", 0.2375, "s", tests_run=3,
                           effect=Estimate(0.19, 40, 0.05, 0.31, "paired bootstrap")),
              CauseVerdict("label_noise", "inconclusive", 0.2, "s", tests_run=0))
    return DefectNode(defect, causes)


def test_confidence_is_drawn_without_a_fake_interval() -> None:
    ranking, effects = _finding(node()).details["plots"]
    assert ranking["values"] == [0.2375, 0.2] and ranking.get("ci_low") is None and ranking.get("n") is None
    assert effects["values"] == [0.19, None] and effects["ci_low"] == [0.05, None] and effects["n"] == [40, None]
    ranking_table, effect_table = ("\n".join(_plot(p)) for p in finding_plots(_finding(node()).details))
    assert "[0.2375, 0.2375]" not in ranking_table and "| objective\\_conflict | 0.2375 |  |  |" in ranking_table
    assert "| objective\\_conflict | 0.19 | [0.05, 0.31] | 40 |" in effect_table
