"""The stdout table and the markdown summary (results/lmeval_latest.md) of one bench_lmeval.py run."""
from __future__ import annotations

from pathlib import Path

TASKS = (("mc", "loglikelihood", "mc_ratio", "MC loglikelihood"),
         ("ppl", "loglikelihood_rolling", "ppl_ratio", "rolling perplexity"))
FLOP_ROWS = (("rolling", "lmcritic rolling_logprobs"), ("loglikelihood", "lmcritic loglikelihood (MC)"),
             ("lmeval_rolling", "lm-eval loglikelihood_rolling (reference)"))


def _ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


def _share(c: dict, who: str, meth: str) -> str:
    v = c.get("cpu_share", {}).get(who, {}).get(meth)
    return "?" if v is None else f"{v:.2f}"


def print_table(res: dict) -> None:
    c, m, tol, tg = res["compare"], res["compare"]["metrics"], res["tol"], res["targets"]
    print("\n== parity (same model, same requests) ==")
    print(f"{'metric':<18}{'lmcritic':>16}{'lm-eval':>16}{'abs diff':>11}{'rel diff':>11}")
    for k, v in m["lmcritic"].items():
        print(f"{k:<18}{v:>16.8f}{m['lmeval'].get(k, float('nan')):>16.8f}"
              f"{m['abs_diff'].get(k, float('nan')):>11.2e}{m['rel_diff'].get(k, float('nan')):>11.2e}")
    for meth, p in c["requests"].items():
        print(f"{meth}: same request set={p['same_requests']} n={p['n_ours']} "
              f"max |Δ logprob per request|={p['max_abs_logprob_diff']}")
    print(f"parity |diff| <= {tol}: {m['parity_ok']}; relative <= {tol}: {m['parity_rel_ok']}")
    sp = c["softmax_precision"]
    print(f"fp32 log-prob error vs float64 over {sp['tokens']} tokens (sum): lm-eval log_softmax "
          f"{sp['log_softmax']['sum_err']:+.2e}, logits-logsumexp {sp['gather_minus_logsumexp']['sum_err']:+.2e}")
    print("\n== throughput on identical work (scoring calls only, model load excluded) ==")
    print(f"{'work':<20}{'lm-eval s':>11}{'lmcritic s':>12}{'ratio':>8}{'target':>8}{'cpu share le/lc':>17}")
    for key, meth, tgt, label in TASKS:
        s = c["seconds"]
        print(f"{label:<20}{s['lmeval'][meth]:>11.2f}{s['lmcritic'][meth]:>12.2f}{c[key]['ratio']:>7.2f}x"
              f"{'>=' + str(tg[tgt]) + 'x':>8}{_share(c, 'lmeval', meth) + '/' + _share(c, 'lmcritic', meth):>17}")
    if "flops" in res:
        f = res["flops"]
        print(f"\n== fp32 FLOP ceiling (GPT-2 124M shape, {f['shape']['params'] / 1e6:.1f}M params) ==")
        print(f"matmul ceiling: {f['peak']['ceiling_gflops']:.1f} GFLOP/s (best of before/after; "
              + ", ".join(f"{k}: {v:.1f}" for k, v in f["peak"]["gflops_by_size"].items()) + ")")
        b = f["bare_hf_forward"]
        print(f"bare HF forward B={b['batch']} L={b['length']}: {b['gflops']:.1f} GFLOP/s")
        for k, label in FLOP_ROWS:
            if k in f:
                print(f"{label:<44}{f[k]['gflops']:>7.1f} GFLOP/s = {100 * f[k]['fraction_of_ceiling']:5.1f}% "
                      f"of ceiling (target >= {100 * tg['flop_fraction']:.0f}% for lmcritic)")


def _header(res: dict, json_name: str) -> list[str]:
    c, mach, a = res["compare"], res["machine"], res["args"]
    load = lambda key: tuple(round(x, 2) for x in mach.get(key, ()))  # noqa: E731
    return [
        f"# lmcritic vs lm-evaluation-harness — {res['stamp']}",
        "",
        f"Raw numbers: `{json_name}`. Command: "
        f"`{' '.join(['.venv-bench/bin/python benchmarks/bench_lmeval.py', *res['argv']])}`",
        "",
        f"Machine: {mach['cpu']}, nproc={mach['nproc']}, torch threads={mach['torch_threads']}, "
        f"torch {mach['torch']}, transformers {mach['transformers']}, lm-eval {mach['lm_eval']}, "
        f"Python {mach['python']}. Load average at start {load('loadavg_start')}, at end {load('loadavg_end')}. "
        "The machine is shared: 'cpu share' is process CPU time / (wall × threads) during each timed call; "
        "well under 1 means other processes took the cores and that timing is noisy.",
        "",
        f"Model: SmolLM2-135M-Instruct dequantized to fp32 (`{c['model_dir']}`); batch size {a['batch_size']} on "
        f"both sides; window = stride = lm-eval max_length = {a['window']}; run order {' then '.join(c['order'])}. "
        f"glibc block reuse (`LMCRITIC_MALLOC_REUSE`): {'on' if mach.get('malloc_reuse') else 'off'} for the whole "
        "process, i.e. for both tools; lmcritic's hf backend runs GPT-2's tanh-GELU as one fused kernel, lm-eval "
        "the model as transformers builds it.",
    ]


def _parity(res: dict) -> list[str]:
    c, m, tol = res["compare"], res["compare"]["metrics"], res["tol"]
    lines = ["", f"## Parity (target: equal to {tol})", "",
             "| metric | lmcritic | lm-eval | abs diff | rel diff |", "|---|---:|---:|---:|---:|"]
    for k, v in m["lmcritic"].items():
        lines.append(f"| {k} | {v:.8f} | {m['lmeval'].get(k, float('nan')):.8f} | "
                     f"{m['abs_diff'].get(k, float('nan')):.2e} | {m['rel_diff'].get(k, float('nan')):.2e} |")
    lines.append("")
    for meth, p in c["requests"].items():
        lines.append(f"- {meth}: same request set as lm-eval: {p['same_requests']} ({p['n_ours']} requests); "
                     f"max per-request |Δ log-likelihood| = {p['max_abs_logprob_diff']:.3g}")
    sp = c["softmax_precision"]
    lines += [f"- fp32 log-prob error against float64 on {sp['tokens']} tokens of the first document "
              "(sum over tokens): "
              f"lm-eval's `log_softmax` {sp['log_softmax']['sum_err']:+.2e} (mean {sp['log_softmax']['mean_err']:+.1e}"
              f"/token), `logit − logsumexp` {sp['gather_minus_logsumexp']['sum_err']:+.2e} "
              f"(mean {sp['gather_minus_logsumexp']['mean_err']:+.1e}/token).",
              "", f"Absolute {tol}: {_ok(m['parity_ok'])}; relative {tol}: {_ok(m['parity_rel_ok'])}."]
    return lines


def _throughput(res: dict) -> list[str]:
    c, tg = res["compare"], res["targets"]
    lines = ["", "## Throughput on identical work (scoring calls only; model load, task building, metrics excluded)",
             "", "| work | lm-eval s | lmcritic s | lm-eval rate | lmcritic rate | ratio | target "
             "| cpu share (lm-eval / lmcritic) |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    for key, meth, tgt, label in TASKS:
        s = c["seconds"]
        if key == "mc":
            what = f"{label}: {c['mc']['docs']} docs × 4 multi-token choices"
            rates = f"{c['mc']['lmeval_req_per_s']:.2f} req/s | {c['mc']['lmcritic_req_per_s']:.2f} req/s"
        else:
            what = f"{label}: {c['ppl']['docs']} docs, {c['ppl']['tokens']} tokens"
            rates = f"{c['ppl']['lmeval_tok_per_s']:.0f} tok/s | {c['ppl']['lmcritic_tok_per_s']:.0f} tok/s"
        lines.append(f"| {what} | {s['lmeval'][meth]:.2f} | {s['lmcritic'][meth]:.2f} | {rates} | "
                     f"{c[key]['ratio']:.2f}× | ≥{tg[tgt]}×: {_ok(c[key]['ratio'] >= tg[tgt])} | "
                     f"{_share(c, 'lmeval', meth)} / {_share(c, 'lmcritic', meth)} |")
    return lines


def _flops(res: dict) -> list[str]:
    f, tg = res["flops"], res["targets"]
    b = f["bare_hf_forward"]
    lines = [
        "",
        f"## fp32 FLOP ceiling (GPT-2 124M shape, random init seed 0, {f['shape']['params'] / 1e6:.1f}M params)", "",
        "Ceiling = best fp32 `torch.matmul` (best rep, measured before and after the lmcritic calls) of square sizes "
        + ", ".join(f"{k}: {v:.1f}" for k, v in f["peak"]["gflops_by_size"].items())
        + f" GFLOP/s → **{f['peak']['ceiling_gflops']:.1f} GFLOP/s**. Useful FLOPs = 2·P_lin per input token "
        f"(P_lin = {f['shape']['p_lin'] / 1e6:.1f}M Linear/Conv1D weights incl. the tied LM head) + causal attention "
        "4·n_layer·d·p for a token at position p; MC counts the shared context once and the LM head only where a "
        "token is scored (benchmarks/_bench_flops.py).",
        "", "| what | GFLOP/s | % of ceiling | target |", "|---|---:|---:|---|",
        f"| bare HF forward, B={b['batch']}, L={b['length']} (reference: no scoring code) | {b['gflops']:.1f} | "
        f"{100 * b['gflops'] / f['peak']['ceiling_gflops']:.1f}% | |",
    ]
    for k, label in FLOP_ROWS:
        if k in f:
            pct = 100 * f[k]["fraction_of_ceiling"]
            tgt = (f"≥{100 * tg['flop_fraction']:.0f}%: {_ok(pct >= 100 * tg['flop_fraction'])}"
                   if k != "lmeval_rolling" else "")
            lines.append(f"| {label} | {f[k]['gflops']:.1f} | {pct:.1f}% | {tgt} |")
    return lines


def write_markdown(res: dict, path: Path, json_name: str) -> Path:
    lines = _header(res, json_name) + _parity(res) + _throughput(res) + (_flops(res) if "flops" in res else [])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
