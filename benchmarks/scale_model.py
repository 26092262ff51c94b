"""Scan time of the default suite on a 7B model, worked out from the measured calls (issue 18, docs/scale.md).

Input: benchmarks/results/suite_tokens.json (``suite_tokens.py``: every backend call of the default suite with its
request count, input tokens and max_new_tokens). Every assumption is a named constant below; docs/scale.md
explains them. The runner makes its calls one after another, so the scan time is the sum over calls of:

  prefill: input tokens / prefill throughput of the replicas the call's chunks reach, plus a fixed overhead
  decode:  max_new_tokens steps x one decode step (memory-bandwidth bound at these batch sizes), per wave of
           at most MAX_SEQS sequences a replica decodes at once

Writes benchmarks/results/scale_estimate.json. Usage: python benchmarks/scale_model.py
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PARAMS = 7e9                 # a dense 7B decoder (Llama-2-7B / Mistral-7B class)
BYTES_PER_PARAM = 2          # bf16 weights
PEAK_FLOPS = 312e12          # one A100-80GB, dense bf16
PREFILL_MFU = 0.5            # fraction of peak a long prefill reaches in vLLM
HBM_BYTES_S = 2.0e12         # A100-80GB memory bandwidth
DECODE_BW_EFF = 0.7          # fraction of it one decode step reaches
MAX_SEQS = 256               # vLLM's default max_num_seqs: sequences decoded together per engine
TP_PREFILL_EFF = 0.6         # tensor parallel 8: prefill speed-up 8 x this (all-reduces, smaller GEMMs)
TP_DECODE_SPEEDUP = 3.0      # tensor parallel 8: a decode step is this much faster (launch/all-reduce bound)
RAY_BATCH = 16               # requests per chunk the ray backend sends a replica
ENGINE_START_S = 60.0        # loading 14 GB of weights and vLLM's start-up (CUDA graphs), per engine, in parallel
CALL_OVERHEAD_S = 0.02       # per call: the driver's cache lookups, vLLM's scheduling and (de)tokenization


@dataclass(frozen=True)
class Setup:
    name: str
    engines: int             # independent engines a call's chunks can spread over
    prefill_tok_s: float     # per engine
    decode_step_s: float     # per engine


def setups() -> list[Setup]:
    prefill = PEAK_FLOPS * PREFILL_MFU / (2 * PARAMS)
    step = PARAMS * BYTES_PER_PARAM / (HBM_BYTES_S * DECODE_BW_EFF)
    return [Setup("1 GPU (vLLM)", 1, prefill, step),
            Setup("8 GPUs, vLLM tensor parallel 8", 1, prefill * 8 * TP_PREFILL_EFF, step / TP_DECODE_SPEEDUP),
            Setup("8 GPUs, 8 ray replicas of vLLM", 8, prefill, step)]


def call_time(s: Setup, method: str, n: int, tokens: int, new: int) -> tuple[float, float]:
    """(prefill seconds, decode seconds) of one call."""
    used = min(s.engines, max(1, math.ceil(n / RAY_BATCH))) if s.engines > 1 else 1
    prefill = tokens / (s.prefill_tok_s * used) + CALL_OVERHEAD_S
    if method != "generate" or new == 0:
        return prefill, 0.0
    waves = math.ceil(math.ceil(n / used) / MAX_SEQS)
    return prefill, waves * new * s.decode_step_s


def main() -> None:
    data = json.loads((ROOT / "benchmarks" / "results" / "suite_tokens.json").read_text())
    calls = data["calls"]
    rows = []
    for s in setups():
        parts = [call_time(s, *c) for c in calls]
        prefill, decode = sum(p for p, _ in parts), sum(d for _, d in parts)
        cpu = data["wall_s"]
        rows.append({**asdict(s), "prefill_and_overhead_s": round(prefill, 1), "decode_s": round(decode, 1),
                     "engine_start_s": ENGINE_START_S, "cpu_side_s": cpu,
                     "scan_s": round(prefill + decode + ENGINE_START_S + cpu, 1)})
    out = {"assumptions": {k: v for k, v in globals().items() if k.isupper() and k != "ROOT"},
           "measured": {"calls": len(calls), "by_method": {m: {k: v for k, v in d.items() if k != "call_size_histogram"}
                                                           for m, d in data["by_method"].items()},
                        "cpu_side_wall_s_on_this_machine": data["wall_s"]},
           "setups": rows}
    (ROOT / "benchmarks" / "results" / "scale_estimate.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
