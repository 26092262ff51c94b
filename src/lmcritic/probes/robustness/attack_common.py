"""What ``robustness.attack`` and ``robustness.detect`` share: the SST-2 examples, the attack built for a
backend (prompted classification on a causal LM, or a classifier head), and a result as JSON.

Both probes build the same deterministic attack, so when both run, the second one's model calls are cache
hits in the run's cache wrapper.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence
from weakref import WeakKeyDictionary

from lmcritic.attacks import Attack, AttackResult, BelowRival, ClassifierVictim, Example, PromptedVictim, UntargetedFlip
from lmcritic.attacks.recipes import build_recipe
from lmcritic.backends.base import Backend
from lmcritic.errors import ConfigError
from lmcritic.probes.base import Case, ExplainTarget, ProbeConfig
from lmcritic.probes.robustness._classify import own_classes_reason, rows, sst2_helper
from lmcritic.requests import Capability

LABELS = ("negative", "positive")
# Cases per stored chunk. A chunk's examples are attacked in lockstep (one backend call per search step for all
# of them, ``attacks._lockstep``), so a larger chunk batches more; a killed run loses at most one chunk.
CHUNK = 10
GOALS = ("untargeted", "below_rival")


@dataclass(frozen=True)
class AttackConfig(ProbeConfig):
    data: str | None = None  # None: the packaged SST-2 dev sample; or a .tsv/.csv/.jsonl with text + 0/1 label
    n: int = 30
    recipes: tuple[str, ...] = ("deepwordbug",)
    budget: int = 100  # model queries per attacked example
    importance: str | None = None  # None: the recipe's (auto = gradient on white-box backends, else loo)
    width: int = 1  # 1 greedy, >1 beam search
    search: str | None = None  # None/guided: lazily queried, gradient-ordered candidates; beam: score them all
    max_candidates: int | None = None
    similarity: float | None = None  # extra MiniLM similarity floor (textfooler has its own 0.8)
    max_words: float | None = 0.25  # at most this share of words changed
    goal: str = "untargeted"  # or below_rival (log-likelihood of the correct answer below the rival's)
    template: str = "Review: {{ text }}\nSentiment:"
    label_words: tuple[str, ...] = (" negative", " positive")
    classes: tuple[str, ...] | None = None  # a classifier of another task: its labels (data's labels: these or ids)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n <= 0 or self.budget <= 0:
            raise ValueError("n and budget must be > 0")
        if not self.recipes:
            raise ValueError("recipes needs at least one recipe name")
        if self.goal not in GOALS:
            raise ValueError(f"goal must be one of {GOALS}")


def cases(cfg: AttackConfig, prefix: str) -> list[Case]:
    """Examples × recipes; ids carry both, so resume and cross-probe joins line up."""
    from lmcritic.attacks import RECIPES

    for r in cfg.recipes:
        RECIPES.get(r)  # unknown names fail at plan time with "did you mean"
    classes = labels(cfg)
    return [Case(id=f"{prefix}-{recipe}-{row['source_line']}",
                 input={"text": row["text"]}, expected=classes[row["label"]],
                 tags={"source": row["source"], "line": row["source_line"], "attack": recipe, "recipe": recipe})
            for recipe in cfg.recipes for row in _rows(cfg)]


def labels(cfg: AttackConfig) -> tuple[str, ...]:
    """The classes the examples are labelled with (negative/positive unless ``classes`` is set)."""
    return tuple(cfg.classes or LABELS)


def _rows(cfg: AttackConfig) -> list[dict[str, Any]]:
    return rows(sst2_helper(cfg.data, cfg.template, cfg.label_words), cfg.classes)[: cfg.n]


def input_texts(cfg: AttackConfig) -> list[str]:
    return [row["text"] for row in _rows(cfg)]


def recipe_languages(cfg: AttackConfig) -> frozenset[str] | None:
    """The languages some recipe's word swaps are all written for (None: a recipe works in any)."""
    out: set[str] = set()
    for recipe in cfg.recipes:
        attack = build_recipe(recipe, UntargetedFlip(PromptedVictim(cfg.template, LABELS, cfg.label_words)))
        langs = [s.languages for s in attack.swaps]
        if any(x is None for x in langs):
            return None
        out |= frozenset.intersection(*langs)  # type: ignore[arg-type]
    return frozenset(out)


class AttackLanguages:
    """Language declarations of the attack probes: their recipes' word swaps decide."""

    config: AttackConfig

    def supported_languages(self) -> frozenset[str] | None:
        return recipe_languages(self.config)

    def input_texts(self) -> list[str]:
        return input_texts(self.config)

    def language_hint(self) -> str:
        return "; use recipes written for it (Chinese: zh_typo, zh_synonym)"


def not_applicable(model: Backend, classes: Sequence[str] | None = None) -> str | None:
    from lmcritic.probes._label_map import sentiment_head_reason

    if classes:
        return own_classes_reason(model, classes)
    if model.supports(Capability.LOGLIKELIHOOD) or model.supports(Capability.CLASSIFY):
        return sentiment_head_reason(model)
    return f"needs loglikelihood (prompted classification) or classify; the {model.kind} backend offers neither"


AttackCache = WeakKeyDictionary[Backend, dict[str, Attack]]  # backend -> recipe -> its attack (``cached_attack``)


def cached_attack(cache: AttackCache, cfg: AttackConfig, model: Backend, recipe: str) -> Attack:
    """The recipe's attack for this backend, built once per backend object: an attack holds its victim, which
    learns the head's label names from the first model it asks, so a probe that scores a second model (a
    mitigated one, another head) must not reuse it."""
    per = cache.setdefault(model, {})
    if recipe not in per:
        per[recipe] = build(cfg, model, recipe)
    return per[recipe]


def build(cfg: AttackConfig, model: Backend, recipe: str) -> Attack:
    """The recipe's attack for this backend: a prompted victim on causal LMs, the head otherwise."""
    prompted = model.supports(Capability.LOGLIKELIHOOD)
    victim = PromptedVictim(cfg.template, LABELS, cfg.label_words) if prompted else ClassifierVictim()
    goal = BelowRival(victim) if cfg.goal == "below_rival" else UntargetedFlip(victim)
    opts = {k: getattr(cfg, k) for k in ("importance", "max_candidates", "similarity", "max_words", "search")
            if getattr(cfg, k) is not None}
    return build_recipe(recipe, goal, budget=cfg.budget, width=cfg.width, seed=cfg.seed, **opts)


# Attack results per backend object (the run's model), so robustness.detect reuses robustness.attack's.
_RESULTS: WeakKeyDictionary[Backend, OrderedDict[tuple, AttackResult]] = WeakKeyDictionary()
MEMO_SIZE = 512  # results kept per backend object


def attack_cases(cfg: AttackConfig, model: Backend, cases: Sequence[Case],
                 attack_for: Callable[[Backend, str], Attack]) -> list[AttackResult]:
    """Every case's attack result; the cases are attacked in lockstep (``attacks._lockstep``: one backend call
    per search step for all of them). Both attack probes build the same deterministic attack, so a result this
    model object already has is reused: asked again, the model calls would be cache hits, but the white-box
    gradient passes and the similarity encodings would be computed again."""
    from lmcritic.attacks._lockstep import lockstep

    memo = _RESULTS.setdefault(model, OrderedDict())
    keys = [(_settings(cfg), c.tags.get("recipe"), c.input["text"], c.expected) for c in cases]
    todo = {k: c for k, c in zip(keys, cases) if k not in memo}

    def job(case: Case) -> Callable[[Backend], AttackResult]:
        def run(m: Backend) -> AttackResult:
            attack = attack_for(m, case.tags["recipe"])
            return attack.attack(m, example(m, attack, case, labels(cfg)))
        return run

    memo.update(zip(todo, lockstep(model, [job(c) for c in todo.values()])))
    out = [memo[k] for k in keys]
    for k in keys:
        memo.move_to_end(k)
    while len(memo) > MEMO_SIZE:
        memo.popitem(last=False)
    return out


def _settings(cfg: AttackConfig) -> tuple:
    """The attack options a result depends on (which examples and recipes are run is in the rest of the key)."""
    return tuple((f.name, getattr(cfg, f.name)) for f in fields(AttackConfig) if f.name not in ("n", "recipes", "data"))


def example(model: Backend, attack: Attack, case: Case, classes: Sequence[str] = LABELS) -> Example:
    """The case as an attack example, its label named as the backend names it."""
    victim = attack.goal.victim  # type: ignore[attr-defined]
    label = case.expected
    if isinstance(victim, ClassifierVictim):
        label = label_name(victim.answers(model, Example(case.input["text"])), label, classes)
    return Example(case.input["text"], label=label)


def label_name(labels: Sequence[str], label: str, classes: Sequence[str] = LABELS) -> str:
    """``label`` (one of ``classes``, or one of the head's own labels in any case) as the classifier names it: by
    the rules the probes read heads with (``_label_map``: the name in any case, a prefix such as NEG, LABEL_k)."""
    from lmcritic.probes._label_map import head_label

    named = head_label(labels, label, classes)
    if named is not None:
        return named
    raise ConfigError(f"classifier labels {list(labels)} do not name the class {label!r} of {list(classes)}",
                      "set the probe's classes to the classifier's labels (--set PROBE.classes=[...])")


def explain(attack: Attack, text: str, label: str, span: str | None = None) -> ExplainTarget:
    """The explanation target for one side of the pair (prompt/answer/rival, or text/label for a head)."""
    victim = attack.goal.victim  # type: ignore[attr-defined]
    if isinstance(victim, PromptedVictim):
        from lmcritic.attacks.goals import render

        k = LABELS.index(label)
        return ExplainTarget(render(victim.template, text), victim.words[k], victim.words[1 - k], span=span)
    return ExplainTarget(text, label, kind="label", span=span)


def payload(result: AttackResult) -> dict[str, Any]:
    """An attack result as JSON scalars/lists for ``Record.output``."""
    return {"status": result.status.value, "original": result.original, "adversarial": result.adversarial,
            "edits": [{"start": e.start, "end": e.end, "before": e.before, "after": e.after, "kind": e.kind}
                      for e in result.edits],
            "queries": result.queries, "recipe": result.recipe, "importance": result.importance,
            "original_prediction": result.original_prediction,
            "adversarial_prediction": result.adversarial_prediction, "original_score": result.original_score,
            "adversarial_score": result.adversarial_score, "words_changed": result.words_changed,
            "n_words": result.n_words, "similarity": result.similarity, **result.details}
