"""Adversarial attacks: goal function × constraints × word swaps × search, with per-example query budgets.

Importing this is cheap; recipes, encoders and models load on first use.

    from lmcritic.attacks import build_recipe, UntargetedFlip, PromptedVictim, Example
    attack = build_recipe("deepwordbug", UntargetedFlip(PromptedVictim("Review: {text}\\nSentiment:")), budget=200)
    result = attack.attack(model, Example("a gorgeous, witty film", label="positive"))
"""
from __future__ import annotations

from lmcritic.attacks.attack import Attack
from lmcritic.attacks.base import AttackResult, Example, GoalScore, State, Status
from lmcritic.attacks.constraints import (
    Constraint,
    MaxEditDistance,
    MaxWordsChanged,
    NoRepeat,
    NoStopwords,
    POSMatch,
    Similarity,
)
from lmcritic.attacks.goals import (
    BelowRival,
    ClassifierVictim,
    GenerationAvoids,
    GenerationContains,
    Goal,
    Oracle,
    PromptedVictim,
    TargetedLabel,
    UntargetedFlip,
    Victim,
)
from lmcritic.attacks.recipes import build_recipe
from lmcritic.attacks.search import BeamSearch
from lmcritic.registry import Registry

RECIPES: Registry = Registry("attack_recipes")
for _name in ("textfooler", "deepwordbug", "pwws", "typo"):
    RECIPES.add(_name, f"lmcritic.attacks.recipes:{_name}")
for _name in ("zh_typo", "zh_synonym"):
    RECIPES.add(_name, f"lmcritic.attacks.recipes_zh:{_name}")

__all__ = [
    "RECIPES", "Attack", "AttackResult", "BeamSearch", "BelowRival", "ClassifierVictim", "Constraint", "Example",
    "GenerationAvoids", "GenerationContains", "Goal", "GoalScore", "MaxEditDistance", "MaxWordsChanged",
    "NoRepeat", "NoStopwords", "Oracle", "POSMatch", "PromptedVictim", "Similarity", "State", "Status",
    "TargetedLabel", "UntargetedFlip", "Victim", "build_recipe",
]
