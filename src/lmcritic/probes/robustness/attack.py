"""``robustness.attack``: adversarial attacks on SST-2 sentiment (prompted classification on a causal LM, or
a classifier head), within a per-example query budget.

Reports, per recipe and with n and a 95% CI: clean accuracy vs accuracy under attack (McNemar, BH-corrected
over recipes), attack success rate on the examples the model got right, queries per attacked example, share
of words changed and MiniLM similarity of successful attacks; and the worst-case accuracy across recipes.
Every case stores original, adversarial text, edits, queries and the recipe, plus explanation targets for
both sides of the pair (``Record.explain`` / ``Record.explain_variant``).
"""
from __future__ import annotations

from typing import Iterable, Sequence
from weakref import WeakKeyDictionary

from lmcritic import stats
from lmcritic.attacks import AttackResult, Status
from lmcritic.backends.base import Backend
from lmcritic.findings import finding_name, make_finding, verdict
from lmcritic.plots import bars, to_details
from lmcritic.probes.base import Case, Finding, Probe, Record, Severity
from lmcritic.probes.robustness import attack_common as common


class AttackProbe(common.AttackLanguages, Probe):
    name = "robustness.attack"
    area = "robustness"
    chunk_size = common.CHUNK
    Config = common.AttackConfig
    data_role = "eval"
    any_classes = True

    def __init__(self, **config) -> None:
        super().__init__(**config)
        self._attacks: common.AttackCache = WeakKeyDictionary()

    def labels(self) -> tuple[str, ...]:
        return common.labels(self.config)

    def not_applicable(self, model: Backend) -> str | None:
        return common.not_applicable(model, self.config.classes)

    def cases(self) -> Iterable[Case]:
        return common.cases(self.config, "attack")

    def score(self, model: Backend, cases: Sequence[Case]) -> list[Record]:
        results = common.attack_cases(self.config, model, cases, self._attack)
        return [self._record(model, c, r) for c, r in zip(cases, results)]

    def summarize(self, records: Sequence[Record]) -> list[Finding]:
        if not records:
            return []
        recipes = list(dict.fromkeys(r.tags["recipe"] for r in records))
        by = {name: [r for r in records if r.tags["recipe"] == name] for name in recipes}
        drops = [self._drop(name, rs) for name, rs in by.items()]
        adjusted = stats.benjamini_hochberg([f.details["p_value"] for f in drops])
        drops = [_with_p(f, p) for f, p in zip(drops, adjusted)]
        out: list[Finding] = []
        for (name, rs), drop in zip(by.items(), drops):
            out += [drop, *self._figures(name, rs)]
        if len(recipes) > 1:
            out.append(self._worst_case(by))
        return out

    # -- scoring ------------------------------------------------------------------------------------
    def _attack(self, model: Backend, recipe: str):
        return common.cached_attack(self._attacks, self.config, model, recipe)

    def _record(self, model: Backend, case: Case, result: AttackResult) -> Record:
        attack = self._attack(model, case.tags["recipe"])
        clean = result.status is not Status.SKIPPED and result.original_score is not None
        robust = clean and not result.succeeded
        scores = {"clean_correct": float(clean), "attacked_correct": float(robust), "queries": float(result.queries)}
        if clean:
            scores["success"] = float(result.succeeded)
        if result.succeeded:
            scores["changed_fraction"] = result.changed_fraction
            if result.similarity is not None:
                scores["similarity"] = result.similarity
        truth, text = case.expected, case.input["text"]
        named = common.example(model, attack, case, common.labels(self.config)).label or truth  # as the head says it
        return Record(case_id=case.id, input=case.input, output=common.payload(result), scores=scores,
                      tags={**case.tags, "expected": truth, "status": result.status.value,
                            "importance": result.importance}, passed=robust,
                      text=text, target=truth,
                      explain=common.explain(attack, result.original, named, span=text),
                      explain_variant=common.explain(attack, result.adversarial, named))

    # -- findings -----------------------------------------------------------------------------------
    def _drop(self, recipe: str, rs: Sequence[Record]) -> Finding:
        clean = [bool(r.scores["clean_correct"]) for r in rs]
        attacked = [bool(r.scores["attacked_correct"]) for r in rs]
        c, a = stats.proportion(clean), stats.proportion(attacked)
        p = stats.mcnemar(clean, attacked)
        worst = sorted((r for r in rs if r.tags["status"] == "succeeded"), key=lambda r: r.scores.get(
            "changed_fraction", 1.0))
        plot = bars(f"accuracy clean vs under attack ({recipe})", ["clean", f"attacked ({recipe})"], [c, a])
        examples = [{"case": r.case_id, "original": r.output["original"], "adversarial": r.output["adversarial"],
                     "prediction": r.output["adversarial_prediction"], "queries": r.output["queries"]}
                    for r in worst[:5]]
        gap = c.value - a.value
        return make_finding(
            probe=self.name, name=finding_name("accuracy_under_attack", recipe), failed=False,
            effect=gap, scale="attack", estimate=a, evidence=tuple(r.case_id for r in worst[:10]),
            summary=f"{recipe}: accuracy {c.value:.3f} clean → {a} under attack (budget {self.config.budget} "
                    f"queries/example)",
            details={"clean_accuracy": _est(c), "attacked_accuracy": _est(a), "p_value": p, "plots": to_details(plot),
                     "examples": examples, "budget": self.config.budget, "recipe": recipe},
        )

    def _figures(self, recipe: str, rs: Sequence[Record]) -> list[Finding]:
        attacked = [r for r in rs if "success" in r.scores]
        won = [r for r in attacked if r.scores["success"]]
        rate = stats.proportion([bool(r.scores["success"]) for r in attacked])
        out = [make_finding(
            probe=self.name, name=finding_name("attack_success_rate", recipe), estimate=rate,
            failed=bool(rate.n) and rate.value > 0.5, effect=rate.value - 0.2, scale="attack",
            evidence=tuple(r.case_id for r in won[:10]),
            summary=f"{recipe}: {rate} of correctly classified examples flipped "
                    f"({sum(r.tags['status'] == 'budget' for r in attacked)} stopped by the budget)",
            details={"by_status": _count(r.tags["status"] for r in rs)})]
        for key, what, pool in (("queries", "queries per attacked example", attacked),
                                ("changed_fraction", "share of words changed (successes)", won),
                                ("similarity", "MiniLM similarity to the original (successes)", won)):
            vals = [r.scores[key] for r in pool if key in r.scores]
            if vals:
                est = stats.mean(vals)
                out.append(make_finding(probe=self.name, name=finding_name(key, recipe), failed=False,
                                        severity=Severity.INFO, estimate=est, summary=f"{recipe}: {what} {est}"))
        return out

    def _worst_case(self, by: dict[str, list[Record]]) -> Finding:
        accs = {name: stats.proportion([bool(r.passed) for r in rs]) for name, rs in by.items()}
        name = min(accs, key=lambda k: accs[k].value)
        lines = sorted({r.tags["line"] for rs in by.values() for r in rs})
        robust = {line: all(r.passed for rs in by.values() for r in rs if r.tags["line"] == line) for line in lines}
        union = stats.proportion(list(robust.values()))
        plot = bars("accuracy under each attack", list(accs), list(accs.values()))
        return make_finding(probe=self.name, name="worst_case_accuracy", failed=False,
                            severity=Severity.INFO, estimate=accs[name],
                            summary=f"worst-case accuracy across recipes {accs[name]} ({name}); "
                                    f"robust to every recipe: {union}",
                            details={"by_recipe": {k: _est(v) for k, v in accs.items()}, "robust_to_all": _est(union),
                                     "plots": to_details(plot)})


def _with_p(f: Finding, p_adj: float) -> Finding:
    from dataclasses import replace

    fail = p_adj < 0.05 and f.severity is not Severity.INFO
    return replace(f, verdict=verdict(fail), details={**f.details, "p_adjusted": p_adj},
                   summary=f.summary + f"; McNemar p={f.details['p_value']:.3g} (BH {p_adj:.3g})")


def _est(e) -> dict:
    return {"value": e.value, "n": e.n, "ci_low": e.ci_low, "ci_high": e.ci_high}


def _count(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out
