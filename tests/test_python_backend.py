"""The python backend: user callables as models, with every output checked and every failure named."""
from __future__ import annotations

import importlib
import math
import sys
from typing import Any

import pytest

import contract
from lmcritic.backends import BACKENDS, ModelSpec, load_model
from lmcritic.backends.python import PythonBackend
from lmcritic.errors import BackendError, CapabilityError, ConfigError, InputError
from lmcritic.requests import Capability, ChatMessage, ClassifyRequest, GenerateRequest, GenParams

LABELS = ("negative", "positive")


def reverse(prompt: str) -> str:
    return prompt[::-1]


def with_params(prompt: str, params: GenParams) -> str:
    return f"{prompt}:{params.max_new_tokens}:{params.temperature}\nmore"


def sentiment(text: str) -> dict[str, float]:
    p = 0.9 if "good" in text else 0.2
    return {"positive": p, "negative": 1 - p}


def gen(prompt: str | None = None, messages: tuple[ChatMessage, ...] | None = None, **params) -> GenerateRequest:
    return GenerateRequest(prompt=prompt, messages=messages, params=GenParams(**params))


def test_generate_with_stop_and_params() -> None:
    model = PythonBackend(with_params)
    out = model.generate([gen("hi", max_new_tokens=5, stop=("\n",)), gen("yo"), gen("zero", max_new_tokens=0)])
    assert [r.text for r in out] == ["hi:5:0.0", "yo:64:0.0\nmore", ""]
    assert [r.finish_reason for r in out] == ["stop", "stop", "length"]
    assert model.capabilities == {Capability.GENERATE}
    with pytest.raises(CapabilityError, match="chat"):
        model.generate([gen(messages=(ChatMessage("user", "hi"),))])
    with pytest.raises(CapabilityError, match="classify"):
        model.classify([ClassifyRequest("x")])


def test_chat_gets_message_dicts() -> None:
    seen = []
    model = PythonBackend(lambda msgs: seen.append(msgs) or msgs[-1]["content"].upper(), chat=True)
    assert model.capabilities == {Capability.GENERATE, Capability.CHAT}
    out = model.generate([gen(messages=(ChatMessage("system", "s"), ChatMessage("user", "hey"))), gen("plain")])
    assert [r.text for r in out] == ["HEY", "PLAIN"]
    assert seen == [[{"role": "system", "content": "s"}, {"role": "user", "content": "hey"}],
                    [{"role": "user", "content": "plain"}]]


def test_classify_dict_and_sequence() -> None:
    model = PythonBackend(sentiment, task="classify", labels=LABELS)
    res = model.classify([ClassifyRequest("good film"), ClassifyRequest("bad film")])
    assert [r.label for r in res] == ["positive", "negative"] and res[0].labels == LABELS
    assert math.isclose(res[0].probs[0], 0.1) and model.capabilities == {Capability.CLASSIFY}
    seq = PythonBackend(lambda t: [0.25, 0.75], task="classify", labels=LABELS).classify([ClassifyRequest("x")])
    assert seq[0].probs == (0.25, 0.75) and seq[0].label == "positive"
    inferred = PythonBackend(sentiment, task="classify").classify([ClassifyRequest("good")])[0]
    assert inferred.labels == ("positive", "negative")
    pair = PythonBackend(lambda a, b: {"same": float(a == b), "diff": float(a != b)}, task="classify")
    assert pair.classify([ClassifyRequest("a", "a")])[0].label == "same"


@pytest.mark.parametrize("out, match", [
    ({"positive": 0.7, "negative": 0.7}, "summing to 1.4"),
    ({"positive": 1.5, "negative": -0.5}, "finite and >= 0"),
    ({"positive": float("nan"), "negative": 0.5}, "finite"),
    ({"positive": 0.5, "neutral": 0.5}, "returned labels"),
    ([0.2, 0.3, 0.5], "3 probabilities"),
    (["a", "b"], "non-numeric"),
    ("positive", "returned str"),
])
def test_classify_validation_names_the_request(out: object, match: str) -> None:
    model = PythonBackend(lambda t: out if t == "bad" else [0.5, 0.5], task="classify", labels=LABELS)
    with pytest.raises(BackendError, match=match) as err:
        model.classify([ClassifyRequest("ok"), ClassifyRequest("bad")])
    assert "request 1" in str(err.value)


def test_user_exceptions_become_backend_errors() -> None:
    def flaky(prompt: str) -> str:
        if prompt == "boom":
            raise ValueError("kaboom")
        return prompt

    with pytest.raises(BackendError, match=r"failed on request 2: ValueError: kaboom"):
        PythonBackend(flaky).generate([gen("a"), gen("b"), gen("boom")])
    with pytest.raises(BackendError, match="returned int for request 0"):
        PythonBackend(lambda p: 3).generate([gen("a")])
    with pytest.raises(InputError, match="request 0 text is empty"):
        PythonBackend(sentiment, task="classify").classify([ClassifyRequest("")])


def test_batched_groups_by_params_and_matches_unbatched() -> None:
    calls = []

    def batch(prompts: list[str], params: GenParams) -> list[str]:
        calls.append((list(prompts), params.max_new_tokens))
        return [p[::-1] for p in prompts]

    reqs = [gen("abc", max_new_tokens=3), gen("de", max_new_tokens=4), gen("fgh", max_new_tokens=3)]
    out = PythonBackend(batch, batched=True).generate(reqs)
    assert [r.text for r in out] == [r.text for r in PythonBackend(reverse).generate(reqs)] == ["cba", "ed", "hgf"]
    assert calls == [(["abc", "fgh"], 3), (["de"], 4)]
    probs = PythonBackend(lambda texts: [[0.5, 0.5]] * len(texts), task="classify", labels=LABELS, batched=True)
    assert len(probs.classify([ClassifyRequest("a"), ClassifyRequest("b")])) == 2
    with pytest.raises(BackendError, match=r"returned 1 outputs for the batch of requests 0\.\.2"):
        PythonBackend(lambda ps: ["x"], batched=True).generate([gen("a"), gen("b"), gen("c")])


def test_config_errors_and_registry() -> None:
    with pytest.raises(ConfigError, match="task must be one of"):
        PythonBackend(reverse, task="embed")
    with pytest.raises(ConfigError, match="cannot import"):
        PythonBackend("no_such_module_xyz:fn")
    with pytest.raises(ConfigError, match="callable"):
        PythonBackend("math:pi")
    assert BACKENDS.get("python") is PythonBackend
    model = load_model(ModelSpec(name="upper", backend="python", options={"fn": "builtins:str.upper"}))
    assert model.generate([gen("abc")])[0].text == "ABC"
    assert model.describe()["fn"] == "builtins.str.upper" and model.describe()["name"] == "upper"
    by_path = load_model(ModelSpec(name="builtins:str.lower", backend="python"))  # --model pkg.mod:fn
    assert by_path.generate([gen("ABC")])[0].text == "abc"
    with pytest.raises(ConfigError, match="needs fn"):
        PythonBackend()


def test_fingerprint_follows_the_function(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fp_model_mod.py").write_text("def model(prompt):\n    return prompt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("fp_model_mod")
    first = PythonBackend("fp_model_mod:model").fingerprint()
    assert PythonBackend("fp_model_mod:model", name="other label").fingerprint() == first
    assert PythonBackend("fp_model_mod:model", batched=True).fingerprint() != first
    (tmp_path / "fp_model_mod.py").write_text("def model(prompt):\n    return prompt + '!'\n")
    importlib.reload(mod)
    assert PythonBackend("fp_model_mod:model").fingerprint() != first
    assert PythonBackend(reverse).fingerprint() != PythonBackend(with_params).fingerprint()
    sys.modules.pop("fp_model_mod", None)


def pair_sentiment(text: str | list[str], pair: str | list | None = None) -> Any:
    """Works per text or on a batch (lists), with or without a second text."""
    if isinstance(text, list):
        return [sentiment(t + (p or "")) for t, p in zip(text, pair or [None] * len(text))]
    return sentiment(text + (pair or ""))


def test_backend_contract() -> None:
    contract.assert_declares_honestly(PythonBackend(pair_sentiment, task="classify", labels=LABELS))
    contract.assert_declares_honestly(PythonBackend(reverse))
    contract.assert_declares_honestly(PythonBackend(lambda msgs: msgs[-1]["content"], chat=True))
    reqs = [ClassifyRequest(t) for t in ("good", "bad", "good bad", "x" * 50)] + [ClassifyRequest("a", "good")]
    for batched in (False, True):
        contract.assert_batch_invariant(
            lambda b=batched: PythonBackend(pair_sentiment, task="classify", labels=LABELS, batched=b), reqs,
            "classify")
