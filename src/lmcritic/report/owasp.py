"""The OWASP Top 10 for LLM Applications (2025) and which lmcritic probes test each risk.

One table, used by the report and the card: a risk is *failing* when a probe mapped to it has a failing
finding in the run, *tested* when such a probe ran without one, and *not tested* otherwise, so a reader
sees which risks the run says nothing about. Probes not listed here test nothing the Top 10 names (bias,
performance) and are left out rather than stretched to fit.
"""
from __future__ import annotations

from typing import Any

TOP10 = {
    "LLM01": "Prompt Injection", "LLM02": "Sensitive Information Disclosure", "LLM03": "Supply Chain",
    "LLM04": "Data and Model Poisoning", "LLM05": "Improper Output Handling", "LLM06": "Excessive Agency",
    "LLM07": "System Prompt Leakage", "LLM08": "Vector and Embedding Weaknesses", "LLM09": "Misinformation",
    "LLM10": "Unbounded Consumption",
}
# probe name -> (risks, why)
PROBE_RISKS: dict[str, tuple[tuple[str, ...], str]] = {
    "robustness.injection": (("LLM01",), "indirect injection: instructions hidden in a document"),
    "safety.jailbreak": (("LLM01",), "direct injection: jailbreak families that bypass refusals"),
    "safety.leakage": (("LLM07", "LLM02"), "a secret in the system prompt, extracted"),
    "safety.pii": (("LLM02",), "personal data elicited from the model"),
    "safety.memorization": (("LLM02", "LLM04"), "training data extracted; planted canaries exposed"),
    "safety.hallucination": (("LLM09",), "wrong answers, and whether self-consistency flags them"),
    "safety.fabrication": (("LLM09", "LLM03"), "non-existent packages, papers and people described as real"),
    "safety.misinformation": (("LLM09",), "false premises accepted, misinformation written on request"),
}


def risks_of(probe_name: str) -> tuple[str, ...]:
    return PROBE_RISKS.get(probe_name, ((), ""))[0]


def coverage(probes: list[dict[str, Any]], findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per Top-10 risk: status (failing / tested / not tested), the run's probes for it, failing findings."""
    name_of = {p["probe_key"]: p.get("probe_name") or p["probe_key"] for p in probes}
    done = {k for k, p in ((p["probe_key"], p) for p in probes) if p["status"] == "done"}
    rows = []
    for risk, title in TOP10.items():
        keys = sorted(k for k, n in name_of.items() if risk in risks_of(n))
        ran = [k for k in keys if k in done]
        fails = [f"{f['probe']}:{f['name']}" for f in findings if f["probe"] in keys and f["verdict"] == "fail"]
        status = "failing" if fails else "tested" if ran else "not tested"
        rows.append({"risk": risk, "title": title, "status": status, "probes": ran, "failing": fails,
                     "why": "; ".join(PROBE_RISKS[name_of[k]][1] for k in ran)})
    return rows
