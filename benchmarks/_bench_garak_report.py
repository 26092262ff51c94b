"""Markdown summary of bench_garak.py: per family, attack success from each tool with n and 95% CIs, queries, time."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def _ci(rate: list | None, n: int | None = None) -> str:
    if not rate:
        return "—"
    v, lo, hi = rate[:3]
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" + (f" (n={n})" if n is not None else "")


def lmcritic_rows(result: dict, probe: str, chain: str | None) -> list[dict[str, Any]]:
    run = (result.get("lmcritic") or {}).get(probe)
    if not run:
        return []
    rows = []
    for f in run["findings"]:
        name = f["name"]
        if chain is not None and name != f"attack_success/{chain}":
            continue
        if chain is None and f["verdict"] == "not_applicable":
            continue
        if chain is None and "/" in name and probe == "safety.leakage":
            continue  # the per-chain leak rates repeat the overall one
        e = f.get("estimate") or {}
        if not e or e.get("n") is None:
            continue
        q = (f.get("details") or {}).get("queries") or {}
        hits = round(e["value"] * e["n"]) if e.get("value") is not None else None
        rows.append({"what": f"{probe.split('.')[1]}:{chain or name}", "verdict": f["verdict"], "hits": hits,
                     "n": e["n"], "rate": [e["value"], e["ci_low"], e["ci_high"]],
                     "queries_per_seed": q.get("value"), "skipped": (f.get("details") or {}).get("skipped"),
                     "summary": f["summary"]})
    return rows


def garak_rows(result: dict, probe: str) -> list[dict[str, Any]]:
    g = (result.get("garak") or {}).get(probe)
    if not g:
        return []
    if not g["rates"]:
        return [{"what": probe, "failure": g.get("failure") or f"exit code {g['returncode']}", "queries": g["queries"],
                 "seconds": g["seconds"]}]
    return [{"what": f"{probe} / {r['detector']}", "hits": r["hits"], "n": r["n"], "rate": r["rate"],
             "queries": g["queries"], "seconds": g["seconds"], "cross": g.get("lmcritic_detectors")}
            for r in g["rates"]]


def write_markdown(result: dict, path: Path) -> str:
    lines = [f"# lmcritic vs garak on SmolLM2-135M-Instruct (run {result['stamp']})", "",
             f"Settings: {result['args']}. Both tools call one `lmcritic serve` (greedy, at most "
             f"{result['args']['max_tokens']} new tokens); queries "
             "are HTTP requests counted at the server. Rates are attack success with Wilson 95% CIs (garak's from "
             "its own eval counts). A family is *found* when at least one of its probes/chains has a success.", ""]
    found = {"garak": 0, "lmcritic": 0}
    shared = {"garak_q": 0, "lmc_q": 0, "garak_s": 0.0, "lmc_s": 0.0}
    lines += ["| family | tool | probe / chain (detector) | successes / n | rate [95% CI] | queries | note |",
              "|---|---|---|---|---|---|---|"]
    for fam, spec in result["families"].items():
        g_rows = [r for p in spec["garak"] for r in garak_rows(result, p)]
        l_rows = [r for p, c in spec["lmcritic"] for r in lmcritic_rows(result, p, c)]
        g_found = any((r.get("hits") or 0) > 0 for r in g_rows)
        l_found = any((r.get("hits") or 0) > 0 for r in l_rows)
        found["garak"] += g_found
        found["lmcritic"] += l_found
        for r in g_rows:
            cross = f"lmcritic detectors on garak's answers: {r['cross']}" if r.get("cross") else ""
            note = r.get("failure") or cross
            lines.append(f"| {fam} | garak | {r['what']} | {r.get('hits', '—')} / {r.get('n', '—')} | "
                         f"{_ci(r.get('rate'))} | {r['queries']} ({r['seconds']:.0f} s) | {note[:300]} |")
        for r in l_rows:
            q = f"{r['queries_per_seed']:.3g}/seed" if r.get("queries_per_seed") else ""
            lines.append(f"| {fam} | lmcritic | {r['what']} | {r['hits']} / {r['n']} | {_ci(r['rate'])} | {q} | "
                         f"{r.get('skipped') or ''} |")
        if not g_rows:
            lines.append(f"| {fam} | garak | — | | | | no garak probe for this family in this comparison |")
        if spec["garak"] and l_rows:
            shared["garak_q"] += sum({r['what'].split(' / ')[0]: r["queries"] for r in g_rows}.values())
    lines += ["", f"Families found: garak {found['garak']}, lmcritic {found['lmcritic']} "
              f"(of {len(result['families'])}).", ""]
    lines += _totals(result)
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def _totals(result: dict) -> list[str]:
    out = ["| tool | probe | queries | seconds |", "|---|---|---|---|"]
    gq = gs = lq = ls = 0.0
    for p, g in (result.get("garak") or {}).items():
        out.append(f"| garak | {p} | {g['queries']} | {g['seconds']:.0f} |")
        gq, gs = gq + g["queries"], gs + g["seconds"]
    for p, r in (result.get("lmcritic") or {}).items():
        q = r.get("attack_queries", r["queries"])
        out.append(f"| lmcritic | {p} | {q} (server saw {r['queries']}) | {r['seconds']:.0f} |")
        lq, ls = lq + q, ls + r["seconds"]
    out += [f"| **garak total** | | {gq:.0f} | {gs:.0f} |", f"| **lmcritic total** | | {lq:.0f} | {ls:.0f} |", ""]
    defaults = result.get("garak_defaults") or {}
    if defaults:
        out += ["garak at its own defaults (soft prompt cap 256, 5 generations per prompt) would send:", "",
                "| garak probe | prompts | generations | queries |", "|---|---|---|---|"]
        total = 0
        for p, d in defaults.items():
            if isinstance(d, dict) and "prompts" in d:
                total += d["prompts"] * d["generations"]
                out.append(f"| {p} | {d['prompts']} | {d['generations']} | {d['prompts'] * d['generations']} |")
            else:
                out.append(f"| {p} | — | — | {str(d.get('error') if isinstance(d, dict) else d)[:120]} |")
        out += [f"| **total** | | | {total} |", ""]
    return out
