"""``Attack`` = goal × constraints × word swaps × search, with a per-example query budget.

Construct with config, call with data: ``Attack(goal, swaps, constraints, BeamSearch()).attack(model, ex)``.
Every model call goes through ``model`` (the run's cache wrapper counts and caches them); the attack's own
query count is per example, memoized (a text scored twice counts once) and capped by ``budget``.
"""
from __future__ import annotations

import random
from typing import Sequence

from lmcritic.attacks.base import AttackResult, Example, GoalScore, State, Status
from lmcritic.attacks.constraints import Constraint, Similarity
from lmcritic.attacks.goals import Goal, Oracle
from lmcritic.attacks.search import BeamSearch, Search
from lmcritic.backends.base import Backend
from lmcritic.errors import ConfigError
from lmcritic.perturb.base import WordSwap, match_case


class Attack:
    """One configured attack. ``max_candidates`` caps candidates per word (a seeded sample keeps the rest
    out); ``report_similarity`` computes MiniLM similarity of each result to its original."""

    def __init__(self, goal: Goal, swaps: Sequence[WordSwap], constraints: Sequence[Constraint] = (),
                 search: Search | None = None, *, recipe: str = "custom", budget: int | None = None,
                 max_candidates: int | None = None, report_similarity: bool = True, seed: int = 0) -> None:
        if not swaps:
            raise ConfigError("an attack needs at least one word swap", "e.g. WORD_SWAPS.get('char')()")
        if budget is not None and budget < 1:
            raise ConfigError(f"query budget must be >= 1 or None, got {budget}")
        self.goal, self.swaps, self.constraints = goal, tuple(swaps), tuple(constraints)
        self.search = search or BeamSearch()
        self.recipe, self.budget, self.max_candidates = recipe, budget, max_candidates
        self.report_similarity, self.seed = report_similarity, seed

    @property
    def requires(self) -> frozenset:
        return self.goal.requires

    # -- building blocks the search uses -----------------------------------------------------------
    def modifiable(self, state: State, index: int) -> bool:
        return all(c.modifiable(state, index) for c in self.constraints)

    def candidates(self, state: State, index: int) -> list[State]:
        """Every allowed one-word change of ``state`` at ``index`` (pre- and post-constraints applied)."""
        if not self.modifiable(state, index):
            return []
        word = state.tokens[index].text
        seen: dict[str, str] = {}
        for swap in self.swaps:
            for new in swap.candidates(state.tokens, index):
                new = match_case(word, new) if new.lower() != word.lower() else new
                if new and new != word and new not in seen:
                    seen[new] = swap.name
        pairs = list(seen.items())
        if self.max_candidates is not None and len(pairs) > self.max_candidates:
            rng = random.Random(f"{self.seed}:{word}")  # keyed on the word: reproducible in other tools
            pairs = rng.sample(pairs, self.max_candidates)
        out = [state.with_sub(index, w, k) for w, k in pairs]
        for c in self.constraints:
            if out:
                out = [s for s, ok in zip(out, c.check(state, out, index)) if ok]
        return out

    # -- the attack ----------------------------------------------------------------------------------
    def attack(self, model: Backend, example: Example) -> AttackResult:
        """Attack one example; a clean example the model already gets wrong is skipped (1 query)."""
        oracle = Oracle(self.goal, model, example, self.budget)
        start = State.start(example.text)
        first = oracle.evaluate([example.text])[0]
        if first is None:
            return self._result(start, None, None, oracle, Status.BUDGET, "")
        if first.success:
            return self._result(start, first, first, oracle, Status.SKIPPED, "")
        state, best, method = self.search.run(self, oracle, start, first)
        status = Status.SUCCEEDED if best.success else Status.BUDGET if oracle.exhausted else Status.FAILED
        if best.success:
            return self._result(state, first, best, oracle, status, method)
        return self._result(start, first, first, oracle, status, method, tried=(state.text, best.score))

    def _result(self, state: State, first: GoalScore | None, last: GoalScore | None, oracle: Oracle,
                status: Status, method: str, tried: tuple[str, float] | None = None) -> AttackResult:
        sim = None
        if self.report_similarity and state.subs:
            sim = Similarity().scores(State.start(state.original), [state])[0]
        details = {"closest_text": tried[0], "closest_score": tried[1]} if tried else {}
        return AttackResult(
            original=state.original, adversarial=state.text, edits=state.edits, queries=oracle.queries,
            status=status, recipe=self.recipe, n_words=len(state.tokens), similarity=sim, importance=method,
            original_prediction=first.prediction if first else None,
            adversarial_prediction=last.prediction if last else None,
            original_score=first.score if first else None, adversarial_score=last.score if last else None,
            details=details,
        )
