"""English vs Chinese accuracy of one model on the same sentences, with the label prior taken out.

``performance.crosslingual`` compares accuracy at the model's own decision (p(positive) > 0.5). A base model that
answers one label for everything (Gemma 3 270M does) is at chance in both languages and the gap is 0 by
construction. This reads a stored run's cross-lingual records and re-decides each language at its own median
p(positive): label-free (the packaged parallel set is balanced, so the median splits it in half) but transductive
(the threshold is chosen on the test sentences), so read it as "how well does p(positive) separate the classes at
the known base rate", alongside the probe's AUROC. Paired over sentences: the gap en − zh with a paired bootstrap
CI and an exact McNemar test. No model calls.

    python benchmarks/zh_crosslingual_threshold.py RUN[:STORE] [RUN[:STORE] ...] [--key PROBE_KEY ...]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from lmcritic import stats
from lmcritic.results import Results

OUT = Path(__file__).parent / "results"


def median_accuracy(records: list[Any], names: tuple[str, str]) -> dict[str, Any]:
    """Per language: accuracy at the median p(positive); the paired gap first − second."""
    y = [r.target == "positive" for r in records]
    ok: dict[str, list[bool]] = {}
    for lang in names:
        p = [float(r.output[lang]["p_positive"]) for r in records]
        cut = statistics.median(p)
        ok[lang] = [(x > cut) == t for x, t in zip(p, y)]
    a, b = (ok[n] for n in names)
    gap, p_boot = stats.paired_bootstrap([float(x) for x in b], [float(x) for x in a])  # mean(a − b)
    return {"n": len(records), "positives": sum(y),
            "accuracy": {n: _est(stats.proportion(ok[n])) for n in names},
            "gap": _est(gap), "p_bootstrap": p_boot, "p_mcnemar": stats.mcnemar(a, b)}


def _est(e: Any) -> dict[str, float]:
    return {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n}


def _fmt(e: dict[str, float]) -> str:
    return f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}] (n={e['n']})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="RUN or RUN:STORE (a runs.sqlite path)")
    ap.add_argument("--key", nargs="+", default=["performance.crosslingual", "crosslingual_4shot"],
                    help="the cross-lingual probe keys to read (those a run lacks are skipped)")
    args = ap.parse_args()
    rows = []
    for spec in args.runs:
        run, _, store = spec.partition(":")
        res = Results.load(run, store or None)
        for key in args.key:
            if key not in res.store.record_keys(res.run_id):
                continue
            records = res.store.records(res.run_id, key)
            names = tuple(records[0].tags.get("languages", ("en", "zh")))
            rows.append({"run": res.run_id, "key": key, "languages": names, **median_accuracy(records, names)})
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"zh_crosslingual_{stamp}.json").write_text(json.dumps(rows, indent=1))
    lines = ["# English vs Chinese accuracy at each language's median p(positive) (label prior taken out)", "",
             f"`python benchmarks/zh_crosslingual_threshold.py {' '.join(args.runs)}` — {stamp}; raw: "
             f"`zh_crosslingual_{stamp}.json`. See the script's docstring for what the threshold is and is not.", "",
             "| run | probe | n (positive) | en accuracy | zh accuracy | gap en − zh | McNemar p |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["languages"]
        lines.append(f"| {r['run']} | {r['key']} | {r['n']} ({r['positives']}) | {_fmt(r['accuracy'][a])} | "
                     f"{_fmt(r['accuracy'][b])} | {_fmt(r['gap'])} | {r['p_mcnemar']:.3g} |")
    (OUT / "zh_crosslingual_latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
