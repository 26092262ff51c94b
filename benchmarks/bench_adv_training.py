"""Adversarial training side by side: ``lmcritic mitigate --method adversarial_training`` vs TextAttack's
``Trainer`` (``textattack train --attack deepwordbug``), same victim, data, steps and attack budget.

    bash benchmarks/setup_textattack.sh      # once: TextAttack 0.3.11 in its own venv
    .venv/bin/python benchmarks/bench_adv_training.py [--n-train 4000] [--adv 400] [--budget 50]

Victim: the 2-layer BERT of ``bench_textattack.py`` (trained 1,000 fixed steps from scratch on SST-2 train).
Both fine-tune it on the same ``--n-train`` SST-2 training sentences for the same number of optimizer steps
(TextAttack: one clean epoch, then ``--adv`` DeepWordBug adversarial examples made against the current model,
then the remaining epochs on clean + adversarial rows; lmcritic: perturbed copies of the rows plus DeepWordBug
examples from ``--adv`` attacked training rows, one mixed run), batch 32, the same learning rate, no warm-up,
query budget ``--budget`` per attacked training row. Then each model is attacked afresh: lmcritic's DeepWordBug
(``robustness.attack``: guided search, white-box) and TextAttack's own DeepWordBug, budget ``--eval-budget``, on
``--eval-n`` SST-2 dev sentences; clean accuracy on all 872 dev sentences. Robust accuracy = share of the
attacked sentences still classified correctly after the attack. Writes ``results/advtrain_<stamp>.json`` and
``results/advtrain_latest.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
TA_PY = WORK / "venv-textattack" / "bin" / "python"
DATA = Path(os.environ.get("LMCRITIC_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))


def write(rows: list[tuple[str, int]], path: Path) -> Path:
    path.write_text("text\tlabel\n" + "".join(f"{' '.join(t.split())}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path


def clean_accuracy(model_dir: Path, dev: list[tuple[str, int]], spec: dict | None = None) -> dict:
    """On all dev sentences, through the model as served: its spec when it has wrappers, else the folder."""
    from lmcritic import stats
    from lmcritic.backends import ModelSpec, load_model
    from lmcritic.backends.hf import HFBackend
    from lmcritic.requests import ClassifyRequest

    be = load_model(ModelSpec(spec["name"], spec.get("backend"), spec.get("options") or {})) if spec else \
        HFBackend(model=str(model_dir), batch_size=64)
    out = be.classify([ClassifyRequest(t) for t, _ in dev])
    right = [r.label == ("negative", "positive")[y] for r, (_, y) in zip(out, dev)]
    est = stats.proportion(right)
    return {"value": est.value, "ci": [est.ci_low, est.ci_high], "n": est.n, "correct": right}


def front_end_only(store_path: Path, victim_run: str, out: Path, seed: int) -> dict:
    """The victim behind normalize_input, no training: what the front end does alone (inference-time)."""
    import shutil

    from lmcritic.mitigate.api import apply
    from lmcritic.store.runs import RunStore

    shutil.rmtree(out, ignore_errors=True)
    outcome = apply(RunStore(store_path), victim_run, method="normalize_input", out=out,
                    cache_path=store_path.parent / "cache.sqlite", progress=False, seed=seed)
    return {"model_dir": str(WORK / "ta-classifier-1000"), "normalize": True, "spec": outcome.model.spec,
            "robust": robust(RunStore(store_path).records(outcome.verification.run_after, "robustness.attack"))}


def paired_clean(models: dict, a: str, b: str) -> dict | None:
    """Clean accuracy of b minus a on the same dev sentences: paired bootstrap CI and McNemar p."""
    from lmcritic import stats

    ca, cb = (models.get(k, {}).get("clean", {}).get("correct") for k in (a, b))
    if not ca or not cb:
        return None
    est, _ = stats.paired_bootstrap([float(x) for x in ca], [float(x) for x in cb])
    return {"a": a, "b": b, "difference": est.value, "ci": [est.ci_low, est.ci_high], "n": est.n,
            "mcnemar_p": stats.mcnemar(ca, cb)}


def lmcritic_attack(store_path: Path, model_dir: Path, dev_eval: Path, n: int, budget: int) -> tuple[str, dict]:
    """A fresh ``robustness.attack`` run on ``model_dir``; returns its run id and robust accuracy."""
    from lmcritic.backends import ModelSpec
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    spec = RunSpec(model=ModelSpec(str(model_dir), "hf"), name=f"attack {model_dir.name}", probes=(
        ProbeSpec("robustness.attack", {"data": str(dev_eval), "n": n, "recipes": ["deepwordbug"], "budget": budget}),))
    runner = Runner(store_path=store_path, cache_path=store_path.parent / "cache.sqlite", progress=False)
    run_id = runner.run(spec).run_id
    return run_id, robust(runner.store.records(run_id, "robustness.attack"))


def robust(records) -> dict:
    from lmcritic import stats

    est = stats.proportion([bool(r.passed) for r in records])
    return {"value": est.value, "ci": [est.ci_low, est.ci_high], "n": est.n}


def textattack_attack(model_dir: Path, sentences: Path, budget: int, seed: int, normalize: bool = False) -> dict | str:
    """TextAttack's own DeepWordBug (``_bench_ta_textattack.py``): robust accuracy on the same sentences; with
    ``normalize`` against the model behind lmcritic's input normaliser, as the mitigated spec serves it."""
    from bench_textattack import nltk_stopwords

    from lmcritic import stats

    out = WORK / f"ta_eval_{model_dir.parent.name}_{model_dir.name}{'_norm' if normalize else ''}.jsonl"
    cmd = [str(TA_PY), str(ROOT / "benchmarks" / "_bench_ta_textattack.py"), "--model", str(model_dir), "--sentences",
           str(sentences), "--out", str(out), "--wir", "unk", "--shared", "0", "--budget", str(budget), "--seed",
           str(seed), *(["--normalize"] if normalize else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_ta_env(nltk_stopwords()))
    if proc.returncode:
        return f"TextAttack failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    est = stats.proportion([r["status"] == "failed" or r["status"] == "budget" for r in rows])
    return {"value": est.value, "ci": [est.ci_low, est.ci_high], "n": est.n}


def _ta_env(nltk_root: Path) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "TA_CACHE_DIR": str(WORK / "ta-cache"), "NLTK_DATA": str(nltk_root)}


def ours(store_path: Path, victim_run: str, train_tsv: Path, out: Path, args: argparse.Namespace,
         normalize: bool) -> dict:
    """``normalize``: the new model served behind normalize_input (the default against character noise)."""
    import shutil

    from lmcritic.mitigate.api import apply
    from lmcritic.store.runs import RunStore

    steps = math.ceil(args.n_train / 32) + (args.epochs - 1) * math.ceil((args.n_train + args.adv) / 32)
    config = {"steps": steps, "batch_size": 32, "learning_rate": args.lr, "warmup_ratio": 0.0, "max_length": 64,
              "recipe": "deepwordbug", "n_attack": args.adv, "attack_budget": args.budget, "threads": 1,
              "perturbations": ["typos", "char_noise"], "fraction": 0.5, "normalize": normalize}
    shutil.rmtree(out, ignore_errors=True)  # a fresh fine-tune: an earlier run's checkpoints would be resumed
    outcome = apply(RunStore(store_path), victim_run, method="adversarial_training", train=train_tsv, out=out,
                    config=config, cache_path=store_path.parent / "cache.sqlite", progress=False, seed=args.seed)
    ver = outcome.verification
    return {"model_dir": outcome.model.model_dir, "wall_s": outcome.apply_s, "steps": steps, "normalize": normalize,
            "spec": outcome.model.spec if normalize else None,
            "costs": [{"name": c.name, "value": c.estimate.value, "n": c.estimate.n} for c in outcome.model.costs],
            "details": {k: v for k, v in outcome.model.details.items() if k != "rows"}, "run_after": ver.run_after,
            "robust": robust(RunStore(store_path).records(ver.run_after, "robustness.attack")),
            "targeted": None if ver.targeted is None else {"before": ver.targeted.before.value,
                                                           "after": ver.targeted.after.value,
                                                           "p": ver.targeted.p_value}}


def theirs(model_dir: Path, train_tsv: Path, dev_tsv: Path, out: Path, args: argparse.Namespace) -> dict | str:
    from bench_textattack import nltk_stopwords

    if not TA_PY.is_file():
        return f"no TextAttack venv at {TA_PY} (bash benchmarks/setup_textattack.sh)"
    cmd = [str(TA_PY), str(ROOT / "benchmarks" / "_bench_ta_advtrain.py"), "--model", str(model_dir), "--train",
           str(train_tsv), "--dev", str(dev_tsv), "--out", str(out), "--adv", str(args.adv), "--budget",
           str(args.budget), "--epochs", str(args.epochs), "--lr", str(args.lr), "--seed", str(args.seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_ta_env(nltk_stopwords()))
    if proc.returncode:
        return f"TextAttack training failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "model_dir": str(out / "model")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--adv", type=int, default=400, help="adversarial training examples (attacked training rows)")
    ap.add_argument("--budget", type=int, default=50, help="queries per attacked training row")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--eval-n", type=int, default=200)
    ap.add_argument("--eval-budget", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-textattack", action="store_true")
    args = ap.parse_args()
    import random

    import torch
    from _bench_ta_classifier import sst2, train

    torch.set_num_threads(1)  # tiny model: a second OpenMP thread only waits on a busy 2-core machine
    work = WORK / "advtrain"
    work.mkdir(parents=True, exist_ok=True)
    victim = WORK / "ta-classifier-1000"
    trained = train(victim, DATA / "sst2_train.tsv", DATA / "sst2_dev.tsv", steps=1000)
    rows = sst2(DATA / "sst2_train.tsv")
    random.Random(0).shuffle(rows)  # the victim's own training order: its first sentences
    train_tsv = write(rows[: args.n_train], work / "train.tsv")
    dev = sst2(DATA / "sst2_dev.tsv")
    dev_tsv = write(dev, work / "dev.tsv")
    sentences = work / "eval_sentences.json"
    sentences.write_text(json.dumps(dev[: args.eval_n]))
    store = work / "runs.sqlite"
    models: dict[str, dict] = {}
    victim_run, victim_robust = lmcritic_attack(store, victim, dev_tsv, args.eval_n, args.eval_budget)
    models["victim (no adversarial training)"] = {"model_dir": str(victim), "robust": victim_robust}
    models["lmcritic adversarial_training (training alone)"] = ours(store, victim_run, train_tsv, work / "lmcritic",
                                                                   args, normalize=False)
    models["lmcritic adversarial_training (+ normalize_input front end, its default)"] = ours(
        store, victim_run, train_tsv, work / "lmcritic-norm", args, normalize=True)
    models["victim + normalize_input only (no training)"] = front_end_only(store, victim_run, work / "front-end",
                                                                          args.seed)
    if not args.skip_textattack:
        ta = theirs(victim, train_tsv, dev_tsv, work / "textattack", args)
        if isinstance(ta, dict):
            _, ta["robust"] = lmcritic_attack(store, Path(ta["model_dir"]), dev_tsv, args.eval_n, args.eval_budget)
        models["TextAttack Trainer (DeepWordBug)"] = ta if isinstance(ta, dict) else {"error": ta}
    for m in models.values():
        if "model_dir" in m:
            m["clean"] = clean_accuracy(Path(m["model_dir"]), dev, m.get("spec"))
            if not args.skip_textattack and TA_PY.is_file():
                m["robust_textattack"] = textattack_attack(Path(m["model_dir"]), sentences, args.eval_budget, args.seed,
                                                           bool(m.get("normalize")))
    pair = paired_clean(models, "TextAttack Trainer (DeepWordBug)",
                        "lmcritic adversarial_training (+ normalize_input front end, its default)")
    report(args, trained, models, pair)


def report(args: argparse.Namespace, trained: dict, models: dict, pair: dict | None = None) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    res = ROOT / "benchmarks" / "results"
    (res / f"advtrain_{stamp}.json").write_text(json.dumps({"args": vars(args), "victim": trained, "models": models,
                                                            "paired_clean": pair}, indent=1, default=str))
    fmt = lambda e: ("—" if not isinstance(e, dict)  # noqa: E731
                     else f"{e['value']:.3f} [{e['ci'][0]:.3f}, {e['ci'][1]:.3f}] (n={e['n']})")
    lines = [f"# Adversarial training: lmcritic vs TextAttack ({stamp})", "",
             f"Victim: {trained.get('model')} trained {trained['steps']} steps on SST-2 train (dev accuracy "
             f"{trained['dev_accuracy']:.3f}). Both fine-tune it on the same {args.n_train} SST-2 training sentences, "
             f"{args.epochs} epoch(s) worth of steps at batch 32, lr {args.lr}, {args.adv} DeepWordBug-attacked "
             f"training rows at {args.budget} queries each. Fresh attacks afterwards: lmcritic's DeepWordBug and "
             f"TextAttack's, budget {args.eval_budget}, on {args.eval_n} SST-2 dev sentences; clean accuracy on all "
             "872 dev sentences. Wilson 95% CIs.", "",
             "| model | clean accuracy | robust acc. (lmcritic attack) | robust acc. (TextAttack attack) | "
             "training wall time (s) |", "|---|---|---|---|---|"]
    for name, m in models.items():
        if "error" in m:
            lines.append(f"| {name} | {m['error']} | | | |")
            continue
        wall = f"{m['wall_s']:.0f}" if "wall_s" in m else "—"
        lines.append(f"| {name} | {fmt(m.get('clean'))} | {fmt(m.get('robust'))} | {fmt(m.get('robust_textattack'))} "
                     f"| {wall} |")
    if pair:
        lines += ["", f"Clean accuracy, paired on the same {pair['n']} dev sentences: {pair['b']} minus {pair['a']} "
                  f"{pair['difference']:+.4f} [{pair['ci'][0]:+.4f}, {pair['ci'][1]:+.4f}] (paired bootstrap), "
                  f"McNemar p = {pair['mcnemar_p']:.2g}."]
    (res / "advtrain_latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
