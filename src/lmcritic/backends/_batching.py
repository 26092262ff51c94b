"""Order-keeping batching helpers shared by backends (torch-free, like lm-eval's ``Collator``).

Backends sort work longest-first so each batch pads little and the biggest batch (the one most likely to run
out of memory) comes first; results are then put back in the caller's order.
"""
from __future__ import annotations

from typing import Callable, Hashable, Iterable, Iterator, Sequence, TypeVar

from lmcritic.backends import _deadline

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)


def longest_first(items: Sequence[T], length: Callable[[T], int]) -> list[int]:
    """Indices of ``items``, longest first; ties keep input order so runs are reproducible."""
    return sorted(range(len(items)), key=lambda i: (-length(items[i]), i))


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items (size < 1 is treated as 1)."""
    size = max(1, int(size))
    for start in range(0, len(items), size):
        _deadline.check()  # a call with a deadline stops between batches
        yield items[start : start + size]


def group_by(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Items by key, groups and members in first-seen order (used to share a context's KV cache)."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def restore(pairs: Iterable[tuple[int, R]], n: int) -> list[R]:
    """Results back in request order from ``(index, result)`` pairs; every index must be filled once."""
    out: list[R | None] = [None] * n
    filled = 0
    for index, result in pairs:
        if out[index] is None:
            filled += 1
        out[index] = result
    if filled != n:
        missing = [i for i, r in enumerate(out) if r is None][:5]
        raise RuntimeError(f"batching lost results for request(s) {missing}")
    return out  # type: ignore[return-value]


def budget_chunks(
    items: Sequence[T], size: int, cost: Callable[[T], int] | None = None, budget: int | None = None
) -> Iterator[list[T]]:
    """Consecutive chunks of at most ``size`` items whose padded cost (count × largest cost) fits ``budget``.

    An item over budget on its own still gets a chunk: work is split, never dropped.
    """
    chunk: list[T] = []
    top = 0
    for item in items:
        c = cost(item) if cost else 0
        over = budget is not None and (len(chunk) + 1) * max(top, c) > budget
        if chunk and (len(chunk) >= max(1, size) or over):
            _deadline.check()
            yield chunk
            chunk, top = [], 0
        chunk.append(item)
        top = max(top, c)
    if chunk:
        _deadline.check()
        yield chunk


def least_padding_chunks(
    lengths: Sequence[int], size: int, *, overhead: int = 0, cost: Callable[[int], int] | None = None,
    budget: int | None = None,
) -> list[list[int]]:
    """Positions of ``lengths`` (sorted longest first) cut into consecutive chunks that minimise the tokens a
    forward computes: each chunk pads to its first (longest) item, so its cost is ``count × that length``, plus
    ``overhead`` tokens' worth per chunk (a forward's fixed cost). At most ``size`` items a chunk, and
    ``count × max cost`` within ``budget`` (one item always fits). Exact, by dynamic programming over the cut
    points (O(n × size)): greedy chunks of ``size`` pad a 30-token row to the 228 tokens of the row before it."""
    n, size = len(lengths), max(1, int(size))
    best = [0] + [-1] * n  # best[j]: least cost of the first j items; -1: not reached
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        top = 0
        for i in range(j - 1, max(-1, j - size - 1), -1):  # chunk = items i..j-1, its longest is item i
            top = max(top, cost(i) if cost else 0)
            if i < j - 1 and budget is not None and (j - i) * top > budget:
                break
            c = best[i] + (j - i) * lengths[i] + overhead
            if best[j] < 0 or c < best[j]:
                best[j], cut[j] = c, i
    chunks: list[list[int]] = []
    j = n
    while j > 0:
        chunks.append(list(range(cut[j], j)))
        j = cut[j]
    return chunks[::-1]


def map_sorted(
    items: Sequence[T],
    length: Callable[[T], int],
    size: int,
    run: Callable[[Sequence[T]], list[R]],
    *,
    cost: Callable[[T], int] | None = None,
    budget: int | None = None,
) -> list[R]:
    """Run ``run`` over longest-first chunks of ``items`` and return its results in the original order."""
    order = longest_first(items, length)
    pairs: list[tuple[int, R]] = []
    for chunk in budget_chunks(order, size, (lambda i: cost(items[i])) if cost else None, budget):
        pairs.extend(zip(chunk, run([items[i] for i in chunk])))
    return restore(pairs, len(items))
