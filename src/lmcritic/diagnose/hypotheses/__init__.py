"""Cause hypotheses, registered lazily (a plug-in adds ``HYPOTHESES.add("name", "pkg.mod:Class")`` or an
entry point in the group ``lmcritic.hypotheses``)."""
from __future__ import annotations

from lmcritic.registry import Registry

HYPOTHESES: Registry = Registry("hypotheses", subclass_of="lmcritic.diagnose.hypotheses.base:Hypothesis")
HYPOTHESES.add("data_bias", "lmcritic.diagnose.hypotheses.data_bias:DataBias")
HYPOTHESES.add("fragility", "lmcritic.diagnose.hypotheses.fragility:Fragility")
HYPOTHESES.add("generalization_mismatch", "lmcritic.diagnose.hypotheses.mismatch:GeneralizationMismatch")
HYPOTHESES.add("objective_conflict", "lmcritic.diagnose.hypotheses.objective:ObjectiveConflict")
HYPOTHESES.add("spurious_feature", "lmcritic.diagnose.hypotheses.spurious:SpuriousFeature")
HYPOTHESES.add("memorization", "lmcritic.diagnose.hypotheses.memorization:Memorization")
HYPOTHESES.add("label_noise", "lmcritic.diagnose.hypotheses.label_noise:LabelNoise")

__all__ = ["HYPOTHESES"]
