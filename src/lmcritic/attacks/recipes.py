"""Named attack recipes after the papers they follow, built from this package's parts and the word swaps in
``lmcritic.perturb``. Each takes the goal plus overrides (``budget``, ``importance``, ``width``,
``max_candidates``, ``similarity``, ``max_words``, ``seed``) and returns an :class:`Attack`.

Offline resources differ from the papers' where marked "OFFLINE:". Word ranking defaults to ``auto``: one
gradient pass on white-box backends (the papers rank black-box, one query per word), leave-one-out deletion
otherwise; ``importance="loo"`` restores the papers' black-box ranking.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmcritic.attacks.attack import Attack
from lmcritic.attacks.constraints import (
    Constraint,
    MaxEditDistance,
    MaxWordsChanged,
    NoRepeat,
    NoStopwords,
    POSMatch,
    Similarity,
)
from lmcritic.attacks.goals import Goal
from lmcritic.attacks.search import BeamSearch
from lmcritic.errors import ConfigError


@dataclass(frozen=True)
class RecipeOptions:
    """Knobs every recipe accepts; ``None`` keeps the recipe's own default."""

    budget: int | None = None
    importance: str | None = None
    width: int = 1
    max_candidates: int | None = None
    similarity: float | None = None
    max_words: float | None = None
    seed: int = 0


def _swap(name: str, **kwargs: Any) -> Any:
    from lmcritic.perturb import WORD_SWAPS

    return WORD_SWAPS.get(name)(**kwargs)


def _common(opts: RecipeOptions, extra: list[Constraint]) -> list[Constraint]:
    out: list[Constraint] = [NoRepeat(), NoStopwords(), *extra]
    if opts.max_words is not None:
        out.insert(2, MaxWordsChanged(opts.max_words))
    return out


def _attack(goal: Goal, name: str, swaps: list, constraints: list[Constraint], opts: RecipeOptions,
            importance: str, max_candidates: int | None) -> Attack:
    search = BeamSearch(width=opts.width, importance=opts.importance or importance)
    cap = opts.max_candidates if opts.max_candidates is not None else max_candidates
    return Attack(goal, swaps, constraints, search, recipe=name, budget=opts.budget, max_candidates=cap,
                  seed=opts.seed)


def textfooler(goal: Goal, **options: Any) -> Attack:
    """TextFooler (Jin et al. 2020): embedding-neighbour synonyms, POS match, sentence similarity, greedy by
    deletion importance.

    OFFLINE: neighbours come from wordllama's token embeddings (the paper: counter-fitted GloVe, 50
    neighbours with cosine ≥ 0.5); similarity is MiniLM cosine ≥ 0.8 on a 15-word window (the paper:
    Universal Sentence Encoder, ~0.84); POS from WordNet's lexicon (the paper: NLTK's tagger).
    """
    opts = RecipeOptions(**options)
    sim = Similarity(opts.similarity if opts.similarity is not None else 0.8, window=15)
    return _attack(goal, "textfooler", [_swap("embedding")], _common(opts, [POSMatch(), sim]), opts, "auto", 50)


def deepwordbug(goal: Goal, **options: Any) -> Attack:
    """DeepWordBug (Gao et al. 2018): character swap/substitute/delete/insert on the most important words,
    total Levenshtein distance ≤ 30 (TextAttack's setting), greedy by importance.

    The paper scores words black-box (replace/delete one word) and applies one random edit per word; here a
    seeded sample of ``max_candidates`` (default 4, one per operation on average) of the word's edits is
    scored. Substitutions use keyboard neighbours rather than random letters.
    """
    opts = RecipeOptions(**options)
    extra: list[Constraint] = [MaxEditDistance(30)]
    if opts.similarity is not None:
        extra.append(Similarity(opts.similarity))
    return _attack(goal, "deepwordbug", [_swap("char")], _common(opts, extra), opts, "auto", 4)


def pwws(goal: Goal, **options: Any) -> Attack:
    """PWWS (Ren et al. 2019): WordNet synonyms, words ordered by softmax(saliency) × best swap gain.

    OFFLINE: WordNet 3.0 from Debian's ``wordnet-base`` (the paper's WordNet via NLTK; the same data).
    Saliency deletes the word instead of inserting an ``<unk>`` token (causal LMs have no trained ``<unk>``).
    """
    opts = RecipeOptions(**options)
    extra: list[Constraint] = [Similarity(opts.similarity)] if opts.similarity is not None else []
    return _attack(goal, "pwws", [_swap("wordnet")], _common(opts, extra), opts, "pwws", None)


def typo(goal: Goal, **options: Any) -> Attack:
    """Realistic misspellings (a misspelling dictionary, then non-word keyboard slips): what a user might
    really type. Not from a paper: the natural-noise counterpart of DeepWordBug."""
    opts = RecipeOptions(**options)
    return _attack(goal, "typo", [_swap("typo")], _common(opts, [MaxEditDistance(30)]), opts, "auto", 8)




def build_recipe(name: str, goal: Goal, **options: Any) -> Attack:
    """The recipe ``name`` on ``goal`` (see ``lmcritic.attacks.RECIPES``)."""
    from lmcritic.attacks import RECIPES

    try:
        return RECIPES.get(name)(goal, **options)
    except TypeError as err:
        raise ConfigError(f"recipe {name}: bad option: {err}",
                          "options: budget, importance, width, max_candidates, similarity, max_words, seed") from None
