"""Requests to vLLM prompts and vLLM outputs to lmcritic results: the bookkeeping, with no vLLM import.

Scoring uses vLLM's ``prompt_logprobs``: for a prompt of token ids ``p``, ``RequestOutput.prompt_logprobs[i]``
(i >= 1) maps token ids to ``Logprob(logprob, rank, decoded_token)`` for position i, and always holds the
prompt's own token ``p[i]`` (rank 1 means it was the most likely); entry 0 is None (a ``FlatLogprobs`` gives an
empty mapping there). So a window whose inputs are ``inp`` and whose targets are the last ``n`` tokens becomes
the prompt ``inp + (last target,)``: the same positions the hf backend scores, in one forward pass.

The tokenization is the hf backend's (lm-eval's conventions), shared from ``_hf_loglik`` and ``_hf_rolling``,
so both backends score the very same token sequences.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from lmcritic.errors import BackendError
from lmcritic.requests import GenerateResult, GenParams, LoglikelihoodResult, TokenLogprob


@dataclass(frozen=True)
class Scoring:
    """One prompt to send and how many of its last positions are scored."""

    prompt: tuple[int, ...]
    n_scored: int
    truncated: bool = False


def pair_prompt(ctx: Sequence[int], cont: Sequence[int], max_length: int) -> Scoring:
    """``(ctx + cont)`` left-truncated to ``max_length`` inputs plus the last target, as the hf backend reads it."""
    whole = tuple(ctx) + tuple(cont)
    return Scoring(whole[-(max_length + 1):], len(cont), len(whole) > max_length + 1)


def window_prompt(inp: Sequence[int], targets: Sequence[int]) -> Scoring:
    """A rolling window: inputs ``inp`` predict ``targets``, whose last token closes the prompt."""
    return Scoring(tuple(inp) + (targets[-1],), len(targets)) if targets else Scoring(tuple(inp), 0)


def scored_positions(prompt_logprobs: Sequence[Any] | None, scoring: Scoring) -> list[tuple[float, int, float]]:
    """(log-prob of the prompt token, the most likely token id, its log-prob) for each scored position."""
    if scoring.n_scored == 0:
        return []
    if prompt_logprobs is None or len(prompt_logprobs) != len(scoring.prompt):
        got = "none" if prompt_logprobs is None else f"{len(prompt_logprobs)} positions"
        raise BackendError(f"vLLM returned {got} of prompt log-probs for a {len(scoring.prompt)}-token prompt",
                           "the engine must be asked with SamplingParams(prompt_logprobs=1)")
    start = len(scoring.prompt) - scoring.n_scored
    return [_position(prompt_logprobs[i], scoring.prompt[i], i) for i in range(start, len(scoring.prompt))]


def _position(entry: Mapping[int, Any] | None, token: int, index: int) -> tuple[float, int, float]:
    """The prompt token's log-prob and the position's most likely token: the one vLLM ranks 1 (the larger
    log-prob when an old vLLM gives no ranks)."""
    if not entry or token not in entry:
        raise BackendError(f"vLLM gave no log-prob for prompt token {token} at position {index}",
                           "the engine must be asked with SamplingParams(prompt_logprobs=1)")
    best_id, best = min(entry.items(), key=lambda kv: (_rank(kv[1]), -_logprob(kv[1])))
    return _logprob(entry[token]), int(best_id), _logprob(best)


def loglikelihood_result(positions: Sequence[tuple[float, int, float]], scoring: Scoring,
                         targets: Sequence[int]) -> LoglikelihoodResult:
    greedy = all(best == t for (_, best, _), t in zip(positions, targets))
    return LoglikelihoodResult(float(sum(p[0] for p in positions)), bool(greedy), len(positions), scoring.truncated)


def rolling_scores(positions: Sequence[tuple[float, int, float]]) -> tuple[list[float], list[tuple[int, float]]]:
    """A window's (log-probs, (top-1 id, its log-prob) pairs), the shape ``_hf_rolling.collect`` takes."""
    return [p[0] for p in positions], [(p[1], p[2]) for p in positions]


def generate_result(output: Any, n_prompt: int, params: GenParams, piece: Any) -> GenerateResult:
    """A ``CompletionOutput`` (text, token_ids, finish_reason, logprobs) as a :class:`GenerateResult`.

    Stop sequences are cut again here (vLLM already drops them) so both backends cut at the earliest one.
    """
    text, finish = str(output.text), "length" if output.finish_reason == "length" else "stop"
    cuts = [text.find(s) for s in params.stop if s and s in text]
    if cuts:
        text, finish = text[: min(cuts)], "stop"
    logprobs = None
    if params.logprobs is not None:
        logprobs = _token_logprobs(output.token_ids, output.logprobs, params.logprobs, piece)
    return GenerateResult(text, finish, n_prompt, len(output.token_ids), logprobs)


def _token_logprobs(token_ids: Sequence[int], entries: Sequence[Any] | None, k: int,
                    piece: Any) -> tuple[TokenLogprob, ...]:
    if entries is None or len(entries) != len(token_ids):
        raise BackendError("vLLM returned no log-probs for the generated tokens",
                           "the engine must be asked with SamplingParams(logprobs=k)")
    out = []
    for token, entry in zip(token_ids, entries):
        ranked = sorted(entry.items(), key=lambda kv: (_rank(kv[1]), -_logprob(kv[1])))[:k] if k else []
        out.append(TokenLogprob(piece(int(token)), _logprob(entry[token]),
                                tuple((piece(int(t)), _logprob(lp)) for t, lp in ranked)))
    return tuple(out)


def _logprob(value: Any) -> float:
    """vLLM >= 0.4 gives ``Logprob`` objects; older versions gave bare floats."""
    return float(getattr(value, "logprob", value))


def _rank(value: object) -> int:
    rank = getattr(value, "rank", None)
    return int(rank) if rank is not None else 1 << 30
