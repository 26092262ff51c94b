"""The machine's fp32 matmul ceiling and the useful FLOPs of scoring work, for bench_lmeval.py.

Useful forward FLOPs (multiply-add = 2 FLOPs), counting only work the answer needs:
  * every weight matmul: 2 * P_lin per input token, where P_lin is the weights of all Linear/Conv1D layers
    (the tied LM head included once; embedding look-ups and norms are free);
  * causal attention: a token at position p (1-based) attends to p keys, costing 2*d*p for QK^T and 2*d*p for
    AV in each of n_layer layers, i.e. 4*n_layer*d*p; over a fresh window of L tokens: 2*n_layer*d*L*(L+1);
  * multiple choice with a shared context: the context's C tokens once, then K_j - 1 input tokens per choice
    at positions C+1 .. C+K_j-1, and the LM head only at the sum(K_j) scored positions.
Padding, recomputed prefixes and logits nobody reads are not counted, so FLOP/s here is a lower bound on the
arithmetic the hardware did and an honest measure of useful speed.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Shape:
    n_layer: int
    d_model: int  # query width n_heads * head_dim (== hidden size for GPT-2 and SmolLM2)
    p_lin: int  # weights in all Linear/Conv1D layers, LM head included
    p_head: int  # LM head weights (d * vocab)
    params: int  # all parameters (embeddings counted once)

    def as_dict(self) -> dict:
        return asdict(self)


def model_shape(model) -> Shape:
    import torch
    from transformers.pytorch_utils import Conv1D

    lin = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, Conv1D))]
    head = model.get_output_embeddings()
    cfg = model.config
    n_heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    return Shape(
        n_layer=cfg.num_hidden_layers,
        d_model=n_heads * head_dim,
        p_lin=sum(m.weight.numel() for m in lin),
        p_head=head.weight.numel(),
        params=sum(p.numel() for p in model.parameters()),
    )


def _attn(s: Shape, start: int, n: int) -> int:
    """Causal attention FLOPs for n new tokens at positions start+1 .. start+n."""
    return 4 * s.n_layer * s.d_model * (n * start + n * (n + 1) // 2)


def rolling_flops(s: Shape, n_tokens: int, window: int) -> int:
    """lm-eval's disjoint windows (stride == window): the first window holds the prefix token plus up to
    window-1 tokens; each later window is a full ``window`` tokens of input."""
    first = min(window, n_tokens)
    later = math.ceil(max(n_tokens - window, 0) / window)
    per = lambda L: 2 * s.p_lin * L + _attn(s, 0, L)  # noqa: E731
    return per(first) + later * per(window)


def mc_flops(s: Shape, ctx_len: int, cont_lens: list[int]) -> int:
    body = s.p_lin - s.p_head
    flops = 2 * body * ctx_len + _attn(s, 0, ctx_len)
    for k in cont_lens:
        flops += 2 * body * (k - 1) + _attn(s, ctx_len, k - 1) + 2 * s.p_head * k
    return flops


def matmul_peak(sizes: tuple[int, ...] = (2048, 4096), reps: int = 8) -> dict:
    """Best-of-reps fp32 torch.matmul GFLOP/s per square size; the ceiling is the best of them."""
    import torch

    out = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)
        best = math.inf
        for _ in range(reps):
            t = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - t)
        out[str(n)] = 2 * n**3 / best / 1e9
    return {"gflops_by_size": out, "ceiling_gflops": max(out.values()), "reps": reps}


def bare_forward(model, batch: int, length: int, reps: int = 2) -> dict:
    """GFLOP/s of the HF model's own forward on a full batch of random ids (no scoring code around it):
    the most any backend built on this model object can reach on these shapes."""
    import torch

    s = model_shape(model)
    ids = torch.randint(0, min(model.config.vocab_size, 40000), (batch, length))
    with torch.inference_mode():
        model(ids[:1, :16])
        best = math.inf
        for _ in range(reps):
            t = time.perf_counter()
            model(ids)
            best = min(best, time.perf_counter() - t)
    flops = batch * (2 * s.p_lin * length + _attn(s, 0, length))
    return {"batch": batch, "length": length, "seconds": best, "gflops": flops / best / 1e9,
            "tokens_per_s": batch * length / best}
