"""Named attack recipes after the papers they follow, built from this package's parts and the word swaps in
``lmcritic.perturb``. Each takes the goal plus overrides (``budget``, ``importance``, ``width``,
``max_candidates``, ``similarity``, ``max_words``, ``seed``, ``search``) and returns an :class:`Attack`.

Search defaults to :class:`GuidedGreedy` (candidates queried lazily, best first-order estimate first): on
white-box backends it reaches TextAttack's success rate or better with 27–58% of its queries (about 30% on
three of four victim/sentence sets; ``benchmarks/bench_textattack.py``). ``search="beam"`` (or ``width`` > 1)
restores TextAttack's score-every-candidate greedy/beam search.

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
from lmcritic.attacks.guided import GuidedGreedy
from lmcritic.attacks.search import BeamSearch, Search
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
    search: str | None = None  # guided (default) | beam; width > 1 implies beam

    def __post_init__(self) -> None:
        if self.search not in (None, "guided", "beam"):
            raise ConfigError(f"unknown search {self.search!r}", "use 'guided' or 'beam'")


def _swap(name: str, **kwargs: Any) -> Any:
    from lmcritic.perturb import WORD_SWAPS

    return WORD_SWAPS.get(name)(**kwargs)


def _common(opts: RecipeOptions, extra: list[Constraint]) -> list[Constraint]:
    out: list[Constraint] = [NoRepeat(), NoStopwords(), *extra]
    if opts.max_words is not None:
        out.insert(2, MaxWordsChanged(opts.max_words))
    return out


def _attack(goal: Goal, name: str, swaps: list, constraints: list[Constraint], opts: RecipeOptions,
            importance: str, max_candidates: int | None, tries: int | None = None) -> Attack:
    """``max_candidates``: the recipe's cap on candidates per word; ``tries``: how many of them guided search
    queries per word (an explicit ``max_candidates`` lifts it)."""
    cap = opts.max_candidates if opts.max_candidates is not None else max_candidates
    how = opts.importance or importance
    if opts.search == "beam" or opts.width > 1 or how == "pwws":
        search: Search = BeamSearch(width=opts.width, importance=how)
    else:
        search = GuidedGreedy(importance=how, tries=tries if opts.max_candidates is None else None, seed=opts.seed)
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

    The paper scores words black-box (replace/delete one word) and applies one random edit per word. Here
    every edit of the word (up to 50) is a candidate and guided search queries at most 6 per word: the 6
    best by gradient estimate on white-box backends, else a seeded sample (TextAttack's recipe scores 4
    random ones; ``benchmarks/bench_textattack.py`` compares both).
    Substitutions use keyboard neighbours rather than random letters.
    """
    opts = RecipeOptions(**options)
    extra: list[Constraint] = [MaxEditDistance(30)]
    if opts.similarity is not None:
        extra.append(Similarity(opts.similarity))
    return _attack(goal, "deepwordbug", [_swap("char")], _common(opts, extra), opts, "auto", None, tries=6)


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
        raise ConfigError(f"recipe {name}: bad option: {err}", "options: budget, importance, width, "
                          "max_candidates, similarity, max_words, seed, search") from None
