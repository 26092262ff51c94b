"""The length plant's unaffected evaluation cases, failed by the planted model, the clean model (true corpus) and
the rebuilt repair's model of the stored trial. Run from the repository root with seeds as arguments."""
import sys

sys.path.insert(0, "benchmarks/planted")

import hf_plants  # noqa: E402
from length_groups import NAMES, predictions  # noqa: E402
from run_mitigation_hf import cases  # noqa: E402

WORK = "benchmarks/.work"
for seed in map(int, sys.argv[1:]):
    case, _ = cases(hf_plants.build("length_label", seed), seed)
    rows = [r for i, r in enumerate(case.eval) if i not in case.planted]
    out = []
    for name, m in (("planted", f"{WORK}/hf_models/length_label-s{seed}"),
                    ("clean model", f"{WORK}/hf_models/clean-s{seed}"),
                    ("rebuilt", f"{WORK}/hf_mitigation/length_label-s{seed}/mitigated/model")):
        said = predictions(m, [t for t, _ in rows])
        wrong = sum(s not in (str(y), NAMES[str(y)]) for s, (_, y) in zip(said, rows))
        out.append(f"{name} {wrong}/{len(rows)} = {wrong / len(rows):.3f}")
    print(f"seed {seed} unaffected cases: " + ", ".join(out), flush=True)
