"""Byte-pair merges learnt in plain Python, the same on every run.

The ``tokenizers`` trainers break ties between equally frequent pairs in hash order, so two test sessions built
different fixture vocabularies, hence different tiny models, and a threshold on a tiny model's accuracy passed in
one session and failed in the next. Here a tie goes to the alphabetically first pair.
"""
from __future__ import annotations

from collections import Counter, defaultdict

Pair = tuple[str, str]


def learn_merges(words: Counter[str], size: int, alphabet: list[str], prefix: str = "") -> tuple[list[str],
                                                                                                   list[Pair]]:
    """Grow ``alphabet`` to ``size`` tokens by merging the most frequent adjacent pair (WordPiece-style
    continuation pieces carry ``prefix``); returns the vocabulary in id order and the merges in rank order."""
    splits = {w: [w[0]] + [prefix + c for c in w[1:]] for w in sorted(words)}
    vocab = list(dict.fromkeys(alphabet))
    vocab += sorted({s for pieces in splits.values() for s in pieces} - set(vocab))
    pairs, where = _count_pairs(splits, words)
    merges: list[Pair] = []
    while len(vocab) < size and pairs:
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        vocab.append(best[0] + best[1][len(prefix):])
        for word in sorted(where.pop(best, set())):
            _remerge(word, splits, words, best, prefix, pairs, where)
    return vocab, merges


def _count_pairs(splits: dict[str, list[str]], words: Counter[str]) -> tuple[Counter[Pair],
                                                                             defaultdict[Pair, set[str]]]:
    pairs: Counter[Pair] = Counter()
    where: defaultdict[Pair, set[str]] = defaultdict(set)
    for word, pieces in splits.items():
        for pair in zip(pieces, pieces[1:]):
            pairs[pair] += words[word]
            where[pair].add(word)
    return pairs, where


def _remerge(word: str, splits: dict[str, list[str]], words: Counter[str], best: Pair, prefix: str,
             pairs: Counter[Pair], where: defaultdict[Pair, set[str]]) -> None:
    """Apply one merge to one word and update the pair counts it contributes."""
    old = splits[word]
    for pair in zip(old, old[1:]):
        pairs[pair] -= words[word]
        if pairs[pair] <= 0:
            del pairs[pair]
    new: list[str] = []
    i = 0
    while i < len(old):
        if i + 1 < len(old) and (old[i], old[i + 1]) == best:
            new.append(old[i] + old[i + 1][len(prefix):])
            i += 2
        else:
            new.append(old[i])
            i += 1
    splits[word] = new
    for pair in zip(new, new[1:]):
        pairs[pair] += words[word]
        where[pair].add(word)
