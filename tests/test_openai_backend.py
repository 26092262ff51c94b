"""The openai backend against real loopback servers: ``lmcritic serve`` over python, character-level and
tiny HF models, plus scripted servers that throttle, fail, hang or echo secrets."""
from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

import contract
from lmcritic.backends.openai import OpenAIBackend
from lmcritic.backends.python import PythonBackend
from lmcritic.errors import BackendError, CapabilityError, ConfigError, InputError
from lmcritic.requests import (
    Capability,
    ChatMessage,
    GenerateRequest,
    GenParams,
    LoglikelihoodRequest,
    RollingRequest,
)
from test_serve import KEY, CharBackend, chatty, running, shout

OK = {"status": 200, "body": {"choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 3, "completion_tokens": 1}}}
Step = dict[str, Any]


@contextmanager
def scripted(steps: list[Step], default: Step | Callable[[dict], Step] = OK) -> Iterator[tuple[str, list]]:
    """A loopback server answering ``steps`` in turn, then ``default`` (a step, or a function of the body).
    Yields its /v1 URL and the log of (arrival time, headers, body) it received."""
    seen: list[tuple[float, dict, dict]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                seen.append((time.monotonic(), dict(self.headers), body))
                step = steps.pop(0) if steps else default
            step = step(body) if callable(step) else step
            time.sleep(step.get("sleep", 0))
            data = json.dumps(step["body"]).encode()
            try:
                self.send_response(step["status"])
                for k, v in step.get("headers", {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout test)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def client(url: str, **kw: Any) -> OpenAIBackend:
    return OpenAIBackend("m", base_url=url, api_key_env=kw.pop("api_key_env", None), backoff=kw.pop("backoff", 0.01),
                         **kw)


def gen(prompt: str | None = None, messages: tuple | None = None, **params: Any) -> GenerateRequest:
    return GenerateRequest(prompt=prompt, messages=messages, params=GenParams(**params))


def test_generate_and_chat_round_trip() -> None:
    with running(PythonBackend(shout, name="shout")) as url:
        model = client(url, concurrency=3)
        prompts = [f"p{i}" for i in range(7)]
        out = model.generate([gen(p, max_new_tokens=3, stop=("|",)) for p in prompts] + [gen("z", max_new_tokens=0)])
        assert [r.text for r in out] == [p.upper() for p in prompts] + [""]
        assert out[-1].finish_reason == "length"
        with pytest.raises(ConfigError, match="no beam search"):
            model.generate([gen("x", num_beams=2)])
    with running(PythonBackend(chatty, chat=True)) as url:
        model = client(url)
        msgs = (ChatMessage("system", "s"), ChatMessage("user", "u"))
        assert model.generate([gen(messages=msgs)])[0].text == "system:s / user:u"
        assert client(url, mode="chat").generate([gen("hi")])[0].text == "user:hi"
        with pytest.raises(BackendError, match=r"HTTP 500 backend error.*model exploded \(see the server's log\)"):
            model.generate([gen(messages=(ChatMessage("user", "crash"),))])
    assert Capability.CHAT not in client(url, mode="completions").capabilities


REQS = [LoglikelihoodRequest("bad ", "cab"), LoglikelihoodRequest("x", "aaa"), LoglikelihoodRequest("q\n", "b a")]


def test_scoring_matches_direct_char_backend() -> None:
    direct = CharBackend()
    with running(direct) as url:
        model = client(url, logprobs=True, prefix_token=True)
        assert {Capability.LOGLIKELIHOOD, Capability.ROLLING_LOGPROBS} <= model.capabilities
        got, want = model.loglikelihood(REQS), direct.loglikelihood(REQS)
        assert [(round(g.logprob, 6), g.is_greedy, g.n_tokens) for g in got] == \
            [(round(w.logprob, 6), w.is_greedy, w.n_tokens) for w in want]
        assert [g.is_greedy for g in got] == [False, True, False]
        roll = model.rolling_logprobs([RollingRequest("hello a")])[0]
        assert roll == direct.rolling_logprobs([RollingRequest("hello a")])[0]
        with pytest.raises(InputError, match="empty context"):
            model.loglikelihood([LoglikelihoodRequest("", "x")])
    with pytest.raises(CapabilityError, match="loglikelihood"):
        client(url).loglikelihood(REQS)


def test_scoring_against_a_standard_server() -> None:
    """No lmcritic extensions: the first token is null (dropped), ids unknown, ends from the next start."""
    def standard(body: dict) -> Step:
        assert body["echo"] is True and body["max_tokens"] == 0 and body["prompt"] == "ab cd"
        lp = {"tokens": ["ab", " c", "d"], "token_logprobs": [None, -1.5, -0.5], "text_offset": [0, 2, 4],
              "top_logprobs": [None, {" c": -1.5, " x": -2.0}, {"e": -0.1}]}
        return {"status": 200, "body": {"choices": [{"text": "ab cd", "logprobs": lp}]}}

    with scripted([], default=standard) as (url, _):
        model = client(url, logprobs=True)
        roll = model.rolling_logprobs([RollingRequest("ab cd")])[0]
        assert (roll.tokens, roll.logprobs, roll.offsets, roll.token_ids) == \
            ((" c", "d"), (-1.5, -0.5), ((2, 4), (4, 5)), (-1, -1))
        ll = model.loglikelihood([LoglikelihoodRequest("ab", " cd"), LoglikelihoodRequest("ab ", "cd")])
        assert [(r.logprob, r.is_greedy, r.n_tokens) for r in ll] == [(-2.0, False, 2)] * 2


@pytest.fixture
def hf(tiny_causal: Any) -> Any:
    """The tiny trained GPT-2 of tests/conftest.py (HFBackend), served and compared below."""
    return tiny_causal


HF_LL = [LoglikelihoodRequest("The cat sat on the", " mat"), LoglikelihoodRequest("Hello ", "world, again"),
         LoglikelihoodRequest("naïve café —", " 😀 ok")]


def test_scoring_over_hf_matches_direct(hf: Any) -> None:
    """Over HTTP, rolling log-probs and lm-eval-style loglikelihood (value and is_greedy) equal the hf backend's."""
    texts = [RollingRequest("A short text to score, token by token: naïve café 😀."), RollingRequest("x")]
    with running(hf) as url:
        model = client(url, logprobs=True, prefix_token=True)
        for got, want in zip(model.rolling_logprobs(texts), hf.rolling_logprobs(texts)):
            assert (got.tokens, got.offsets, got.token_ids) == (want.tokens, want.offsets, want.token_ids)
            assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(got.logprobs, want.logprobs))
        got_ll = model.loglikelihood(HF_LL)
        plain = client(url, logprobs=True).rolling_logprobs(texts[:1])[0]  # standard echo: first token dropped
    want_ll = hf.loglikelihood(HF_LL)
    assert all(math.isclose(g.logprob, w.logprob, abs_tol=1e-4) for g, w in zip(got_ll, want_ll))
    assert [(g.is_greedy, g.n_tokens) for g in got_ll] == [(w.is_greedy, w.n_tokens) for w in want_ll]
    assert plain.tokens == hf.rolling_logprobs(texts[:1])[0].tokens[1:]


def test_generation_over_hf_matches_direct(hf: Any) -> None:
    greedy = [gen("Once upon a time", max_new_tokens=8), gen("the film is", max_new_tokens=5, stop=("e",))]
    chat = [gen(messages=(ChatMessage("system", "Be short."), ChatMessage("user", "Hi there")), max_new_tokens=6)]
    with running(hf) as url:
        model = client(url)
        for got, want in zip(model.generate(greedy), hf.generate(greedy)):
            assert (got.text, got.finish_reason, got.n_prompt_tokens, got.n_new_tokens) == \
                (want.text, want.finish_reason, want.n_prompt_tokens, want.n_new_tokens)
        if hf.supports(Capability.CHAT):
            assert model.generate(chat)[0].text == hf.generate(chat)[0].text


def test_retries_recover_from_429_and_503() -> None:
    throttle = {"status": 429, "headers": {"Retry-After": "0"}, "body": {"error": {"message": "slow down"}}}
    with scripted([throttle, throttle]) as (url, seen):
        start = time.monotonic()
        assert client(url, backoff=5).generate([gen("x")])[0].text == "ok"  # Retry-After: 0 beats backoff
        assert len(seen) == 3 and time.monotonic() - start < 2
    with scripted([{"status": 503, "body": {}}] * 3) as (url, seen):
        res = client(url).generate([gen("x")])[0]
        assert len(seen) == 4 and (res.text, res.n_prompt_tokens, res.n_new_tokens) == ("ok", 3, 1)
    with scripted([], default={"status": 503, "body": {"error": {"message": "overloaded"}}}) as (url, seen):
        with pytest.raises(BackendError, match="failed after 3 attempts: HTTP 503 overloaded"):
            client(url, max_retries=2).generate([gen("x")])
    with scripted([{"status": 400, "body": {"error": {"message": "bad temperature"}}}]) as (url, seen):
        with pytest.raises(BackendError, match="answered HTTP 400: bad temperature"):
            client(url).generate([gen("x")])
        assert len(seen) == 1  # client errors are not retried


def test_server_down_is_one_quick_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    start = time.monotonic()
    with pytest.raises(BackendError) as err:
        OpenAIBackend("m", base_url=url).generate([gen("x"), gen("y")])
    assert time.monotonic() - start < 2
    assert str(err.value) == (f"cannot reach {url}/completions: connection refused (is the server running? "
                              "start one with `lmcritic serve --model ...`)")


def test_timeout() -> None:
    with scripted([], default={"status": 200, "body": OK["body"], "sleep": 1.0}) as (url, seen):
        start = time.monotonic()
        with pytest.raises(BackendError, match=r"failed after 2 attempts: timed out after 0.2 s"):
            client(url, timeout=0.2, max_retries=1).generate([gen("x")])
        assert time.monotonic() - start < 1.0 and len(seen) == 2


def test_rate_limiter_spaces_requests_and_order_is_kept() -> None:
    def echo_slowly(body: dict) -> Step:  # later prompts answer sooner: order must still hold
        i = int(body["prompt"])
        choice = {"text": str(i), "finish_reason": "stop"}
        return {"status": 200, "sleep": 0.02 * (6 - i), "body": {"choices": [choice]}}

    with scripted([], default=echo_slowly) as (url, seen):
        out = client(url, requests_per_minute=1200, concurrency=4).generate([gen(str(i)) for i in range(6)])
        assert [r.text for r in out] == [str(i) for i in range(6)]
        times = sorted(t for t, _, _ in seen)
        assert min(b - a for a, b in zip(times, times[1:])) > 0.04  # 1200/min = one per 50 ms


def test_api_key_never_leaks(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("OA_TEST_KEY", KEY)
    leaky = {"status": 429, "headers": {"Retry-After": "0"}, "body": {"error": {"message": f"bad key Bearer {KEY}"}}}
    with scripted([leaky], default={"status": 400, "body": {"error": {"message": f"no! {KEY}"}}}) as (url, seen):
        model = client(url, api_key_env="OA_TEST_KEY")
        caplog.set_level(logging.DEBUG, logger="lmcritic")
        with pytest.raises(BackendError) as err:
            model.generate([gen("x")])
        assert seen[0][1]["Authorization"] == f"Bearer {KEY}"  # it was sent...
    texts = [str(err.value), repr(err.value), caplog.text, repr(model), json.dumps(model.describe()),
             model.fingerprint(), capsys.readouterr().err]
    assert "***" in str(err.value) and not any(KEY in t for t in texts)  # ...and written nowhere
    with running(PythonBackend(shout), api_key_env="OA_TEST_KEY") as url:
        assert client(url, api_key_env="OA_TEST_KEY").generate([gen("k", max_new_tokens=1)])[0].text == "K|EN"
        monkeypatch.setenv("OA_TEST_KEY", "sk-wrong")
        with pytest.raises(BackendError, match=r"HTTP 401.*\(set the API key in \$OA_TEST_KEY\)"):
            client(url, api_key_env="OA_TEST_KEY").generate([gen("k")])


def test_run_output_has_no_key(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("lmcritic.store.runs", reason="the run store is not written yet")
    from lmcritic.backends import ModelSpec
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    monkeypatch.setenv("OA_TEST_KEY", KEY)
    with running(CharBackend()) as url:
        options = {"base_url": url, "api_key_env": "OA_TEST_KEY", "logprobs": True}
        spec = RunSpec(model=ModelSpec(name="chars", backend="openai", options=options),
                       probes=(ProbeSpec("performance.perplexity", {"docs": 2, "window": 32, "stride": 32}),))
        runner = Runner(tmp_path / "runs.sqlite", tmp_path / "cache.sqlite", progress=False)
        assert runner.run(spec).status == "done"
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or KEY.encode() not in path.read_bytes(), path


def test_options_are_checked() -> None:
    for bad in ({"mode": "turbo"}, {"base_url": "127.0.0.1:8000"}, {"concurrency": 0}, {"requests_per_minute": 0}):
        with pytest.raises(ConfigError):
            OpenAIBackend("m", **bad)


def test_backend_contract(tiny_causal: Any) -> None:
    with running(tiny_causal) as url:
        contract.assert_declares_honestly(client(url, logprobs=True))
        contract.assert_declares_honestly(client(url, chat=False))
        contract.assert_batch_invariant(lambda: client(url, logprobs=True), HF_LL, "loglikelihood")
