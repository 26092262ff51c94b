"""``lmcritic serve``: the OpenAI-compatible server over real HTTP on 127.0.0.1, with a python backend,
a character-level scoring backend, and (when the fixture exists) the tiny HF model."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import pytest

from lmcritic.backends.base import Backend
from lmcritic.backends.python import PythonBackend
from lmcritic.errors import ConfigError
from lmcritic.requests import (
    Capability,
    GenerateRequest,
    GenParams,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
)
from lmcritic.serve import make_server

KEY = "sk-test-NEVER-LOG-THIS-4242"


class CharBackend(Backend):
    """A real (if silly) model: one token per character, log P(c at position i) depends on c and i;
    its favourite character everywhere is "a". Scoring over HTTP must reproduce it exactly."""

    kind = "chars"

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.LOGLIKELIHOOD, Capability.ROLLING_LOGPROBS})

    def fingerprint(self) -> str:
        return "chars-v1"

    @staticmethod
    def lp(char: str, pos: int) -> float:
        return -0.25 if char == "a" else -1.0 - (ord(char) * 7 + pos) % 11 / 4

    def rolling_logprobs(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        return [self._roll(r) for r in requests]

    def _roll(self, r: RollingRequest) -> RollingResult:
        lps = [None if i == 0 and not r.prefix else self.lp(c, i) for i, c in enumerate(r.text)]
        top = tuple(None if lp is None else ("a", self.lp("a", i)) for i, lp in enumerate(lps)) if r.top1 else None
        return RollingResult(tuple(ord(c) for c in r.text), tuple(r.text), tuple(lps),
                             tuple((i, i + 1) for i in range(len(r.text))), top)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        out = []
        for r in requests:
            ctx = r.context.rstrip()
            cont = r.context[len(ctx):] + r.continuation
            out.append(LoglikelihoodResult(sum(self.lp(c, len(ctx) + j) for j, c in enumerate(cont)),
                                           all(c == "a" for c in cont), len(cont)))
        return out


def shout(prompt: str, params: GenParams) -> str:
    return (prompt.upper() + "|END|tail")[: 4 * params.max_new_tokens]


def chatty(messages: list[dict]) -> str:
    if messages[-1]["content"] == "crash":
        raise RuntimeError("model exploded")
    return " / ".join(f"{m['role']}:{m['content']}" for m in messages)


@contextmanager
def running(backend: Backend, **kw: Any) -> Iterator[str]:
    """A real server on a free loopback port, in a background thread; yields its /v1 base URL."""
    server = make_server(backend, port=0, quiet=kw.pop("quiet", True), **kw)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def call(url: str, body: Any = None, key: str | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    """One HTTP request; returns (status, decoded JSON) for successes and errors alike."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def gen_url() -> Iterator[str]:
    with running(PythonBackend(shout, name="shout")) as url:
        yield url


def test_models_and_completions(gen_url: str) -> None:
    status, models = call(gen_url + "/models")
    assert status == 200 and models["data"][0]["id"] == "shout"
    status, out = call(gen_url + "/completions", {"model": "shout", "prompt": ["ab", "cd"], "max_tokens": 3,
                                                   "stop": "|", "temperature": 0})
    assert status == 200 and out["object"] == "text_completion" and out["model"] == "shout"
    assert [c["text"] for c in out["choices"]] == ["AB", "CD"]
    assert [c["index"] for c in out["choices"]] == [0, 1] and set(out["usage"]) >= {"prompt_tokens", "total_tokens"}
    _, echoed = call(gen_url + "/completions", {"prompt": "x", "max_tokens": 1, "echo": True})
    assert echoed["choices"][0]["text"] == "xX|EN"


@pytest.mark.parametrize("body, field", [
    ({"prompt": 3}, "prompt"), ({"prompt": []}, "prompt"), ({"prompt": [[1, 2]]}, "prompt"),
    ({"prompt": "x", "max_tokens": -1}, "max_tokens"), ({"prompt": "x", "max_tokens": "5"}, "max_tokens"),
    ({"prompt": "x", "temperature": "hot"}, "temperature"), ({"prompt": "x", "stop": [1]}, "stop"),
    ({"prompt": "x", "n": 2}, "n"), ({"prompt": "x", "echo": "yes"}, "echo"),
    ({"prompt": "x", "top_p": 0}, "top_p"), ({"prompt": "x", "stream": "yes"}, "stream"),
    ({"prompt": "x", "logprobs": 1, "max_tokens": 5}, "logprobs"),
    ({"prompt": "x", "logprobs": 1, "echo": True, "max_tokens": 0}, "logprobs"),  # cannot score
])
def test_bad_requests_are_400_naming_the_field(gen_url: str, body: dict, field: str) -> None:
    status, out = call(gen_url + "/completions", body)
    assert status == 400 and out["error"]["type"] == "invalid_request_error"
    assert field in out["error"]["message"], out


def test_http_errors(gen_url: str) -> None:
    assert call(gen_url + "/nope")[0] == 404
    assert call(gen_url + "/completions")[0] == 405  # GET on a POST endpoint
    status, out = call(gen_url + "/completions", raw=b"{not json")
    assert status == 400 and "JSON" in out["error"]["message"]
    assert call(gen_url + "/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})[0] == 400


def test_chat_and_backend_errors() -> None:
    with running(PythonBackend(chatty, chat=True)) as url:
        parts = [{"type": "text", "text": "hi"}]
        msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": parts}]
        status, out = call(url + "/chat/completions", {"messages": msgs, "max_tokens": 5})
        assert status == 200 and out["object"] == "chat.completion"
        assert out["choices"][0]["message"] == {"role": "assistant", "content": "system:be brief / user:hi"}
        status, out = call(url + "/chat/completions", {"messages": [{"role": "user", "content": "crash"}]})
        assert status == 500 and "model exploded" in out["error"]["message"]
        assert call(url + "/chat/completions", {"messages": [{"role": "user"}]})[1]["error"]["param"] == "messages"


def test_api_key_required_and_never_logged(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("SERVE_TEST_KEY", KEY)
    with running(PythonBackend(shout), api_key_env="SERVE_TEST_KEY", quiet=False) as url:
        assert call(url + "/models")[0] == 401
        assert call(url + "/models", key="wrong")[0] == 401
        status, out = call(url + "/completions", {"prompt": "k", "max_tokens": 2}, key=KEY)
        assert status == 200 and out["choices"][0]["text"] == "K|END|ta"
    err = capsys.readouterr().err
    assert '"POST /v1/completions" 200' in err and '"GET /v1/models" 401' in err
    assert KEY not in err and "Authorization" not in err and "wrong" not in err
    monkeypatch.delenv("SERVE_TEST_KEY")
    with pytest.raises(ConfigError, match="SERVE_TEST_KEY"):
        make_server(PythonBackend(shout), api_key_env="SERVE_TEST_KEY")


def test_body_size_is_bounded() -> None:
    with running(PythonBackend(shout), max_body_bytes=1000) as url:
        status, out = call(url + "/completions", {"prompt": "x" * 2000})
        assert status == 413 and "limit" in out["error"]["message"]
        assert call(url + "/completions", {"prompt": "x", "max_tokens": 1})[0] == 200


def test_echo_logprobs_in_openai_format() -> None:
    text = "bad cab"
    body = {"prompt": [text, "a"], "max_tokens": 0, "echo": True, "logprobs": 1, "temperature": 0}
    with running(CharBackend()) as url:
        status, out = call(url + "/completions", body)
        _, ext = call(url + "/completions", {**body, "prefix_token": True})
    assert status == 200
    lp = out["choices"][0]["logprobs"]
    assert out["choices"][0]["text"] == text and lp["tokens"] == list(text)
    assert lp["text_offset"] == list(range(len(text)))
    assert lp["token_logprobs"] == [None] + [CharBackend.lp(c, i) for i, c in enumerate(text)][1:]
    assert lp["top_logprobs"][0] is None and lp["top_logprobs"][1] == {"a": -0.25} and lp["token_ids"][0] == ord("b")
    assert out["usage"]["prompt_tokens"] == len(text) + 1
    # lmcritic extension: the first token is scored too (after the model's prefix token)
    assert ext["choices"][0]["logprobs"]["token_logprobs"] == [CharBackend.lp(c, i) for i, c in enumerate(text)]


def test_echo_over_hf_matches_direct(tiny_causal: Backend) -> None:
    model = tiny_causal
    text = "The quick brown fox jumps over the lazy dog."
    direct = model.rolling_logprobs([RollingRequest(text, prefix=False, top1=True)])[0]
    with running(model) as url:
        _, out = call(url + "/completions", {"prompt": text, "max_tokens": 0, "echo": True, "logprobs": 1})
        lp = out["choices"][0]["logprobs"]
        assert lp["tokens"] == list(direct.tokens)
        assert lp["text_offset"] == [s for s, _ in direct.offsets]
        assert lp["token_logprobs"][0] is None and direct.logprobs[0] is None
        assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(lp["token_logprobs"][1:], direct.logprobs[1:]))
        assert [list(t) if t else None for t in lp["top_logprobs"]] == \
            [[t[0]] if t else None for t in direct.top1]
        params = GenParams(max_new_tokens=6)
        want = model.generate([GenerateRequest(prompt="Hello", params=params)])[0]
        _, got = call(url + "/completions", {"prompt": "Hello", "max_tokens": 6, "temperature": 0})
        assert got["choices"][0]["text"] == want.text
        assert got["usage"]["completion_tokens"] == want.n_new_tokens


def test_cli_serves_until_stopped(tmp_path) -> None:
    """`lmcritic serve` end to end: it prints the bound address, answers, and refuses a taken port."""
    cmd = [sys.executable, "-m", "lmcritic.cli.main", "serve", "--backend", "python", "--model", "builtins:str.upper"]
    env = {**os.environ, "LMCRITIC_HOME": str(tmp_path)}
    proc = subprocess.Popen([*cmd, "--port", "0"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = ""
        for _ in range(5):  # loading line, then the serving line
            line = proc.stderr.readline()
            if "serving" in line:
                break
        url = line.split(" at ")[1].split()[0]
        status, out = call(url + "/completions", {"prompt": "hi", "max_tokens": 2})
        assert status == 200 and out["choices"][0]["text"] == "HI"
        port = url.rsplit(":", 1)[1].split("/")[0]
        taken = subprocess.run([*cmd, "--port", port], capture_output=True, text=True, env=env, timeout=30)
        assert taken.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr
        assert "Traceback" not in taken.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
