"""Probes by area. Registered lazily so listing them imports nothing heavy."""
from __future__ import annotations

from lmcritic.probes.base import Case, Estimate, Finding, Probe, Record, Severity, Verdict
from lmcritic.registry import Registry

PROBES: Registry[type[Probe]] = Registry("probes")
PROBES.add("performance.sst2", "lmcritic.probes.performance.sst2:SST2Accuracy")
PROBES.add("performance.perplexity", "lmcritic.probes.performance.perplexity:Perplexity")
PROBES.add("performance.generation", "lmcritic.probes.performance.generation:GenerationQuality")

__all__ = ["PROBES", "Case", "Estimate", "Finding", "Probe", "Record", "Severity", "Verdict"]
PROBES.add("performance.efficiency", "lmcritic.probes.performance.efficiency:Efficiency")
PROBES.add("performance.quantization", "lmcritic.probes.performance.quantization:QuantizationCost")
