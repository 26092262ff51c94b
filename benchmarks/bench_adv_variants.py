"""Variants of lmcritic's ``adversarial_training`` on the victim of ``bench_adv_training.py``: does attacking the
weights being trained (``rounds``), keeping every attack's worst perturbation (``keep=closest``), a higher
learning rate or more attacked rows buy robustness the one-shot default does not? Training alone (no
``normalize_input`` front end); no TextAttack needed.

    .venv/bin/python benchmarks/bench_adv_variants.py            # the variants below, ~1 min each

Each variant fine-tunes the victim as ``bench_adv_training.py`` does (4,000 SST-2 training rows plus typo and
character-noise copies of half of them, 263 steps at batch 32, 400 attacked training rows at 50 queries), then
``mitigate`` re-runs lmcritic's DeepWordBug (budget 100) afresh on the same 200 dev sentences; clean accuracy on
all 872. Writes ``results/advtrain_variants_<stamp>.{json,md}``.
"""
from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

VARIANTS = (
    {"rounds": 1, "keep": "success"},  # the default
    {"rounds": 1, "keep": "closest"},
    {"rounds": 3, "keep": "success"},
    {"rounds": 3, "keep": "closest"},
    {"rounds": 1, "keep": "success", "learning_rate": 1e-3},
    {"rounds": 3, "keep": "closest", "learning_rate": 1e-3},
    {"rounds": 3, "keep": "closest", "learning_rate": 1e-3, "n_attack": 2000, "attack_budget": 20},
)


def variant(store: Path, victim_run: str, train_tsv: Path, out: Path, extra: dict) -> dict:
    from bench_adv_training import robust

    from lmcritic.mitigate.api import apply
    from lmcritic.store.runs import RunStore

    config = {"steps": math.ceil(4000 / 32) + math.ceil(4400 / 32), "batch_size": 32, "learning_rate": 1e-4,
              "warmup_ratio": 0.0, "max_length": 64, "recipe": "deepwordbug", "n_attack": 400, "attack_budget": 50,
              "threads": 1, "perturbations": ["typos", "char_noise"], "fraction": 0.5, "normalize": False, **extra}
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    done = apply(RunStore(store), victim_run, method="adversarial_training", train=train_tsv, out=out, config=config,
                 cache_path=store.parent / "cache.sqlite", progress=False, seed=0)
    return {"config": extra, "wall_s": round(time.perf_counter() - t0, 1), "model_dir": done.model.model_dir,
            "rounds": done.model.details["training"].get("rounds"),
            "robust": robust(RunStore(store).records(done.verification.run_after, "robustness.attack"))}


def run_variants(name: str, variants: tuple[dict, ...]) -> Path:
    """The victim (trained once, cached), its attack, then each variant under ``.work/NAME``; writes the report
    and returns the store of the attack runs."""
    import torch
    from _bench_ta_classifier import sst2, train
    from bench_adv_training import DATA, WORK, clean_accuracy, lmcritic_attack, write

    torch.set_num_threads(1)
    work = WORK / name
    work.mkdir(parents=True, exist_ok=True)
    victim = WORK / "ta-classifier-1000"
    train(victim, DATA / "sst2_train.tsv", DATA / "sst2_dev.tsv", steps=1000)
    rows = sst2(DATA / "sst2_train.tsv")
    random.Random(0).shuffle(rows)
    train_tsv = write(rows[:4000], work / "train.tsv")
    dev = sst2(DATA / "sst2_dev.tsv")
    dev_tsv = write(dev, work / "dev.tsv")
    store = work / "runs.sqlite"
    for stale in (store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
        stale.unlink(missing_ok=True)  # this run's attacks only (bench_adv_pairing compares them in order)
    victim_run, victim_robust = lmcritic_attack(store, victim, dev_tsv, 200, 100)
    out = [{"config": "victim", "robust": victim_robust, "model_dir": str(victim)}]
    for i, extra in enumerate(variants):
        out.append(variant(store, victim_run, train_tsv, work / f"v{i}", extra))
        print(json.dumps({k: v for k, v in out[-1].items() if k != "rounds"}), flush=True)
    for m in out:
        m["clean"] = {k: v for k, v in clean_accuracy(Path(m["model_dir"]), dev).items() if k != "correct"}
    report(out)
    return store


def main() -> None:
    run_variants("advtrain-variants", VARIANTS)


def report(models: list[dict]) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    res = ROOT / "benchmarks" / "results"
    (res / f"advtrain_variants_{stamp}.json").write_text(json.dumps(models, indent=1))
    lines = [f"# adversarial_training variants ({stamp})", "",
             "The 2-layer BERT victim of bench_adv_training.py; training alone (no front end); robust accuracy under "
             "a fresh lmcritic DeepWordBug attack (budget 100) on 200 dev sentences, clean accuracy on 872. "
             "Wilson 95% CIs. Attacked training rows per round: flipped / kept closest.", "",
             "| variant | robust accuracy | clean accuracy | attacked rows: flipped / closest kept, per round | s |",
             "|---|---|---|---|---|"]
    for m in models:
        r, c = m["robust"], m["clean"]
        per = ", ".join(f"{x['flipped']}/{x['closest']} of {x['attacked']}" for x in m.get("rounds") or []) or "—"
        lines.append(f"| {json.dumps(m['config'])} | {r['value']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] "
                     f"(n={r['n']}) | {c['value']:.3f} [{c['ci'][0]:.3f}, {c['ci'][1]:.3f}] | {per} | "
                     f"{m.get('wall_s', '—')} |")
    (res / f"advtrain_variants_{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
