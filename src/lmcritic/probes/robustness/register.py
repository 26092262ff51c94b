"""Register shift as its own axis: the same SST-2 sentences written formally and colloquially (slang,
abbreviations, dropped articles, emoji, lower case), compared pairwise. The gap is formal minus
colloquial accuracy on the same sentences, with a paired bootstrap CI and an exact McNemar test."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from lmcritic import stats
from lmcritic._serde import to_jsonable
from lmcritic.findings import make_finding, rate_severity
from lmcritic.perturb import PERTURBATIONS, perturbation
from lmcritic.plots import to_details
from lmcritic.probes.base import Finding, Record
from lmcritic.probes.robustness._suite import PairedSuite, SuiteConfig, Variant, bars, perturbation_languages

if TYPE_CHECKING:
    import random
    from typing import Callable


@dataclass(frozen=True)
class RegisterConfig(SuiteConfig):
    max_gap: float = 0.05  # formal minus colloquial accuracy tolerated
    swap_rate: float = 0.7  # ToColloquial: chance of rewriting each slang-lexicon match
    emoji: float = 0.5
    filler: float = 0.3
    formal: str = "to_formal"  # the register pair's perturbations (Chinese: zh_to_formal / zh_to_colloquial)
    colloquial: str = "to_colloquial"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in (self.formal, self.colloquial):
            if name not in PERTURBATIONS:
                raise ValueError(PERTURBATIONS.unknown_message(name))


class RegisterShift(PairedSuite):
    name = "robustness.register"
    Config = RegisterConfig

    def supported_languages(self) -> frozenset[str] | None:
        a, b = (perturbation_languages([n]) for n in (self.config.formal, self.config.colloquial))
        return b if a is None else a if b is None else a & b

    def language_hint(self) -> str:
        return "; set formal/colloquial to a pair written for it (Chinese: zh_to_formal, zh_to_colloquial)"

    def variants(self, text: str, rng_for: Callable[[str], random.Random]) -> list[Variant]:
        cfg = self.config
        formal = perturbation(cfg.formal)(text, rng_for("to_formal"))
        formal_text, formal_edits = formal if formal else (text, ())
        colloquial = perturbation(cfg.colloquial, swap_rate=cfg.swap_rate, emoji=cfg.emoji,
                                  filler=cfg.filler)(formal_text, rng_for("to_colloquial"))
        if colloquial is None:
            return [Variant("formal", formal_text, formal_edits, text)]
        # the colloquial text is made from (and its edits refer to) the formal one: the pair differs in register only
        return [Variant("formal", formal_text, formal_edits, text),
                Variant("colloquial", colloquial[0], colloquial[1], formal_text, "formal")]

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        formal = {r.tags["line"]: r for r in records if r.tags["perturbation"] == "formal"}
        pairs = [(formal[r.tags["line"]], r) for r in records
                 if r.tags["perturbation"] == "colloquial" and r.tags["line"] in formal]
        if not pairs:
            return []
        f_ok = [a.scores["correct"] > 0 for a, _ in pairs]
        c_ok = [b.scores["correct"] > 0 for _, b in pairs]
        gap, p_boot = stats.paired_bootstrap([float(x) for x in c_ok], [float(x) for x in f_ok])
        p_mc = stats.mcnemar(f_ok, c_ok)
        acc_f, acc_c = stats.proportion(f_ok), stats.proportion(c_ok)
        flips = stats.proportion([b.scores["flipped"] > 0 for _, b in pairs])
        # threshold-free: p(true label) lost to the colloquial rewrite, paired (visible even when a label prior
        # keeps every prediction, and so the accuracy gap, unchanged)
        shift = stats.mean([-b.scores["delta_p_true"] for _, b in pairs])
        clean = stats.proportion([a.scores["reference_correct"] > 0 for a, _ in pairs])
        lost = sorted((b for a, b in pairs if a.scores["correct"] > 0 and not b.scores["correct"] > 0),
                      key=lambda r: r.scores["delta_p_true"])
        fail = gap.value > self.config.max_gap
        return [make_finding(
            probe=self.name, name="register_gap", failed=fail,
            severity=rate_severity(gap.value, gap.ci_low, self.config.max_gap, min(p_mc, p_boot) < 0.05),
            summary=f"formal accuracy {acc_f.value:.3f} vs colloquial {acc_c.value:.3f} on the same {len(pairs)} "
            f"sentences: gap {gap} (McNemar p={p_mc:.3g}); predictions change on {flips} of pairs; mean p(true label) "
            f"lost formal → colloquial {shift}",
            estimate=gap, evidence=tuple(r.case_id for r in lost[:10]),
            details={"formal_accuracy": to_jsonable(acc_f), "colloquial_accuracy": to_jsonable(acc_c),
                     "clean_accuracy": to_jsonable(clean), "flip_rate": to_jsonable(flips),
                     "p_mcnemar": p_mc, "p_bootstrap": p_boot, "p_true_drop": to_jsonable(shift),
                     "plots": to_details(bars("Accuracy by register (95% CI)", ["original", "formal", "colloquial"],
                                  [clean, acc_f, acc_c])),
                     "examples": [{"formal": a.input["text"], "colloquial": b.input["text"]} for a, b in pairs[:5]]},
        )]
