"""Adversarial logit pairing (Kannan et al. 2018) in lmcritic's ``adversarial_training``: does training each
perturbed or attacked row's class probabilities onto its original's (``--set pairing=W``) buy the robustness
that training on those rows alone does not (``bench_adv_variants.py``: 0.085 → 0.085)? The victim, data, steps
and fresh attack of ``bench_adv_variants.py``; training alone (no ``normalize_input`` front end).

    .venv/bin/python benchmarks/bench_adv_pairing.py            # ~1-2 min per variant after the victim
    .venv/bin/python benchmarks/bench_adv_pairing.py --paired   # the paired comparison of the stored runs

Writes ``results/advtrain_variants_<stamp>.{json,md}`` (the same table as bench_adv_variants.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

VARIANTS = (
    {"rounds": 1, "keep": "success"},  # the default, rerun beside the others
    {"rounds": 1, "keep": "success", "pairing": 1.0},
    {"rounds": 1, "keep": "success", "pairing": 1.0, "learning_rate": 1e-3},
    {"rounds": 1, "keep": "success", "learning_rate": 1e-3},
)


def paired(store: Path) -> list[str]:
    """Each attack run of the store against the one before it and against the victim's (the first): sentences
    that survive one attack and not the other, McNemar's exact p (the runs in the order they were made)."""
    from scipy.stats import binomtest

    from lmcritic.store.runs import RunStore

    st = RunStore(store)
    runs = sorted(st.list_runs(), key=lambda r: r.created)
    held = {r.id: {x.case_id: bool(x.passed) for x in st.records(r.id, "robustness.attack")} for r in runs}
    lines = ["| run | vs | survives only here | only there | McNemar p |", "|---|---|---|---|---|"]
    for i, r in enumerate(runs[1:], 1):
        for other in {runs[0].id, runs[i - 1].id}:
            a, b = held[r.id], held[other]
            here = sum(a[k] and not b.get(k, False) for k in a)
            there = sum(b[k] and not a.get(k, False) for k in b)
            p = binomtest(here, here + there).pvalue if here + there else 1.0
            lines.append(f"| {r.id} | {other} | {here} | {there} | {p:.2g} |")
    return lines


def main() -> None:
    if sys.argv[1:] == ["--paired"]:  # the comparison alone, from the stored attack runs
        from bench_adv_training import WORK

        print("\n".join(paired(WORK / "advtrain-pairing" / "runs.sqlite")))
        return
    from bench_adv_variants import run_variants

    print("\n".join(paired(run_variants("advtrain-pairing", VARIANTS))))


if __name__ == "__main__":
    main()
