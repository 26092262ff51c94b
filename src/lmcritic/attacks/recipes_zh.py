"""Attack recipes for Chinese text, on jieba words (``lmcritic.perturb.tokenize`` segments Chinese).

* ``zh_typo``: homophone and similar-shape character substitutions — the Chinese counterpart of DeepWordBug
  (character noise a reader repairs: input-method slips and look-alikes, as in Argot, Zhang et al. 2021).
* ``zh_synonym``: Cilin synonyms of content words, greedy by importance — the word-substitution attacks of
  PWWS/TextFooler, with Tongyici Cilin as the synonym source (as Chinese attack studies commonly do).

Both keep Chinese and English function words unchanged. MiniLM (English) similarity is neither a constraint
nor reported, because it does not measure Chinese meaning; the share of words changed is capped instead.
"""
from __future__ import annotations

from typing import Any

from lmcritic.attacks.attack import Attack
from lmcritic.attacks.constraints import STOPWORDS, Constraint, MaxEditDistance, MaxWordsChanged, NoRepeat, NoStopwords
from lmcritic.attacks.goals import Goal
from lmcritic.attacks.recipes import RecipeOptions, _attack, _swap


def _constraints(opts: RecipeOptions, extra: list[Constraint]) -> list[Constraint]:
    from lmcritic.perturb._zh_resources import stopwords

    out: list[Constraint] = [NoRepeat(), NoStopwords(sorted(STOPWORDS | stopwords())), *extra]
    out.insert(2, MaxWordsChanged(opts.max_words if opts.max_words is not None else 0.25))
    return out


def zh_typo(goal: Goal, **options: Any) -> Attack:
    """Homophone (pypinyin) and similar-shape (project table) character swaps, at most 6 queried per word."""
    opts = RecipeOptions(**options)
    swaps = [_swap("zh_homophone"), _swap("zh_shape")]
    attack = _attack(goal, "zh_typo", swaps, _constraints(opts, [MaxEditDistance(30)]), opts, "auto", None, tries=6)
    attack.report_similarity = False
    return attack


def zh_synonym(goal: Goal, **options: Any) -> Attack:
    """Cilin synonyms (same length, common words), greedy by importance."""
    opts = RecipeOptions(**options)
    attack = _attack(goal, "zh_synonym", [_swap("zh_synonym")], _constraints(opts, []), opts, "auto", 15)
    attack.report_similarity = False
    return attack
