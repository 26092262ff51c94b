"""The hf backend's fast paths give what the reference paths give, on the tiny GPT-2 of conftest.

* sampled generation in batches with a generator per row == ``generate`` on each request alone after
  ``torch.manual_seed(seed)`` (the former path), whatever the batch size and order;
* greedy generation in lmcritic's own loop == ``generate`` batched;
* multiple choice packed in one row (tree attention) == KV reuse == one plain sequence per request;
* a probe run with ``fast_paths=False`` (the reference paths) stores the same records as the default.
"""
from __future__ import annotations

import math
import random

import pytest
import torch

from lmcritic.backends import _hf_generate as G
from lmcritic.backends import _hf_loglik as L
from lmcritic.backends import _hf_packed as P
from lmcritic.backends.hf import HFBackend
from lmcritic.requests import GenerateRequest, GenParams, LoglikelihoodRequest

PROMPTS = ["the movie", "a film that is", "it", "one of the best films of the year , and", "x", "the"]
SETTINGS = [  # temperature, top_p, top_k, seed, stop
    (1.0, 1.0, 0, 3, ()), (0.8, 0.9, 0, 7, ()), (1.3, 1.0, 20, 11, ()), (1.0, 0.95, 0, 5, (" the", " a")),
]


def variant(be: HFBackend, batch_size: int = 16, fast: bool = True) -> HFBackend:
    return HFBackend.from_objects(be.model, be.tokenizer, batch_size=batch_size, fast_paths=fast)


def sampled(n_tokens: int = 14) -> list[GenerateRequest]:
    return [GenerateRequest(prompt=p, params=GenParams(max_new_tokens=n_tokens, temperature=t, top_p=tp, top_k=tk,
                                                       seed=s, stop=st))
            for p in PROMPTS for (t, tp, tk, s, st) in SETTINGS]


def test_sampled_batches_equal_each_request_alone(tiny_causal) -> None:
    reqs = sampled()
    got = tiny_causal.generate(reqs)
    alone = [G.generate_alone(tiny_causal, G._prompt_ids(tiny_causal, i, r), r.params) for i, r in enumerate(reqs)]
    assert got == alone
    assert len({r.text for r in got}) > len(reqs) // 2  # really sampled: seeds and settings give varied text
    assert any(r.finish_reason == "stop" for r in got)  # rows left the batch early


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_sampling_independent_of_batch_size_and_order(tiny_causal, batch_size) -> None:
    reqs = sampled(10)
    want = tiny_causal.generate(reqs)
    order = list(range(len(reqs)))
    random.Random(batch_size).shuffle(order)
    got = variant(tiny_causal, batch_size).generate([reqs[i] for i in order])
    assert [got[order.index(i)] for i in range(len(reqs))] == want


def test_reference_path_is_generate_one_at_a_time(tiny_causal) -> None:
    reqs = sampled(8)
    assert variant(tiny_causal, fast=False).generate(reqs) == tiny_causal.generate(reqs)


def test_greedy_own_loop_equals_generate(tiny_causal) -> None:
    for params in (GenParams(max_new_tokens=12), GenParams(max_new_tokens=20, stop=(" the",))):
        reqs = [GenerateRequest(prompt=p, params=params) for p in PROMPTS]
        ids = [G._prompt_ids(tiny_causal, i, r) for i, r in enumerate(reqs)]
        assert tiny_causal.generate(reqs) == G._generate_batch(tiny_causal, ids, params)


CONTEXTS = ["the movie is", "a dull , lifeless film that", "it 's a charming and often affecting journey . ", "",
            "one of the best films of the year and"]
CHOICES = [" great", " bad", " a total mess of a movie", "ok", " not at all what i expected"]
MC = [LoglikelihoodRequest(c, x) for c in CONTEXTS for x in CHOICES]


def test_packed_equals_kv_reuse_and_plain(tiny_causal) -> None:
    reqs = MC + [LoglikelihoodRequest(c + " and yet", x) for c in CONTEXTS[1:3] for x in CHOICES[:2]]  # shared prefixes
    pairs = L.encode_pairs(tiny_causal, reqs)
    groups = [g for g in L.group_by(pairs, lambda p: p.ctx).values() if len(g) > 1]
    assert P.packed_ok(tiny_causal.model)
    with torch.inference_mode():
        rows = L._plan(pairs, tiny_causal.max_length)
        assert any(len({p.ctx for p in row}) > 1 for row in rows)  # contexts sharing a prefix share a row
        packed = dict(L.score_packed(tiny_causal, rows))
        shared = dict(L.score_shared(tiny_causal, groups))
        plain = dict(L.score_plain(tiny_causal, pairs))
    for i in range(len(reqs)):
        assert math.isclose(packed[i].logprob, plain[i].logprob, abs_tol=1e-5), reqs[i]
        assert i not in shared or math.isclose(packed[i].logprob, shared[i].logprob, abs_tol=1e-5), reqs[i]
        assert (packed[i].is_greedy, packed[i].n_tokens) == (plain[i].is_greedy, plain[i].n_tokens)


def test_trie_rows_share_prefixes_and_keep_strangers_apart() -> None:
    prompt = tuple(range(100, 120))
    seqs = [prompt + (1, 2), prompt + (3,), prompt, (7, 8, 9), prompt[:10] + (5,) * 10, (7, 8, 9, 4), (1, 2, 3)]
    contexts = [20, 20, 19, 1, 12, 3, 1]
    rows = P.plan_rows(seqs, contexts, max_length=64)
    # (7, 8, 9, 4) shares its whole 3-token context with (7, 8, 9); (1, 2, 3) shares nothing
    assert sorted(map(sorted, rows)) == [[0, 1, 2, 4], [3, 5], [6]]
    row = P.pack([(prompt, (1, 2, 4)), (prompt, (3, 5)), (prompt[:10] + (5,) * 10, (6,))])
    assert len(row.tokens) == 20 + 2 + 1 + 10  # the prompt once, then each request's own tokens
    assert row.predict_at[0] == (19, 20, 21) and row.predict_at[1] == (19, 22)
    assert all(row.positions[i] == row.positions[p] + 1 for i, p in enumerate(row.parents) if p >= 0)
    big = P.plan_rows([prompt + (i,) * 30 for i in range(10)], [20] * 10, max_length=64)
    assert len(big) > 1 and all(20 + 30 * len(r) <= 64 or len(r) == 1 for r in big)  # rows stay within the cap
    # two 390-token few-shot prompts sharing only a 20-token instruction: one 760-node row would attend over twice
    # the width to save 20 tokens; their own choices (the whole context shared) still share each one's row
    shots = [prompt + tuple(range(1000 * k, 1000 * k + 370)) for k in (1, 2)]
    seqs = [s + (c,) for s in shots for c in (1, 2, 3)]
    assert sorted(map(sorted, P.plan_rows(seqs, [390] * 6, max_length=2048))) == [[0, 1, 2], [3, 4, 5]]
    # edited copies of a sentence sharing most of it (leave-one-out) do share a row
    sentence = tuple(range(500, 530))
    edits = [sentence[:k] + sentence[k + 1 :] for k in range(10, 30)]
    assert len(P.plan_rows(edits, [29] * 20, max_length=2048)) == 1


def test_packed_backend_equals_reference_paths_whatever_the_batch(tiny_causal) -> None:
    reqs = MC + [LoglikelihoodRequest(c + " and yet", x) for c in CONTEXTS[1:3] for x in CHOICES]
    want = variant(tiny_causal, fast=False).loglikelihood(reqs)
    for size in (1, 3, 64):
        got = variant(tiny_causal, batch_size=size).loglikelihood(reqs[::-1])[::-1]
        assert all(math.isclose(a.logprob, b.logprob, abs_tol=1e-5) for a, b in zip(got, want))
        assert [(a.is_greedy, a.n_tokens) for a in got] == [(b.is_greedy, b.n_tokens) for b in want]


def test_tree_mask_sees_ancestors_only() -> None:
    row = P.pack([((5, 6), (7, 8)), ((5, 6), (9, 1)), ((5, 4), (2,))])  # nodes: 5 6 7 9 4
    allowed = (P.tree_mask([row], 6, torch.float32, "cpu")[0, 0] == 0).int().tolist()
    assert allowed == [[0, 0, 0, 0, 0, 0],  # left padding sees nothing and is seen by no one
                       [0, 1, 0, 0, 0, 0],  # 5
                       [0, 1, 1, 0, 0, 0],  # 5 6
                       [0, 1, 1, 1, 0, 0],  # 5 6 7
                       [0, 1, 1, 0, 1, 0],  # 5 6 9: not its sibling 7
                       [0, 1, 0, 0, 0, 1]]  # 5 4


def test_a_model_that_ignores_the_mask_keeps_the_kv_path(tiny_causal_dir) -> None:
    be = HFBackend(model=str(tiny_causal_dir))
    forward = be.model.transformer.forward

    def no_custom_masks(*args, **kwargs):  # a model that rebuilds its own causal mask
        mask = kwargs.get("attention_mask")
        if mask is not None and mask.dim() == 4:
            kwargs["attention_mask"] = None
        return forward(*args, **kwargs)

    be.model.transformer.forward = no_custom_masks
    assert not P.packed_ok(be.model)
    with torch.inference_mode():
        want = dict(L.score_plain(be, L.encode_pairs(be, MC)))
    for i, res in enumerate(be.loglikelihood(MC)):
        assert math.isclose(res.logprob, want[i].logprob, abs_tol=1e-5)


def test_probe_records_equal_with_reference_paths(tmp_path, tiny_causal_dir) -> None:
    """A run on the fast paths stores the same cases, outputs and findings as one on the reference paths."""
    from lmcritic.backends import ModelSpec
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    probes = (ProbeSpec("performance.task", {"task": "mc_knowledge", "n": 10}, key="mc"),
              ProbeSpec("bias.generation", {"n_per_group": 1, "temperature": 0.9, "max_new_tokens": 8}),
              ProbeSpec("robustness.injection", {"n": 4, "max_new_tokens": 8}))
    runs = {}
    for fast in (True, False):
        runner = Runner(tmp_path / f"runs-{fast}.sqlite", tmp_path / f"cache-{fast}.sqlite", progress=False)
        model = HFBackend(model=str(tiny_causal_dir), fast_paths=fast)
        out = runner.run(RunSpec(model=ModelSpec(name=str(tiny_causal_dir)), probes=probes), model=model)
        runs[fast] = (runner.store, out.run_id)
    (fs, fid), (rs, rid) = runs[True], runs[False]
    for key in ("mc", "bias.generation", "robustness.injection"):
        fast, ref = fs.records(fid, key), rs.records(rid, key)
        assert [r.case_id for r in fast] == [r.case_id for r in ref] and fast
        for a, b in zip(fast, ref):
            assert close(a.output, b.output) and close(a.scores, b.scores) and a.passed == b.passed, a.case_id
    assert [(f.name, f.verdict) for f in fs.findings(fid)] == [(f.name, f.verdict) for f in rs.findings(rid)]


def close(a, b, tol: float = 1e-4) -> bool:
    """Equal JSON-like values, floats to ``tol``."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, abs_tol=tol) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    return a == b


def _brute_least_padding(lengths: list[int], size: int, overhead: int) -> int:
    """The least cost over every way of cutting ``lengths`` into consecutive chunks of at most ``size``."""
    best = [0] + [10**9] * len(lengths)
    for j in range(1, len(lengths) + 1):
        for i in range(max(0, j - size), j):
            best[j] = min(best[j], best[i] + (j - i) * lengths[i] + overhead)
    return best[-1]


def test_least_padding_chunks_pad_least_within_size_and_budget() -> None:
    from lmcritic.backends._batching import least_padding_chunks

    # the leave-one-out rows of one SST-2 case on SmolLM2: 6 greedy rows padded 1368 nodes for 377 real ones
    widths = [228, 30, 30, 30, 30, 29]
    assert least_padding_chunks(widths, 16, overhead=32) == [[0], [1, 2, 3, 4, 5]]
    assert least_padding_chunks(widths, 16, overhead=10**6) == [[0, 1, 2, 3, 4, 5]]  # forwards dearer than padding
    rng = random.Random(0)
    for _ in range(200):
        lengths = sorted((rng.randint(1, 60) for _ in range(rng.randint(0, 12))), reverse=True)
        size, overhead = rng.randint(1, 5), rng.randint(0, 40)
        chunks = least_padding_chunks(lengths, size, overhead=overhead)
        assert [i for c in chunks for i in c] == list(range(len(lengths)))  # consecutive, every item once
        assert all(1 <= len(c) <= size for c in chunks)
        assert sum(len(c) * lengths[c[0]] + overhead for c in chunks) == _brute_least_padding(lengths, size, overhead)
    # budget 170 on count x largest cost: two items a chunk at most (2 x 81, 2 x 64; three would be 192 and over)
    squares = [81, 64, 64, 49]
    assert least_padding_chunks([9, 8, 8, 7], 4, overhead=100, cost=squares.__getitem__, budget=170) == [[0, 1], [2, 3]]
    assert least_padding_chunks([9, 8], 4, cost=squares.__getitem__, budget=10) == [[0], [1]]  # one item always fits


def test_packed_batches_do_not_pad_short_rows_to_a_long_one() -> None:
    long_row = P.pack([(tuple(range(1, 200)), (5,))])
    short = [P.pack([((300 + i, 7, 8) * 9, (5,))]) for i in range(5)]
    got = list(P.batches([short[0], long_row, *short[1:]], 16))
    assert got == [[1], [0, 2, 3, 4, 5]]
