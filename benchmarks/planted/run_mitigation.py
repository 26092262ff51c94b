"""Planted-defect mitigation benchmark: does ``lmcritic mitigate --method auto`` close the defect we built in?

For every planted defect (``planted.py``) and seed: train the model, run ``performance.sst2`` on its evaluation set
plus a clean held-out set (SST-2 dev sentences no builder uses) through the normal runner, diagnose with the
training corpus, then ``mitigate --method auto`` with the same corpus (the library API, as the CLI calls it).
Judged on the planted cases (the affected cases, chosen when the defect was built, not by the diagnosis): failure
rate before → after with Wilson CIs, McNemar's exact p, and the relative reduction; and on the clean set: accuracy
before → after with the paired change's CI. A defect counts as closed when the failure rate on the planted cases
drops by >= 50% relative with p < 0.05 while clean accuracy drops by <= 1 point. Writes
``results/mitigation_latest.{json,md}``.

    .venv/bin/python benchmarks/planted/run_mitigation.py [--only NAME ...] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bow  # noqa: E402
import planted  # noqa: E402

WORK = HERE.parent / ".work" / "planted-mitigation"
RESULTS = HERE / "results"
KINDS = ("bow",)  # the tiny-GPT-2 canary model needs a base checkpoint to retrain from (see README)
N_CLEAN = 300


def clean_rows(p: planted.Planted, seed: int) -> list[planted.Row]:
    """SST-2 dev sentences outside this defect's evaluation set (same shuffle as the builders), never trained on."""
    dev = planted.read(planted.DATA / "sst2_dev.tsv")
    random.Random(seed + 1).shuffle(dev)
    used = {t for t, _ in p.eval} | {t for t, _ in p.train}
    return [r for r in dev[-N_CLEAN:] if r[0] not in used]


def in_domain(p: planted.Planted, seed: int, work: Path) -> dict:
    """400 labelled in-domain rows for the register-shift defect: colloquial rewrites (the defect's own slang) of
    training-split sentences the planted model never saw, as a user would label deployment-style examples.
    They are training rows, never evaluation sentences."""
    train, _ = planted.base(seed, n_train=6400)
    rng = random.Random(seed + 7)
    rows = [(planted.colloquial(t, rng), y) for t, y in train[len(p.train):len(p.train) + 400]]
    return {"config": {"in_domain": str(planted.write_tsv(rows, work / "in_domain.tsv", with_line=False))}}


VARIANTS = {"register_shift": ("in-domain rows", in_domain)}


def run_one(p: planted.Planted, seed: int, variant: str | None = None) -> dict:
    from lmcritic.backends import ModelSpec
    from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run
    from lmcritic.mitigate.api import apply
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    work = WORK / f"{p.name}-seed{seed}{'-' + variant.replace(' ', '-') if variant else ''}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    extra = VARIANTS[p.name][1](p, seed, work) if variant else {}
    eval_path = planted.write_tsv(p.eval, work / "eval.tsv")
    clean_path = planted.write_tsv(clean_rows(p, seed), work / "clean.tsv")
    train_path = planted.write_tsv(p.train, work / "train.tsv", with_line=False)
    model_path = bow.BowSentiment(bow.train(p.train), name=f"planted-{p.name}").save(work / "model.json")
    spec = RunSpec(model=ModelSpec(name=str(model_path), backend="planted-bow"), name=f"planted {p.name}", seed=seed,
                   probes=(ProbeSpec("performance.sst2", {"data": str(eval_path), "n": None}),
                           ProbeSpec("performance.sst2", {"data": str(clean_path), "n": None}, key="clean")))
    store_path, cache = work / "runs.sqlite", work / "cache.sqlite"
    runner = Runner(store_path=store_path, cache_path=cache, progress=False)
    run_id = runner.run(spec).run_id
    t0 = time.perf_counter()
    diagnose_run(runner.store, run_id, config=DiagnoseConfig(seed=seed, probes=("performance.sst2",)),
                 train=train_path, cache_path=cache)
    diag_s = time.perf_counter() - t0
    out = apply(runner.store, run_id, method="auto", train=train_path, out=work / "mitigated", cache_path=cache,
                progress=False, seed=seed, **extra)
    return {**judge(p, runner.store, run_id, out, diag_s), "variant": variant}


def judge(p: planted.Planted, store, run_id: str, out, diag_s: float) -> dict:
    from lmcritic.mitigate.verify import paired

    ver = out.verification
    ids = [planted.case_id(i) for i in p.planted]
    key = "performance.sst2"
    before = {r.case_id: r for r in store.records(run_id, key)}
    after = {r.case_id: r for r in store.records(ver.run_after, key)}
    planted_o = single(paired("planted", key, "planted cases", p.cause, True, ids, before, after))
    cb = {r.case_id: r for r in store.records(run_id, "clean")}
    ca = {r.case_id: r for r in store.records(ver.run_after, "clean")}
    clean_o = single(paired("clean", "clean", "clean held-out", None, False, list(cb), cb, ca))
    clean_ok = -clean_o.change.value >= -0.01  # the clean accuracy change is minus the failure-rate change
    closed = (planted_o.relative or 0) >= 0.5 and planted_o.p_value < 0.05 and clean_ok
    excess = excess_reduction(planted_o, clean_o)
    closed_excess = excess is not None and excess >= 0.5 and planted_o.p_value < 0.05 and clean_ok
    t = ver.targeted
    return {"name": p.name, "planted_cause": p.cause, "run_before": run_id, "run_after": ver.run_after,
            "defect": out.target.id, "diagnosed_cause": out.target.cause, "cause_verdict": out.target.verdict,
            "culprit": None if out.target.culprit is None else {"kind": out.target.culprit.kind,
                                                                  "value": out.target.culprit.value,
                                                                  "source": out.target.culprit.source},
            "method": out.method, "reason": out.reason, "kind": out.model.kind,
            "planted": _outcome(planted_o), "clean": _outcome(clean_o), "clean_accuracy_change": -clean_o.change.value,
            "clean_accuracy_change_ci": [-clean_o.change.ci_high, -clean_o.change.ci_low],
            "targeted_defect": _outcome(t) if t else None, "regressions": len(ver.regressions),
            "closed": closed, "excess_reduction": excess, "closed_excess": closed_excess,
            "details": {k: v for k, v in out.model.details.items() if k != "training"},
            "costs": [{"name": c.name, "value": c.estimate.value, "n": c.estimate.n} for c in out.model.costs],
            "diagnose_s": round(diag_s, 2), "mitigate_s": round(out.apply_s, 2), "verify_s": round(out.verify_s, 2)}


def single(o):
    """One test on its own (no family to BH-correct): its verdict from its own p-value."""
    from dataclasses import replace

    from lmcritic.mitigate.verify import verdict_of

    o = replace(o, p_adjusted=o.p_value)
    return replace(o, verdict=verdict_of(o, 0.05))


def excess_reduction(planted_o, clean_o) -> float | None:
    """How much of the failure rate ABOVE the model's clean failure rate went away: the planted cases cannot fail
    less often than the model fails on clean sentences, so a relative reduction of the raw rate is capped by it."""
    before = planted_o.before.value - clean_o.before.value
    after = planted_o.after.value - clean_o.after.value
    return None if before <= 0 else 1 - max(0.0, after) / before


def _outcome(o) -> dict:
    return {"before": o.before.value, "before_ci": [o.before.ci_low, o.before.ci_high], "after": o.after.value,
            "after_ci": [o.after.ci_low, o.after.ci_high], "n": o.before.n, "change": o.change.value,
            "change_ci": [o.change.ci_low, o.change.ci_high], "relative": o.relative, "p": o.p_value,
            "verdict": o.verdict, "fixed": o.fixed, "broken": o.broken}


def summarize(rows: list[dict], failed: list[dict]) -> dict:
    """Closed counts per planted defect; a defect the pipeline failed on counts as not closed."""
    out = {}
    label = lambda r: f"{r['name']}{' + ' + r['variant'] if r.get('variant') else ''}"  # noqa: E731
    for name in sorted({label(r) for r in [*rows, *failed]}):
        rs = [r for r in rows if label(r) == name]
        n = len(rs) + sum(label(f) == name for f in failed)
        out[name] = {"methods": sorted({r["method"] for r in rs}), "n": n,
                     **_rate("closed", [r["closed"] for r in rs], n),
                     **_rate("closed_excess", [r["closed_excess"] for r in rs], n)}
        if rs:
            out[name]["cause"] = rs[0]["planted_cause"]
    n = len(rows) + len(failed)
    out["all"] = {"n": n, **_rate("closed", [r["closed"] for r in rows], n),
                  **_rate("closed_excess", [r["closed_excess"] for r in rows], n)}
    return out


def _rate(key: str, flags: list[bool], n: int) -> dict:
    from lmcritic import stats

    lo, hi = stats.wilson(sum(flags), n)
    return {key: sum(flags), f"{key}_ci": [lo, hi]}


def markdown(result: dict) -> str:
    lines = ["# Planted-defect mitigation benchmark", "",
             f"Run {result['created']} (seeds {result['seeds']}; jobs done {result['jobs_done']}). "
             "Per planted defect: `lmcritic mitigate --method auto "
             "--train TRAIN` after `lmcritic diagnose --train TRAIN`; judged on the planted cases (failure rate before "
             "→ after, Wilson 95% CI, McNemar exact p) and on a clean held-out set (accuracy change, paired bootstrap "
             "95% CI). Closed = ≥ 50% relative reduction with p < 0.05 and a clean-accuracy drop ≤ 1 point; "
             "closed (excess) = the same on the failure rate in excess of the model's clean failure rate (the floor a "
             "planted case cannot go below).", ""]
    for name, s in result["summary"].items():
        lines.append(f"- **{name}**{' (' + s['cause'] + ')' if 'cause' in s else ''}: closed {s['closed']}/{s['n']} "
                     f"(Wilson 95% CI {s['closed_ci'][0]:.2f}–{s['closed_ci'][1]:.2f}), closed on the excess "
                     f"{s['closed_excess']}/{s['n']} ({s['closed_excess_ci'][0]:.2f}–{s['closed_excess_ci'][1]:.2f})"
                     + (f"; method {', '.join(s['methods'])}" if "methods" in s else ""))
    lines += ["", "| planted | seed | diagnosed cause → method | planted failure rate before → after (n) | rel. "
              "| excess rel. | p | clean acc. change [95% CI] (n) | closed / excess |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in result["models"]:
        pl, cl = r["planted"], r["clean"]
        name = r["name"] + (f" + {r['variant']}" if r.get("variant") else "")
        ex = "-" if r["excess_reduction"] is None else f"{r['excess_reduction']:+.0%}"
        lines.append(
            f"| {name} | {r['seed']} | {r['diagnosed_cause']} ({r['cause_verdict']}) → {r['method']} | "
            f"{pl['before']:.3f} [{pl['before_ci'][0]:.2f}, {pl['before_ci'][1]:.2f}] → {pl['after']:.3f} "
            f"[{pl['after_ci'][0]:.2f}, {pl['after_ci'][1]:.2f}] ({pl['n']}) | "
            f"{(pl['relative'] or 0):+.0%} | {ex} | {pl['p']:.2g} | {r['clean_accuracy_change']:+.3f} "
            f"[{r['clean_accuracy_change_ci'][0]:+.3f}, {r['clean_accuracy_change_ci'][1]:+.3f}] ({cl['n']}) | "
            f"{'yes' if r['closed'] else 'no'} / {'yes' if r['closed_excess'] else 'no'} |")
    lines += [f"| {f['name']}{' + ' + f['variant'] if f.get('variant') else ''} | {f['seed']} | failed: "
              f"{f['error']} | | | | | | no / no |" for f in result.get("failed", [])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [n for n, b in planted.BUILDERS.items() if n != "canary_lm"]
    ap.add_argument("--only", nargs="*", choices=names)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    from lmcritic.errors import LmcriticError

    bow.register()
    rows: list[dict] = []
    failed: list[dict] = []
    jobs = [(seed, name, v) for seed in args.seeds for name in args.only or names
            for v in (None, *((VARIANTS[name][0],) if name in VARIANTS else ()))]
    for seed, name, variant in jobs:
        t = time.perf_counter()
        label = name + (f" + {variant}" if variant else "")
        try:
            row = run_one(planted.BUILDERS[name](seed), seed, variant)
        except LmcriticError as err:  # one defect the pipeline cannot mitigate must not hide the others
            failed.append({"name": name, "variant": variant, "seed": seed, "error": str(err)})
            print(f"seed {seed} {label:16s} FAILED: {err}", flush=True)
            continue
        row["seed"], row["total_s"] = seed, round(time.perf_counter() - t, 2)
        rows.append(row)
        print(f"seed {seed} {label:16s} cause={row['diagnosed_cause']} method={row['method']} planted "
              f"{row['planted']['before']:.2f}->{row['planted']['after']:.2f} p={row['planted']['p']:.2g} excess "
              f"{row['excess_reduction']} clean {row['clean_accuracy_change']:+.3f} closed={row['closed']}/"
              f"{row['closed_excess']} ({row['total_s']} s)", flush=True)
        write(args, rows, failed, done=len(rows) + len(failed), total=len(jobs))  # partial results survive a stop
    print(markdown(write(args, rows, failed, len(jobs), len(jobs))))
    return 0


def write(args: argparse.Namespace, rows: list[dict], failed: list[dict], done: int, total: int) -> dict:
    result = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "seeds": args.seeds, "jobs_done": f"{done}/{total}",
              "models": rows, "failed": failed, "summary": summarize(rows, failed)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mitigation_latest.json").write_text(json.dumps(result, indent=2))
    (args.out / "mitigation_latest.md").write_text(markdown(result))
    return result


if __name__ == "__main__":
    sys.exit(main())
