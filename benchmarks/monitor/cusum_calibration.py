"""Are the CUSUM window p-values valid in the far tail, where they are extrapolated beyond the simulation?

    .venv/bin/python benchmarks/monitor/cusum_calibration.py [--streams 100000]

For designs like the benchmark's rules (rates from 0.2% to 15%, windows of 37 to 500 values, a skewed mean),
in-control windows are simulated independently of the calibration (another seed), from the chart's stationary
state, with the true rate fixed at the reference's estimate k/n. Each gets its p-value from the calibration
(:mod:`lmcritic.monitor.sequential`); a valid p-value has P(p ≤ x) ≤ x. Reported per level x: the observed
share with its 95% Wilson interval, and the exponential rates fitted to the charts' window maxima (near 1 for
the rate charts, whose increments are log-likelihood ratios). Results: benchmarks/results/cusum_calibration_latest.md
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from lmcritic.monitor.sequential import BURN_IN, Cusum, Design, design
from lmcritic.stats import wilson

ROOT = Path(__file__).resolve().parents[2]
LEVELS = (1e-2, 1e-3, 3e-4, 1e-4)


def designs() -> dict[str, tuple[Design, int, np.ndarray | None]]:
    rng = np.random.default_rng(0)
    sample = rng.exponential(1.0, 4000)
    out = {"rate 0.2%, shift 1 pt, 500/window": (design("rate", 0.01, "up", k=8, n=4000), 500, None),
           "rate 5%, shift 5 pts, 500/window": (design("rate", 0.05, "up", k=200, n=4000), 500, None),
           "rate 15%, shift 5 pts, 37/window": (design("rate", 0.05, "up", k=45, n=300), 37, None),
           "rate 3%, shift 5 pts both ways, 500/window": (design("rate", 0.05, "both", k=120, n=4000), 500, None),
           "mean of Exp(1), shift 0.2 both ways, 500/window": (design("mean", 0.2, "both", sample=sample), 500,
                                                                sample)}
    return {k: v for k, v in out.items() if v[0] is not None}  # type: ignore[misc]


def null_p_values(d: Design, n: int, streams: int, sample: np.ndarray | None, seed: int) -> np.ndarray:
    chart = Cusum(d, seed=seed)
    chart.fresh = False
    null = chart._calibration(n)  # noqa: SLF001 (the calibration under test)
    rng = np.random.default_rng(10_000 + seed)
    a, b = np.asarray(d.a)[:, None], np.asarray(d.b)[:, None]
    p_true = d.k / d.n if d.kind == "rate" else 0.0
    out = []
    for start in range(0, streams, 20_000):
        m = min(20_000, streams - start)
        s = np.zeros((len(d.a), m))
        for _ in range(max(BURN_IN, n)):
            s = np.maximum(0.0, s + a * _draw(rng, m, sample, p_true) + b)
        top = s.copy()
        for _ in range(n):
            s = np.maximum(0.0, s + a * _draw(rng, m, sample, p_true) + b)
            np.maximum(top, s, out=top)
        out.append(null.p_values(null.tails(top.T)))
    return np.concatenate(out)


def _draw(rng: np.random.Generator, m: int, sample: np.ndarray | None, p: float) -> np.ndarray:
    if sample is not None:
        return sample[rng.integers(0, len(sample), m)]
    return (rng.random(m) < p).astype(float)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=100_000)
    args = ap.parse_args(argv)
    t0, load0 = time.perf_counter(), os.getloadavg()
    rows = []
    for i, (name, (d, n, sample)) in enumerate(designs().items()):
        ps = null_p_values(d, n, args.streams, sample, seed=i + 1)
        chart = Cusum(d, seed=i + 1)
        chart.fresh = False
        rows.append({"design": name, "streams": len(ps), "rates": chart.tail_fit(n),
                     "levels": {str(x): [int((ps <= x).sum()), *wilson(int((ps <= x).sum()), len(ps))]
                                for x in LEVELS}})
        print(rows[-1], flush=True)
    res = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": time.perf_counter() - t0,
           "load": [load0, os.getloadavg()], "rows": rows}
    out = ROOT / "benchmarks/results"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"cusum_calibration_{stamp}.json").write_text(json.dumps(res, indent=1))
    lines = [f"# CUSUM window p-values under no change ({stamp})", "",
             f"{args.streams} in-control windows per design, simulated independently of the calibration, from the "
             "stationary state, true rate = the reference's k/n. Share of windows with p ≤ x (95% Wilson CI); "
             f"valid when it is not above x. {res['seconds']:.0f} s, load average {res['load']}.", "",
             "| design | fitted tail rates | " + " | ".join(f"p ≤ {x:g}" for x in LEVELS) + " |",
             "|---|---|" + "---|" * len(LEVELS)]
    for r in rows:
        cells = [f"{k / r['streams']:.2e} [{lo:.1e}, {hi:.1e}]" for k, lo, hi in r["levels"].values()]
        rates = ", ".join(f"{x:.2f}" for x in r["rates"])
        lines.append(f"| {r['design']} | {rates} | " + " | ".join(cells) + " |")
    (out / "cusum_calibration_latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
