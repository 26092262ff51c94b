"""Parity between lmcritic and lm-eval: metrics computed exactly as lm-eval's ConfigurableTask.process_results
and aggregations do, the per-request comparison, and the fp32 log-prob precision diagnostic."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

TOL = 1e-4


def mc_metrics(docs: list[dict], lls: list[float]) -> dict[str, float]:
    import numpy as np

    acc, acc_norm, i = [], [], 0
    for d in docs:
        k = len(d["choices"])
        ll = np.array(lls[i : i + k])
        i += k
        acc.append(float(np.argmax(ll) == d["gold"]))
        acc_norm.append(float(np.argmax(ll / np.array([float(len(c)) for c in d["choices"]])) == d["gold"]))
    return {"acc": sum(acc) / len(acc), "acc_norm": sum(acc_norm) / len(acc_norm)}


def ppl_metrics(docs: list[dict], totals: list[float]) -> dict[str, float]:
    ll = sum(totals)
    words = sum(len(re.split(r"\s+", d["text"])) for d in docs)
    nbytes = sum(len(d["text"].encode("utf-8")) for d in docs)
    return {"word_perplexity": math.exp(-ll / words), "byte_perplexity": math.exp(-ll / nbytes),
            "bits_per_byte": -ll / nbytes / math.log(2)}


def request_parity(ours: Any, theirs: Any) -> dict:
    """Same request set on both sides, and the largest per-request log-likelihood difference."""
    out = {}
    for method, pairs in ours.captured.items():
        ref = {}
        for a, r in theirs.captured.get(method, []):
            ref[tuple(a)] = r[0] if isinstance(r, tuple) else r
        diffs = [abs(v - ref[a]) for a, v in pairs if a in ref]
        out[method] = {"n_ours": len(pairs), "n_lmeval": len(theirs.captured.get(method, [])),
                       "same_requests": {a for a, _ in pairs} == set(ref),
                       "max_abs_logprob_diff": max(diffs) if diffs else None}
    return out


def softmax_precision(model_dir: Path, text: str, window: int) -> dict:
    """Per-token error of the two fp32 log-prob formulas against float64, on one window of real text:
    lm-eval's ``log_softmax(logits)[target]`` and ``logits[target] - logsumexp(logits)``. Explains parity
    gaps that are the reference's own rounding rather than a scoring difference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    ids = [prefix] + tok(text, add_special_tokens=False)["input_ids"][:window]
    tgt = torch.tensor(ids[1:])[:, None]
    with torch.inference_mode():
        logits = model(torch.tensor([ids[:-1]])).logits[0]
    exact = torch.log_softmax(logits.double(), -1).gather(1, tgt)[:, 0]
    forms = {"log_softmax": torch.log_softmax(logits, -1).gather(1, tgt)[:, 0],
             "gather_minus_logsumexp": logits.gather(1, tgt)[:, 0] - torch.logsumexp(logits, -1)}
    out = {"tokens": len(tgt)}
    for name, v in forms.items():
        err = v.double() - exact
        out[name] = {"sum_err": float(err.sum()), "mean_err": float(err.mean()), "max_abs_err": float(err.abs().max())}
    return out
