"""Reply bodies of ``lmcritic serve``: log-prob blocks (scored prompts, generated tokens in the completions and
chat formats), token usage, and the switch to server-sent events for ``stream=true``."""
from __future__ import annotations

from typing import Any, Sequence

from lmcritic._serve_sse import SSE
from lmcritic.requests import GenerateResult, RollingResult


def maybe_stream(body: dict[str, Any], stream: bool, reply: dict[str, Any]) -> dict[str, Any] | SSE:
    """The reply, or its chunks as server-sent events (with a usage chunk when stream_options asks)."""
    if not stream:
        return reply
    from lmcritic._serve_sse import chunks

    opts = body.get("stream_options") or {}
    return SSE(chunks(reply, include_usage=isinstance(opts, dict) and opts.get("include_usage") is True))


def completion_logprobs(res: GenerateResult) -> dict[str, Any] | None:
    """The legacy completions ``logprobs`` block for generated tokens."""
    if res.logprobs is None:
        return None
    offsets, at = [], 0
    for t in res.logprobs:
        offsets.append(at)
        at += len(t.token)
    return {"tokens": [t.token for t in res.logprobs], "token_logprobs": [t.logprob for t in res.logprobs],
            "top_logprobs": [dict(t.top) for t in res.logprobs], "text_offset": offsets}


def chat_logprobs(res: GenerateResult) -> dict[str, Any] | None:
    """The chat ``logprobs`` block: ``content`` entries with token, logprob, bytes and top_logprobs."""
    if res.logprobs is None:
        return None

    def entry(token: str, lp: float) -> dict[str, Any]:
        return {"token": token, "logprob": lp, "bytes": list(token.encode("utf-8"))}

    return {"content": [{**entry(t.token, t.logprob), "top_logprobs": [entry(a, b) for a, b in t.top]}
                        for t in res.logprobs], "refusal": None}


def logprobs_block(roll: RollingResult) -> dict[str, Any]:
    top = roll.top1 or [None] * len(roll.tokens)
    return {"tokens": list(roll.tokens), "token_logprobs": list(roll.logprobs),
            "top_logprobs": [dict([t]) if t is not None else None for t in top],
            "text_offset": [start for start, _ in roll.offsets], "text_end_offset": [end for _, end in roll.offsets],
            "token_ids": list(roll.token_ids)}


def usage(results: Sequence[GenerateResult]) -> dict[str, int]:
    prompt = sum(r.n_prompt_tokens for r in results)
    new = sum(r.n_new_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": new, "total_tokens": prompt + new}
