"""Any OpenAI-compatible server (vLLM, llama.cpp, TGI, ``lmcritic serve``, the OpenAI API) as a backend.

Stdlib HTTP only. Scoring (loglikelihood, rolling log-probs) uses ``/completions`` with ``echo`` and
``logprobs``, as lm-eval's ``local-completions`` does; enable it with ``logprobs=True`` only for servers
that support it. The API key is read from ``$api_key_env`` at request time and stored nowhere.

``base_url`` may be a list: replicas of one model (e.g. one vLLM server per GPU) behind client-side least-
outstanding-requests balancing; a failing endpoint is ejected for a while and its requests retried on the others
(``_endpoints``). The default concurrency of 32 keeps a vLLM server's continuous batching busy.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence, TypeVar

from lmcritic._serde import stable_hash
from lmcritic.backends._endpoints import EndpointPool, PoolStats
from lmcritic.backends.base import Backend, check_generate, check_text
from lmcritic.errors import BackendError, ConfigError, InputError
from lmcritic.requests import (
    Capability,
    GenerateRequest,
    GenerateResult,
    GenParams,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
)

log = logging.getLogger("lmcritic.openai")
MODES = ("auto", "completions", "chat")
T = TypeVar("T")
R = TypeVar("R")


class OpenAIBackend(Backend):
    """A model behind ``base_url`` (one URL, or a list of servers of the same model). ``mode``: "completions"
    for prompts and "chat" for messages ("auto"), or force one endpoint for everything. Requests run
    ``concurrency`` at a time over all servers; results keep their order. ``requests_per_minute`` limits each
    server; ``max_retries`` counts attempts per request over all servers.
    """

    kind = "openai"

    def __init__(self, model: str, base_url: str | list[str] = "http://127.0.0.1:8000/v1",
                 api_key_env: str | None = "OPENAI_API_KEY", mode: str = "auto", logprobs: bool = False,
                 timeout: float = 60, max_retries: int = 5, backoff: float = 0.5,
                 requests_per_minute: float | None = None, concurrency: int = 32, chat: bool = True,
                 prefix_token: bool = False) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        _check_options(urls, mode, timeout, max_retries, backoff, requests_per_minute, concurrency)
        self.urls = [u.rstrip("/") for u in urls]
        self.model, self.base_url, self.mode = model, self.urls[0] if len(urls) == 1 else "+".join(self.urls), mode
        self.api_key_env, self.logprobs, self.chat, self.concurrency = api_key_env, logprobs, chat, concurrency
        self.prefix_token = prefix_token  # lmcritic serve's extension: score a text's first token too
        self._warned = False
        self.client = EndpointPool(self.urls, api_key_env, timeout, max_retries, backoff, requests_per_minute)

    @property
    def capabilities(self) -> frozenset[Capability]:
        caps = {Capability.GENERATE}
        if self.chat and self.mode != "completions":
            caps.add(Capability.CHAT)
        if self.logprobs:
            caps |= {Capability.LOGLIKELIHOOD, Capability.ROLLING_LOGPROBS}
        return frozenset(caps)

    def fingerprint(self) -> str:
        """Hash of (base_url, model, mode). The server's weights cannot be verified over the API: if the
        server swaps models under the same name, cached results are silently stale; use a new model name.
        Several servers hash as their sorted URLs, so listing them in another order keeps the cache."""
        where = self.urls[0] if len(self.urls) == 1 else sorted(self.urls)
        return stable_hash("openai", where, self.model, self.mode)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model, "base_url": self.urls[0] if len(self.urls) == 1
                else self.urls, "mode": self.mode, "logprobs": self.logprobs, "api_key_env": self.api_key_env,
                "concurrency": self.concurrency}

    def endpoint_stats(self) -> PoolStats:
        """Retries so far and, per server, requests sent, failed attempts and ejections."""
        return self.client.stats()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r}, mode={self.mode!r})"

    # scoring
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Sum the echoed log-probs of the tokens that start inside the continuation.

        Trailing whitespace of the context moves to the continuation first (lm-eval). A token that straddles
        the context/continuation boundary counts as context. An empty context is refused: servers give the
        first token no log-prob (lm-eval refuses it for API models too). Against ``lmcritic serve`` the
        result equals the hf backend's (lm-eval's) loglikelihood of the served model.
        ``is_greedy`` needs the server's ``top_logprobs``; without them it is False (and a warning is logged).
        """
        self.require(Capability.LOGLIKELIHOOD)
        pairs = [_split(req, i) for i, req in enumerate(requests)]
        return self._map(lambda pair: self._score_pair(*pair), pairs)

    def _score_pair(self, context: str, continuation: str) -> LoglikelihoodResult:
        text = context + continuation
        lp = self._echo(text)
        idx = [i for i, off in enumerate(lp["text_offset"]) if len(context) <= off < len(text)]
        values = [lp["token_logprobs"][i] for i in idx]
        if not idx or any(v is None for v in values):
            raise BackendError(f"{self.base_url} gave no log-probs for the continuation {continuation[:40]!r}",
                               "the server may not support echo with logprobs; set logprobs=False")
        tops = lp.get("top_logprobs")
        tops = tops if isinstance(tops, list) and len(tops) == len(lp["tokens"]) else [None] * len(lp["tokens"])
        if any(tops[i] is None for i in idx) and not self._warned:
            self._warned = True
            log.warning("%s returns no top_logprobs; is_greedy will be reported False", self.base_url)
        greedy = all(_is_top(lp["tokens"][i], lp["token_logprobs"][i], tops[i]) for i in idx)
        return LoglikelihoodResult(float(sum(values)), greedy, len(idx))

    def rolling_logprobs(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        """Per-token log-probs of each whole text, echoed by the server.

        The window is the server's context length (``window``/``stride`` of the request cannot be passed
        through the API); longer texts fail or are truncated as the server decides. Tokens whose log-prob is
        null are dropped: on standard servers that is the first token, which has no context; with
        ``prefix_token=True`` ``lmcritic serve`` scores it after the model's prefix token, so nothing is lost.
        ``token_ids`` are -1 and token ends are inferred from the next start unless the server reports them
        (``lmcritic serve`` does).
        """
        self.require(Capability.ROLLING_LOGPROBS)
        texts = [check_text(req.text, f"request {i} text") for i, req in enumerate(requests)]
        return self._map(self._rolling_one, texts)

    def _rolling_one(self, text: str) -> RollingResult:
        lp = self._echo(text, self.prefix_token)
        starts, n = lp["text_offset"], len(lp["tokens"])
        ends: list[int] = lp["text_end_offset"] if _int_list(lp.get("text_end_offset"), n) else _ends(starts, len(text))
        ids = lp["token_ids"] if _int_list(lp.get("token_ids"), n) else [-1] * n
        keep = [i for i, v in enumerate(lp["token_logprobs"]) if v is not None and starts[i] < len(text)]
        return RollingResult(
            token_ids=tuple(int(ids[i]) for i in keep),
            tokens=tuple(lp["tokens"][i] for i in keep),
            logprobs=tuple(float(lp["token_logprobs"][i]) for i in keep),
            offsets=tuple((starts[i], min(len(text), ends[i])) for i in keep),
        )

    def _echo(self, text: str, prefix: bool = False) -> dict[str, Any]:
        body = {"model": self.model, "prompt": text, "max_tokens": 0, "echo": True, "logprobs": 1, "temperature": 0}
        if prefix:
            body["prefix_token"] = True
        data = self.client.post("/completions", body)
        lp = _first_choice(data, self.base_url).get("logprobs")
        keys = ("tokens", "token_logprobs", "text_offset")
        if not isinstance(lp, dict) or not all(isinstance(lp.get(k), list) for k in keys) or \
                len({len(lp[k]) for k in keys}) != 1 or not _int_list(lp["text_offset"], len(lp["tokens"])) or \
                not all(v is None or isinstance(v, (int, float)) for v in lp["token_logprobs"]):
            raise BackendError(f"{self.base_url}/completions returned no echoed log-probs",
                               "the server may not support echo with logprobs; set logprobs=False")
        return lp

    # generation
    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """``/completions`` for prompts and ``/chat/completions`` for messages (or as ``mode`` forces)."""
        self.require(Capability.GENERATE)
        for i, req in enumerate(requests):
            check_generate(req, self, i)
            if req.params.num_beams > 1:
                raise ConfigError(f"request {i} asks for num_beams={req.params.num_beams}",
                                  "the OpenAI API has no beam search; use num_beams=1")
        return self._map(self._generate_one, list(requests))

    def _generate_one(self, req: GenerateRequest) -> GenerateResult:
        if req.params.max_new_tokens == 0:  # many servers reject max_tokens=0 for generation
            return GenerateResult("", "length")
        body = {"model": self.model, **_sampling(req.params)}
        if self._use_chat(req):
            messages = [{"role": m.role, "content": m.content} for m in req.messages or ()]
            body["messages"] = messages or [{"role": "user", "content": req.prompt}]
            data = self.client.post("/chat/completions", body)
            choice = _first_choice(data, self.base_url)
            text = (choice.get("message") or {}).get("content") or ""
        else:
            body["prompt"] = req.prompt
            data = self.client.post("/completions", body)
            choice = _first_choice(data, self.base_url)
            text = choice.get("text") or ""
        return _result(str(text), choice.get("finish_reason"), req.params, data.get("usage") or {})

    def _use_chat(self, req: GenerateRequest) -> bool:
        return req.is_chat or self.mode == "chat"

    def _map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        """``fn`` over ``items`` with up to ``concurrency`` in flight; results in input order."""
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            futures = [pool.submit(fn, x) for x in items]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise


def _check_options(urls: list[str], mode: str, timeout: float, max_retries: int, backoff: float,
                   requests_per_minute: float | None, concurrency: int) -> None:
    if not urls:
        raise ConfigError("base_url is an empty list", "give one URL or a list of servers of the same model")
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {url!r}")
    if len(set(urls)) != len(urls):
        raise ConfigError("base_url lists a server twice", "list each server once")
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if timeout <= 0 or max_retries < 0 or backoff < 0 or concurrency < 1:
        raise ConfigError("need timeout > 0, max_retries >= 0, backoff >= 0 and concurrency >= 1")
    if requests_per_minute is not None and requests_per_minute <= 0:
        raise ConfigError(f"requests_per_minute must be > 0, got {requests_per_minute}")


def _split(req: LoglikelihoodRequest, index: int) -> tuple[str, str]:
    """lm-eval's split: the context's trailing whitespace belongs to the continuation."""
    context = check_text(req.context, f"request {index} context", allow_empty=True)
    continuation = check_text(req.continuation, f"request {index} continuation")
    if not context:
        raise InputError(f"request {index} has an empty context",
                         "API servers give the first token no log-prob; put a prefix (e.g. a newline) first")
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


def _ends(starts: list[int], length: int) -> list[int]:
    """Token ends from starts alone: the next *larger* start (byte tokens of one character share theirs)."""
    ends, nxt = [0] * len(starts), length
    for i in range(len(starts) - 1, -1, -1):
        ends[i] = nxt
        if i and starts[i - 1] < starts[i]:
            nxt = starts[i]
    return ends


def _int_list(value: object, n: int) -> bool:
    return isinstance(value, list) and len(value) == n and all(isinstance(v, int) for v in value)


def _is_top(token: str, logprob: float, top: dict[str, float] | None) -> bool:
    """Greedy if the token is the top-1 alternative (or ties with it)."""
    if not top:
        return False
    best, best_lp = max(top.items(), key=lambda kv: kv[1])
    return best == token or best_lp <= logprob + 1e-6


def _first_choice(data: dict[str, Any], url: str) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BackendError(f"{url} answered without choices: {str(data)[:120]!r}")
    return choices[0]


def _sampling(p: GenParams) -> dict[str, Any]:
    body: dict[str, Any] = {"max_tokens": p.max_new_tokens, "temperature": p.temperature, "top_p": p.top_p}
    if p.seed is not None:
        body["seed"] = p.seed
    if p.stop:
        body["stop"] = list(p.stop)
    if p.top_k:
        body["top_k"] = p.top_k  # not OpenAI's API, but vLLM, llama.cpp and lmcritic serve accept it
    return body


def _result(text: str, finish: str | None, params: GenParams, usage: dict[str, Any]) -> GenerateResult:
    """Normalize a choice; stop sequences are applied again here since some servers leave them in."""
    cuts = [text.find(s) for s in params.stop if s and s in text]
    if cuts:
        text, finish = text[: min(cuts)], "stop"
    return GenerateResult(text, "length" if finish == "length" else "stop",
                          int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
