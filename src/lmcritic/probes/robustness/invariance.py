"""CheckList INVariance tests on SST-2 by prompted classification: meaning-preserving perturbations
should not change the prediction. Reports, per perturbation type, accuracy, flip rate and the paired
accuracy drop (McNemar, BH-corrected across types), and HELM's worst-case accuracy across types."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic import stats
from lmcritic.findings import finding_name, make_finding, rate_severity
from lmcritic.perturb import PERTURBATIONS, perturbation
from lmcritic.plots import to_details
from lmcritic.probes.base import Estimate, Finding, Record, Severity
from lmcritic.probes.robustness._suite import (
    PairedSuite,
    SuiteConfig,
    Variant,
    bars,
    binomial_tail,
    perturbation_languages,
)

if TYPE_CHECKING:
    import random
    from typing import Callable

DEFAULT_TYPES = ("typos", "char_noise", "casing", "punctuation", "whitespace", "contractions", "synonyms",
                 "embedding_neighbours", "names", "places", "numbers", "to_colloquial", "to_formal")


@dataclass(frozen=True)
class InvarianceConfig(SuiteConfig):
    perturbations: tuple[str, ...] = DEFAULT_TYPES
    max_flip_rate: float = 0.05  # CheckList INV: share of predictions a meaning-preserving edit may change
    max_accuracy_drop: float = 0.05  # clean minus worst-case accuracy tolerated

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in self.perturbations:
            if name not in PERTURBATIONS:
                raise ValueError(PERTURBATIONS.unknown_message(name))
            if not PERTURBATIONS.get(name).preserves_label:
                raise ValueError(f"{name!r} changes the label; use it in robustness.directional")


class Invariance(PairedSuite):
    name = "robustness.invariance"
    Config = InvarianceConfig

    def supported_languages(self) -> frozenset[str] | None:
        return perturbation_languages(self.config.perturbations)

    def language_hint(self) -> str:
        return "; list perturbations written for it (lmcritic.perturb: zh_* for Chinese)"

    def variants(self, text: str, rng_for: Callable[[str], random.Random]) -> list[Variant]:
        from lmcritic.lang import language_of, supports

        out = [Variant("clean", text, (), text)]
        language = language_of(text)
        for name in self.config.perturbations:
            if not supports(PERTURBATIONS.get(name).languages, language):
                continue  # written for another language: reported as not applicable
            done = self._perturbation(name)(text, rng_for(name))
            if done is not None:
                out.append(Variant(name, done[0], done[1], text))
        return out

    def _perturbation(self, name: str):
        cache = self.__dict__.setdefault("_perturbations", {})
        if name not in cache:
            cache[name] = perturbation(name)
        return cache[name]

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        by_type: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by_type[r.tags["perturbation"]].append(r)
        clean = by_type.pop("clean", [])
        if not clean:
            return []
        per_type = {t: self._type_stats(recs) for t, recs in by_type.items()}
        adjusted = dict(zip(per_type, stats.benjamini_hochberg([s["p_flip"] for s in per_type.values()])))
        drops = dict(zip(per_type, stats.benjamini_hochberg([s["p_mcnemar"] for s in per_type.values()])))
        findings = [self._type_finding(t, s, adjusted[t], drops[t], by_type[t]) for t, s in per_type.items()]
        findings += [self._na_finding(t, clean) for t in self.config.perturbations if t not in by_type]
        return [self._overview(clean, by_type, per_type), self._worst_case(clean, by_type)] + findings

    # -- statistics ----------------------------------------------------------------------------
    def _type_stats(self, recs: list[Record]) -> dict[str, Any]:
        flips = [r.scores["flipped"] > 0 for r in recs]
        acc = [r.scores["correct"] > 0 for r in recs]
        ref = [r.scores["reference_correct"] > 0 for r in recs]
        drop, p_boot = stats.paired_bootstrap([float(x) for x in ref], [float(x) for x in acc])
        return {"accuracy": stats.proportion(acc), "clean_accuracy": stats.proportion(ref),
                "flip": stats.proportion(flips),
                "p_flip": binomial_tail(sum(flips), len(flips), self.config.max_flip_rate),
                "p_mcnemar": stats.mcnemar(ref, acc), "delta": drop, "p_bootstrap": p_boot}

    def _type_finding(self, kind: str, s: dict[str, Any], p_flip_adj: float, p_drop_adj: float,
                      recs: list[Record]) -> Finding:
        flip, acc, ref, delta = s["flip"], s["accuracy"], s["clean_accuracy"], s["delta"]
        fail = flip.value > self.config.max_flip_rate
        flipped = sorted((r for r in recs if r.scores["flipped"] > 0), key=lambda r: -abs(r.scores["delta_p_true"]))
        return make_finding(
            probe=self.name, name=finding_name("invariance", kind), failed=fail,
            severity=rate_severity(flip.value, flip.ci_low, self.config.max_flip_rate, p_flip_adj < 0.05),
            summary=f"{kind}: predictions flip on {flip} of sentences (tolerated {self.config.max_flip_rate:g}); "
            f"accuracy {acc.value:.3f} vs {ref.value:.3f} clean on the same sentences "
            f"(Δ {delta.value:+.3f} [{delta.ci_low:+.3f}, {delta.ci_high:+.3f}], McNemar BH p={p_drop_adj:.3g})",
            estimate=flip, evidence=tuple(r.case_id for r in flipped[:10]),
            details={"perturbation": kind, "accuracy": _est(acc), "clean_accuracy": _est(ref),
                     "accuracy_delta": _est(delta), "p_flip_rate_bh": p_flip_adj, "p_mcnemar_bh": p_drop_adj,
                     "p_mcnemar": s["p_mcnemar"], "n_flipped": len(flipped)},
        )

    def _na_finding(self, kind: str, clean: list[Record]) -> Finding:
        langs = PERTURBATIONS.get(kind).languages
        found = sorted({r.tags.get("language", "und") for r in clean})
        why = f" (written for {'/'.join(sorted(langs))}; the sentences are {'/'.join(found)})" \
            if langs is not None and not set(found) & langs else ""
        return make_finding(probe=self.name, name=finding_name("invariance", kind), failed=None,
                            severity=Severity.INFO,
                            summary=f"{kind}: applies to none of the {len(clean)} sentences{why}",
                            details={"perturbation": kind})

    def _overview(self, clean: list[Record], by_type: dict[str, list[Record]], per_type: dict) -> Finding:
        clean_acc = stats.proportion([r.scores["correct"] > 0 for r in clean])
        order = sorted(per_type, key=lambda t: per_type[t]["accuracy"].value)
        enough = [t for t in order if per_type[t]["accuracy"].n >= min(10, len(clean))]  # not a 2-sentence type
        worst = enough[0] if enough else (order[0] if order else None)
        labels, ests = ["clean"] + order, [clean_acc] + [per_type[t]["accuracy"] for t in order]
        return make_finding(
            probe=self.name, name="accuracy_by_perturbation", failed=False, severity=Severity.INFO,
            summary=f"clean accuracy {clean_acc}; lowest under {worst}: {per_type[worst]['accuracy']}" if worst
            else f"clean accuracy {clean_acc}; no perturbation applied",
            estimate=clean_acc,
            details={"plots": to_details(bars("Accuracy under each perturbation (95% CI)", labels, ests),
                                         bars("Flip rate per perturbation (95% CI)", order,
                                              [per_type[t]["flip"] for t in order])),
                     "applicability": {t: len(by_type.get(t, [])) / len(clean) for t in self.config.perturbations}},
        )

    def _worst_case(self, clean: list[Record], by_type: dict[str, list[Record]]) -> Finding:
        """HELM robustness: a sentence counts as correct only if it is correct clean AND under every
        perturbation that applies to it."""
        ok: dict[Any, bool] = {r.tags["line"]: r.scores["correct"] > 0 for r in clean}
        for recs in by_type.values():
            for r in recs:
                ok[r.tags["line"]] = ok.get(r.tags["line"], True) and r.scores["correct"] > 0
        worst = stats.proportion(list(ok.values()))
        clean_acc = stats.proportion([r.scores["correct"] > 0 for r in clean])
        clean_ok = [r.scores["correct"] > 0 for r in clean]
        worst_ok = [ok[r.tags["line"]] for r in clean]
        gap = clean_acc.value - worst.value
        p = stats.mcnemar(clean_ok, worst_ok)
        broken = [r.case_id for r in clean if r.scores["correct"] > 0 and not ok[r.tags["line"]]]
        return make_finding(
            probe=self.name, name="worst_case_accuracy",
            failed=gap > self.config.max_accuracy_drop,
            severity=rate_severity(gap, gap, self.config.max_accuracy_drop, p < 0.05),
            summary=f"worst-case accuracy across {len(by_type)} perturbation types {worst} vs clean "
            f"{clean_acc.value:.3f} ({len(broken)} sentences right clean but wrong under some perturbation; "
            f"McNemar p={p:.3g})",
            estimate=worst, evidence=tuple(broken[:10]),
            details={"clean_accuracy": _est(clean_acc), "gap": gap, "p_mcnemar": p, "types": sorted(by_type)},
        )


def _est(e: Estimate | None) -> dict[str, Any]:
    from lmcritic._serde import to_jsonable

    return to_jsonable(e)

