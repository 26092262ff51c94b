"""Named-entity and number swaps (CheckList's change_names / change_location / change_number INV tests):
a review's sentiment does not depend on who or where, or on the exact count."""
from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

from lmcritic.perturb.base import Edit, Perturbation, finish, match_case, tokenize

_NUMBER = re.compile(r"(?<![\w./])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w.]\d)")
_RATING = re.compile(r"\s*(?:/|out of|stars?\b|points?\b|%|percent)", re.I)  # scores carry the sentiment
_NUMBER_WORDS = ("two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
                 "hundred").split()


@functools.lru_cache(maxsize=1)
def _entities() -> dict:
    from lmcritic.perturb._resources import lexicon

    data = lexicon("entities")
    groups = {n: tuple(names) for n, names in data["first_names"].items()}
    return {"names": groups, "places": {"place": tuple(data["places"])}}


def _swap_from(text: str, groups: dict[str, tuple[str, ...]], kind: str, rng: random.Random,
               consistent: dict[str, str]) -> list[Edit]:
    """Replace each listed word by another of its group, the same replacement for repeats."""
    lookup = {w: g for g, words in groups.items() for w in words}
    edits = []
    for t in tokenize(text):
        low = t.text.lower()
        if low in lookup:
            if low not in consistent:
                consistent[low] = rng.choice([w for w in groups[lookup[low]] if w != low])
            edits.append(Edit(t.start, t.end, t.text, match_case(t.text, consistent[low]), kind))
    return edits


@dataclass(frozen=True)
class NameSwap(Perturbation):
    """Replace first names with others of the same (census) gender, consistently within the text."""

    name = "names"

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        return finish(text, _swap_from(text, _entities()["names"], self.name, rng, {}))


@dataclass(frozen=True)
class PlaceSwap(Perturbation):
    """Replace city/country names with others, consistently within the text."""

    name = "places"

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        return finish(text, _swap_from(text, _entities()["places"], self.name, rng, {}))


def _new_number(digits: str, rng: random.Random) -> str:
    """A different number of the same magnitude (a year stays a plausible year)."""
    value = int(digits.replace(",", ""))
    if 1900 <= value <= 2030 and "," not in digits:
        return str(min(2030, max(1900, value + rng.choice([d for d in range(-15, 16) if d]))))
    low, high = max(2 if value >= 2 else 0, int(value * 0.5)), max(3, int(value * 1.5) + 1)
    choices = [v for v in range(low, high + 1) if v != value] or [value + 1]
    new = rng.choice(choices) if len(choices) < 1000 else rng.randint(low, high)
    return f"{new:,}" if "," in digits else str(new)


@dataclass(frozen=True)
class NumberSwap(Perturbation):
    """Change numbers (digits, and spelled-out small counts) to others of similar size."""

    name = "numbers"

    def __call__(self, text: str, rng: random.Random) -> tuple[str, tuple[Edit, ...]] | None:
        edits = [Edit(m.start(1), m.end(1), m.group(1), _new_number(m.group(1), rng), self.name)
                 for m in _NUMBER.finditer(text) if not m.group(2) and not _RATING.match(text, m.end())]
        for t in tokenize(text):
            if t.text.lower() in _NUMBER_WORDS:
                other = rng.choice([w for w in _NUMBER_WORDS if w != t.text.lower()])
                edits.append(Edit(t.start, t.end, t.text, match_case(t.text, other), self.name))
        return finish(text, edits)
