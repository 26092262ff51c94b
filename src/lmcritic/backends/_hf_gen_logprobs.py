"""Log-probs of generated tokens (what OpenAI's ``logprobs``/``top_logprobs`` return), for requests that ask.

After generation, the prompt's tokens and the answer's tokens go through the model once more and each answer
token gets ``log_softmax`` of the raw logits at its position (no temperature or top-p: the model's own
distribution) and the ``k`` most likely alternatives there. The answer's tokens are the tokenizer's split of the
returned text, which is the generated sequence whenever the model produced the canonical tokenization (greedy
decoding almost always does); requests that do not ask are not touched.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import torch

from lmcritic.requests import GenerateRequest, GenerateResult, TokenLogprob

if TYPE_CHECKING:
    from lmcritic.backends.hf import HFBackend


def attach(be: HFBackend, requests: Sequence[GenerateRequest], results: list[GenerateResult]) -> list[GenerateResult]:
    from lmcritic.backends._hf_generate import _prompt_ids

    out = []
    for i, (req, res) in enumerate(zip(requests, results)):
        k = req.params.logprobs
        if k is None:
            out.append(res)
            continue
        prompt = _prompt_ids(be, i, req)
        answer = be.tokenizer(res.text, add_special_tokens=False, verbose=False)["input_ids"] if res.text else []
        out.append(replace(res, logprobs=_score(be, prompt, answer, k)))
    return out


def _score(be: HFBackend, prompt: list[int], answer: list[int], k: int) -> tuple[TokenLogprob, ...]:
    if not answer:
        return ()
    ids = torch.tensor([prompt + answer], device=be.device)
    logits = be.model(input_ids=ids).logits[0, len(prompt) - 1 : len(prompt) - 1 + len(answer)].float()
    logp = torch.log_softmax(logits, dim=-1)
    chosen = logp[torch.arange(len(answer)), torch.tensor(answer, device=logp.device)].tolist()
    tops = torch.topk(logp, k, dim=-1) if k else None
    out = []
    for j, tok in enumerate(answer):
        alts = () if tops is None else tuple(zip(map(_piece(be), tops.indices[j].tolist()), tops.values[j].tolist()))
        out.append(TokenLogprob(_piece(be)(tok), float(chosen[j]), alts))
    return tuple(out)


def _piece(be: HFBackend):
    return lambda token_id: be.tokenizer.decode([token_id])
