"""Probes by area. Registered lazily so listing them imports nothing heavy."""
from __future__ import annotations

from lmcritic.probes.base import Case, Estimate, Finding, Probe, Record, Severity, Verdict
from lmcritic.registry import Registry

PROBES: Registry[type[Probe]] = Registry("probes", subclass_of=Probe)
# performance
PROBES.add("performance.sst2", "lmcritic.probes.performance.sst2:SST2Accuracy")
PROBES.add("performance.perplexity", "lmcritic.probes.performance.perplexity:Perplexity")
PROBES.add("performance.generation", "lmcritic.probes.performance.generation:GenerationQuality")
PROBES.add("performance.efficiency", "lmcritic.probes.performance.efficiency:Efficiency")
PROBES.add("performance.quantization", "lmcritic.probes.performance.quantization:QuantizationCost")
PROBES.add("performance.task", "lmcritic.probes.performance.task:TaskProbe")
PROBES.add("performance.crosslingual", "lmcritic.probes.performance.crosslingual:CrossLingual")
# robustness
PROBES.add("robustness.invariance", "lmcritic.probes.robustness.invariance:Invariance")
PROBES.add("robustness.directional", "lmcritic.probes.robustness.directional:Directional")
PROBES.add("robustness.register", "lmcritic.probes.robustness.register:RegisterShift")
PROBES.add("robustness.mft", "lmcritic.probes.robustness.mft:MinimumFunctionality")
PROBES.add("robustness.injection", "lmcritic.probes.robustness.injection:PromptInjection")
PROBES.add("robustness.attack", "lmcritic.probes.robustness.attack:AttackProbe")
PROBES.add("robustness.detect", "lmcritic.probes.robustness.detect:DetectAdversarial")
# bias
PROBES.add("bias.crows_pairs", "lmcritic.probes.bias.crows_pairs:CrowSPairs")
PROBES.add("bias.stereoset", "lmcritic.probes.bias.stereoset:StereoSet")
PROBES.add("bias.counterfactual", "lmcritic.probes.bias.counterfactual:Counterfactual")
PROBES.add("bias.generation", "lmcritic.probes.bias.generation:GenerationBias")
PROBES.add("bias.classifier_fairness", "lmcritic.probes.bias.classifier_fairness:ClassifierFairness")
PROBES.add("bias.data_skew", "lmcritic.probes.bias.data_skew:DataSkew")
# safety
PROBES.add("safety.toxicity", "lmcritic.probes.safety.toxicity:Toxicity")
PROBES.add("safety.refusal", "lmcritic.probes.safety.refusal:Refusal")
PROBES.add("safety.pii", "lmcritic.probes.safety.pii:PIIElicitation")
PROBES.add("safety.memorization", "lmcritic.probes.safety.memorization:Memorization")
PROBES.add("safety.replay", "lmcritic.probes.safety.replay:Replay")
PROBES.add("safety.jailbreak", "lmcritic.probes.safety.jailbreak:Jailbreak")
PROBES.add("safety.leakage", "lmcritic.probes.safety.leakage:SystemPromptLeakage")
PROBES.add("safety.hallucination", "lmcritic.probes.safety.hallucination:SelfConsistency")
PROBES.add("safety.fabrication", "lmcritic.probes.safety.misinformation:Fabrication")
PROBES.add("safety.misinformation", "lmcritic.probes.safety.misinformation:Misinformation")

__all__ = ["PROBES", "Case", "Estimate", "Finding", "Probe", "Record", "Severity", "Verdict"]
