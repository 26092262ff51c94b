"""CUDA: the hf backend's speed options (fused GELU, reused head buffers, one-copy continuation caches) against
the untouched model on a 124M GPT-2, and the same requests' results at two batch sizes. Prints max |Δ|."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    import conftest
    from lmcritic.backends.hf import HFBackend
    from lmcritic.requests import LoglikelihoodRequest, RollingRequest

    tok = conftest._bpe_tokenizer(conftest.sample_lines())
    lines = conftest.sample_lines()
    docs = [" ".join(lines[i : i + 60]) for i in range(0, 240, 60)]
    ctxs = [" ".join(lines[i : i + 12]) + "\nSentiment:" for i in range(0, 96, 12)]
    mc = [LoglikelihoodRequest(c, x) for c in ctxs for x in (" positive, liked it", " negative , disliked it")]
    rolls = [RollingRequest(d, window=256) for d in docs]
    out = {}
    for fused in (False, True):
        for bs in (4, 16):
            torch.manual_seed(0)
            model = GPT2LMHeadModel(GPT2Config()).eval().to("cuda")
            be = HFBackend.from_objects(model, tok, batch_size=bs, fused_kernels=fused)
            t = time.perf_counter()
            ll = [r.logprob for r in be.loglikelihood(mc)]
            ro = [r.total for r in be.rolling_logprobs(rolls)]
            torch.cuda.synchronize()
            out[fused, bs] = (ll, ro, time.perf_counter() - t)
    base = out[False, 16]
    for key, (ll, ro, sec) in out.items():
        d_ll = max(abs(a - b) for a, b in zip(ll, base[0]))
        d_ro = max(abs(a - b) for a, b in zip(ro, base[1]))
        print(f"fused={key[0]} batch={key[1]}: max|Δ loglik| {d_ll:.2e}, max|Δ rolling total| {d_ro:.2e}, {sec:.2f}s")


if __name__ == "__main__":
    main()
