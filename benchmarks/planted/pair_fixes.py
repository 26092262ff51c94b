"""Paired comparison of two fixes of one planted model on the same affected cases: per seed the cases only the
first fix's model fails and only the second's, pooled into an exact McNemar test.

    python benchmarks/planted/pair_fixes.py SEED:TRIAL_DIR_A:TRIAL_DIR_B ...

(trial dirs of ``run_mitigation_hf.py``, ``benchmarks/.work/hf_mitigation/CAUSE-sSEED``, of the same plant and seed).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hf_plants  # noqa: E402
import run_mitigation_hf  # noqa: E402


def failures(work: str) -> tuple[dict, list[tuple[str, bool]]]:
    """The trial's row and its mitigated model's (case id, failed) on the evaluated probe, in case order."""
    from lmcritic.store.runs import RunStore

    row = json.loads(Path(work, "row.json").read_text())
    records = RunStore(Path(work, "runs.sqlite")).records(row["run_after"], "performance.sst2")
    return row, [(r.case_id, r.passed is False) for r in records]


def discordant(seed: int, a: str, b: str) -> tuple[int, int]:
    row_a, fails_a = failures(a)
    _, fails_b = failures(b)
    case, _ = run_mitigation_hf.cases(hf_plants.build(row_a["name"], seed), seed)
    assert [k for k, _ in fails_a] == [k for k, _ in fails_b] and len(fails_a) == len(case.eval)
    picked = [i for i in sorted(case.planted)]
    assert abs(sum(fails_a[i][1] for i in picked) / len(picked) - row_a["planted"]["after"]) < 1e-9
    only_a = sum(fails_a[i][1] and not fails_b[i][1] for i in picked)
    only_b = sum(fails_b[i][1] and not fails_a[i][1] for i in picked)
    print(f"{row_a['name']} seed {seed}: n {len(picked)}, A fails {sum(fails_a[i][1] for i in picked)}, "
          f"B fails {sum(fails_b[i][1] for i in picked)}; only A {only_a}, only B {only_b}")
    return only_a, only_b


def main() -> None:
    from scipy.stats import binomtest

    total_a = total_b = 0
    for arg in sys.argv[1:]:
        seed, a, b = arg.split(":")
        only_a, only_b = discordant(int(seed), a, b)
        total_a, total_b = total_a + only_a, total_b + only_b
    p = binomtest(min(total_a, total_b), total_a + total_b).pvalue if total_a + total_b else 1.0
    print(f"pooled: only A fails {total_a}, only B fails {total_b}, exact McNemar p {p:.2g}")


if __name__ == "__main__":
    main()
