"""Text generation, batched with left padding: greedy and sampled rows through lmcritic's own decoding loop
(``_hf_decode``: one seeded generator per row, finished rows leave the batch), beam search through ``generate``.

A sampled result never depends on what else was in the call: each row draws from its own generator seeded
with the request's seed, exactly the stream ``generate`` draws from after ``torch.manual_seed(seed)`` for that
request alone. Models the loop cannot drive (``_hf_decode.decode_ok``) keep the former path: ``generate``
batched for greedy, one request at a time under ``torch.manual_seed`` for sampling. Stop sequences end a row as
soon as they appear, and the text is cut at the earliest one; EOS also counts as "stop". A call's deadline
(``HFBackend(timeout=...)``) stops generation between tokens. :class:`Generation` is one prompt's generation that
can pause between tokens and continue from its KV cache with the same tokens (the server's scheduler uses it
to serve short requests first).
"""
from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import torch
from transformers import StoppingCriteria

from lmcritic.backends import _deadline, _hf_decode
from lmcritic.backends._batching import group_by, map_sorted, restore
from lmcritic.backends._hf_decode import decode_ok
from lmcritic.backends._hf_tensors import cache_kwarg, left_pad
from lmcritic.backends._host import TokenizerHost
from lmcritic.backends.base import check_generate
from lmcritic.errors import InputError
from lmcritic.requests import ChatMessage, GenerateRequest, GenerateResult, GenParams

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from lmcritic.backends.hf import HFBackend

_LOCK = threading.Lock()  # generate() swaps the model's generation_config for the call
DECODE_ROW_TOKENS = 512  # see decode_rows


def generate(be: HFBackend, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
    prompts = [_prompt_ids(be, i, r) for i, r in enumerate(requests)]
    own_loop = be.fast_paths and decode_ok(be.model)
    done: list[tuple[int, GenerateResult]] = []
    todo = []
    for i, (req, ids) in enumerate(zip(requests, prompts)):
        if req.params.max_new_tokens == 0:
            done.append((i, GenerateResult("", "length", len(ids), 0)))
        elif req.params.sampling and not own_loop:
            done.append((i, generate_alone(be, ids, req.params)))
        else:
            todo.append(i)
    # rows of one batch share their settings; sampled rows differ only in the seed, which each row keeps
    for params, members in group_by(todo, lambda i: replace(requests[i].params, seed=None)).items():
        own = own_loop and params.num_beams == 1
        run = _run_own if own else _run_generate
        rows = decode_rows(be.batch_size, max(len(prompts[i]) for i in members), params) if own else be.batch_size
        results = map_sorted(members, lambda i: len(prompts[i]), rows,
                             functools.partial(_run_chunk, be, prompts, requests, run, params))
        done.extend(zip(members, results))
    return restore(done, len(requests))


def decode_rows(batch_size: int, longest_prompt: int, params: GenParams) -> int:
    """Rows per decoding batch. A decoding step reads every weight for a few tokens per row, so on a CPU it is
    bound by memory bandwidth and 64 rows cost little more than 16: up to 4 × ``batch_size`` rows, as long as
    their prompts and answers hold no more tokens than ``batch_size`` rows of ``DECODE_ROW_TOKENS`` (the KV cache
    grows with the tokens). Results do not depend on it (each row keeps its own generator)."""
    per_row = longest_prompt + params.max_new_tokens
    return max(batch_size, min(4 * batch_size, batch_size * DECODE_ROW_TOKENS // max(1, per_row)))


def seed_of(params: GenParams) -> int:
    return params.seed if params.seed is not None else 0


def generate_alone(be: HFBackend, ids: Sequence[int], params: GenParams) -> GenerateResult:
    """The reference path for a sampled request: ``generate`` on it alone after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed_of(params))
    return _generate_batch(be, [ids], params)[0]


def _run_own(be: HFBackend, prompts: Sequence[Sequence[int]], each: Sequence[GenParams],
             params: GenParams) -> list[GenerateResult]:
    return _hf_decode.results(be, prompts, params, [seed_of(p) for p in each], finish)


def _run_generate(be: HFBackend, prompts: Sequence[Sequence[int]], each: Sequence[GenParams],
                  params: GenParams) -> list[GenerateResult]:
    return _generate_batch(be, prompts, params)


def _prompt_ids(be: HFBackend, index: int, req: GenerateRequest) -> list[int]:
    """The prompt's tokens (chat rendered with the template), refusing prompts that leave no room."""
    check_generate(req, be, index)
    text = _render_chat(be, index, req) if req.is_chat else req.prompt or ""
    ids = be.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"] if text else []
    ids = ids or [be.require_prefix_id()]
    need = len(ids) + req.params.max_new_tokens
    if need > be.max_length:
        raise InputError(f"request {index} prompt has {len(ids)} tokens; with max_new_tokens "
                         f"{req.params.max_new_tokens} that is {need}, over the model's max_length {be.max_length}",
                         "shorten the prompt or lower max_new_tokens")
    return ids


def _render_chat(be: TokenizerHost, index: int, req: GenerateRequest) -> str:
    return render_chat(be, req.messages or (), f"request {index} messages")


def render_chat(be: TokenizerHost, messages: Sequence[ChatMessage], what: str = "the messages") -> str:
    """A chat as the model's input up to its answer, through its chat template (also the white box's)."""
    rows = [{"role": m.role, "content": m.content} for m in messages]
    try:
        return str(be.tokenizer.apply_chat_template(rows, add_generation_prompt=True, tokenize=False))
    except Exception as err:  # jinja raises its own errors for roles a template refuses
        raise InputError(f"{what} do not fit the model's chat template: {err}",
                         "check the roles and their order") from None


def _generation_config(be: HFBackend, params: GenParams) -> Any:
    from transformers import GenerationConfig

    sampling = {"temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k}
    return GenerationConfig(max_new_tokens=params.max_new_tokens, do_sample=params.sampling,
                            num_beams=params.num_beams, pad_token_id=be.pad_id, eos_token_id=be.eos_ids or None,
                            **(sampling if params.sampling else {}))


def _run_chunk(be: HFBackend, prompts: Sequence[Sequence[int]], requests: Sequence[GenerateRequest],
               run: Callable[..., Any], params: GenParams, chunk: Sequence[int]) -> list[GenerateResult]:
    """One batch of a settings group: ``run`` on its prompts, each row with its own request's parameters."""
    out: list[GenerateResult] = run(be, [prompts[i] for i in chunk], [requests[i].params for i in chunk], params)
    return out


def _generate_batch(be: HFBackend, prompts: Sequence[Sequence[int]], params: GenParams) -> list[GenerateResult]:
    from transformers import StoppingCriteriaList

    ids, mask, _ = left_pad(prompts, be.pad_id, be.device)
    mask = torch.ones_like(ids) if mask is None else mask
    stopping = [StopOnText(be.tokenizer, params.stop, ids.shape[1])] if params.stop else []
    config = _generation_config(be, params)
    with _clean_config(be):
        out = be.model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                                stopping_criteria=StoppingCriteriaList([*stopping, Pause(_deadline.passed)]))
    _deadline.check()  # stopped by the deadline: an error, not a short answer
    new = out[:, ids.shape[1] :].tolist()
    return [finish(be, row, params.stop, len(p)) for row, p in zip(new, prompts)]


@contextmanager
def _clean_config(be: HFBackend) -> Iterator[None]:
    """No checkpoint defaults (top_k, temperature, ...) leak into a call: its own config is all there is."""
    from transformers import GenerationConfig

    with _LOCK:
        saved = be.model.generation_config
        be.model.generation_config = GenerationConfig()
        try:
            yield
        finally:
            be.model.generation_config = saved


def finish(be: HFBackend, tokens: list[int], stops: Sequence[str], n_prompt: int) -> GenerateResult:
    """Cut at EOS and at the earliest stop sequence; count the tokens the model really produced."""
    eos = set(be.eos_ids)
    cut = next((i for i, t in enumerate(tokens) if t in eos), None)
    if cut is not None:
        tokens, n_new, reason = tokens[:cut], cut + 1, "stop"
    else:
        while tokens and be.pad_id not in eos and tokens[-1] == be.pad_id:
            tokens = tokens[:-1]
        n_new, reason = len(tokens), "length"
    text = _decode(be, tokens)
    hits = [text.find(s) for s in stops if s and s in text]
    if hits:
        at = min(hits)
        n_new = _tokens_until(be, tokens, stops)
        return GenerateResult(text[:at], "stop", n_prompt, n_new)
    return GenerateResult(text, reason, n_prompt, n_new)


def _decode(be: HFBackend, tokens: Sequence[int]) -> str:
    return str(be.tokenizer.decode(list(tokens), skip_special_tokens=True))


def _tokens_until(be: HFBackend, tokens: Sequence[int], stops: Sequence[str]) -> int:
    """The fewest leading tokens whose text contains a stop sequence (binary search: containment only grows)."""
    lo, hi = 1, len(tokens)
    while lo < hi:
        mid = (lo + hi) // 2
        if any(s in _decode(be, tokens[:mid]) for s in stops if s):
            hi = mid
        else:
            lo = mid + 1
    return hi


class StopOnText(StoppingCriteria):
    """A stopping criterion: a row is done once its generated text contains any stop sequence."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stops: Sequence[str], start: int) -> None:
        self.tokenizer, self.stops, self.start = tokenizer, [s for s in stops if s], start
        self.tail = 2 * max((len(s) for s in self.stops), default=1) + 8  # tokens enough to hold any stop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        new = input_ids[:, self.start :][:, -self.tail :]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], device=input_ids.device)


class Pause(StoppingCriteria):
    """Stop every row once ``when()`` says so (checked after each token); ``fired`` tells it happened."""

    def __init__(self, when: Callable[[], bool]) -> None:
        self.when, self.fired = when, False

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.fired = self.fired or bool(self.when())
        return torch.full((input_ids.shape[0],), self.fired, dtype=torch.bool, device=input_ids.device)


class Generation:
    """One prompt's generation that can pause between tokens (``step(pause)`` returns None) and continue
    from its KV cache. The tokens are those of one uninterrupted call: the cache carries the model state,
    and a sampled generation keeps its own random state across pauses (other work may sample between)."""

    def __init__(self, be: HFBackend, request: GenerateRequest) -> None:
        self.be, self.params = be, request.params
        ids = _prompt_ids(be, 0, request)
        self.n_prompt = len(ids)
        self.seq = torch.tensor([ids], device=be.device)
        self.cache: Any = None
        self.result: GenerateResult | None = None if self.params.max_new_tokens else GenerateResult("", "length",
                                                                                                    len(ids), 0)
        self.rng: Any = None
        if self.params.sampling:
            with _rng_state(self):
                torch.manual_seed(self.params.seed if self.params.seed is not None else 0)

    @classmethod
    def start(cls, be: HFBackend, request: GenerateRequest) -> "Generation | None":
        """A pausable generation, or None where pausing is not exact (beam search keeps several beams)."""
        return None if request.params.num_beams > 1 else cls(be, request)

    @property
    def n_new(self) -> int:
        return self.seq.shape[1] - self.n_prompt

    def step(self, pause: Callable[[], bool]) -> GenerateResult | None:
        """Generate until done or until ``pause()`` is true; the result once done, else None."""
        if self.result is not None:
            return self.result
        from transformers import StoppingCriteriaList

        params, be = self.params, self.be
        stops = [StopOnText(be.tokenizer, params.stop, self.n_prompt)] if params.stop else []
        pauser = Pause(pause)
        config = _generation_config(be, params)
        config.max_new_tokens, config.return_dict_in_generate = params.max_new_tokens - self.n_new, True
        extra = {cache_kwarg(be.model) or "past_key_values": self.cache} if self.cache is not None else {}
        with torch.inference_mode(), _rng_state(self), _clean_config(be):
            out = be.model.generate(input_ids=self.seq, attention_mask=torch.ones_like(self.seq),
                                    generation_config=config, stopping_criteria=StoppingCriteriaList([*stops, pauser]),
                                    **extra)
        self.seq, self.cache = out.sequences, getattr(out, "past_key_values", None)
        if self._finished(stops):
            self.result = finish(be, self.seq[0, self.n_prompt :].tolist(), params.stop, self.n_prompt)
            self.cache = None
        return self.result

    def _finished(self, stops: list) -> bool:
        last = int(self.seq[0, -1]) if self.n_new else None
        if self.n_new >= self.params.max_new_tokens or last in set(self.be.eos_ids):
            return True
        return bool(stops) and bool(stops[0](self.seq, None).all())


@contextmanager
def _rng_state(gen: Generation) -> Iterator[None]:
    """Swap in a sampled generation's own random state (CPU and, on GPU, its device) for the block."""
    if not gen.params.sampling:
        yield
        return
    cuda = gen.be.device.type == "cuda"
    outer = (torch.get_rng_state(), torch.cuda.get_rng_state(gen.be.device) if cuda else None)
    if gen.rng is not None:
        torch.set_rng_state(gen.rng[0])
        if cuda:
            torch.cuda.set_rng_state(gen.rng[1], gen.be.device)
    try:
        yield
    finally:
        gen.rng = (torch.get_rng_state(), torch.cuda.get_rng_state(gen.be.device) if cuda else None)
        torch.set_rng_state(outer[0])
        if cuda and outer[1] is not None:
            torch.cuda.set_rng_state(outer[1], gen.be.device)
