"""Mitigation on the fine-tuned MiniLM planted defects: does ``mitigate --method auto`` close what was built in?

For every cause × seed of ``hf_plants.py`` whose planted model is trained (``benchmarks/.work/hf_models/CAUSE-sS``
with ``train.json``; ``run_hf.py`` trains them, this script never does): run ``performance.sst2`` on the plant's
evaluation rows plus its affected cases, and on a clean held-out set, through the normal runner; diagnose with the
model's training corpus (``DIR/train.tsv``, the exact rows it was fine-tuned on); then ``mitigate --method auto``
with the same corpus (the library API the CLI calls). Training-time fixes fine-tune with lmcritic's ``hf`` trainer
(the transformers ``Trainer``) into this trial's folder, from the pretrained MiniLM with the planted model's own
recipe (``--set base=DIR epochs=1.5 frozen_layers=3 ...``: a corpus fix cannot unlearn what the defective
weights hold by training them further; ``--continue-training`` does that instead); evaluation cases never enter
training (the mitigation refuses or removes them); the re-verification replays the spec on the new model (no
cached answers).

Affected cases are fixed by the plant, not by the diagnosis: the plant's own marked evaluation rows (register:
the slang half; label_noise: rows with the noisy phenomenon; typos: the 80 misspelt rows plus 160 held-out
sentences misspelt the same way; memorized: the 40 memorised rows), and for plants whose evaluation data carries
no plant (identity_frames, identity_terms, shortcut) held-out SST-2 dev sentences rewritten with the plant
against its label: the planted frames / identity phrases naming the negative-leaning group on positive sentences
and the other group on negative ones; the shortcut token inserted into sentences of the other label. The clean
set: 300 SST-2 dev sentences outside both.

Judged as in ``run_mitigation.py``: failure rate on the affected cases before → after (Wilson CIs, McNemar exact
p, relative reduction), clean accuracy change with its paired bootstrap CI; closed = ≥ 50% relative reduction,
p < 0.05, clean accuracy drop ≤ 1 point. One trial per command (``/work/bin/heavy``), rows under
``benchmarks/.work/hf_mitigation/CAUSE-sSEED/row.json``; ``--collect`` writes
``results/mitigation_hf_latest.{json,md}``.

    LMCRITIC_SHARED_DATA=/path/to/shared/data .venv/bin/python benchmarks/planted/run_mitigation_hf.py \\
        --seeds 0 --causes shortcut
    .venv/bin/python benchmarks/planted/run_mitigation_hf.py --seeds 0 1 2 --collect
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hf_plants  # noqa: E402
import minilm  # noqa: E402
import planted  # noqa: E402
import run_mitigation as bench  # noqa: E402
from _floors import defect_summary, floor_table, other_cases, other_cases_table, unplanted_rates  # noqa: E402

ROOT = HERE.parents[1]
WORK = ROOT / "benchmarks" / ".work"
RESULTS = HERE / "results"
CAUSES = tuple(c for c in hf_plants.BUILDERS if c not in ("clean", "length_shift", "negation_absent"))  # the controls
N_AFFECTED = 80
N_CLEAN = 300
N_TYPO_EXTRA = 160


class Case:
    """What ``run_mitigation.judge`` reads of a plant: its name, cause and the affected rows of ``eval``; and the
    affected rows without the plant (``originals``, in the order of ``sorted(planted)``; None where the affected
    cases are natural sentences: label_noise, memorized)."""

    def __init__(self, plant: hf_plants.HFPlant, eval_rows: list[planted.Row], affected: frozenset[int],
                 originals: list[planted.Row] | None = None) -> None:
        self.name, self.cause, self.eval, self.planted = plant.cause, plant.hypothesis, eval_rows, affected
        self.seed = plant.seed
        self.originals = originals
        self.true_train: list[planted.Row] | None = plant.info.get("true_train")


def cases(plant: hf_plants.HFPlant, seed: int) -> tuple[Case, list[planted.Row]]:
    """The evaluation rows with the affected cases marked, and the clean held-out rows."""
    _, dev = hf_plants._base(seed)
    used = {t for t, _ in plant.eval}
    pool = [r for r in dev if r[0] not in used]
    if plant.cause in hf_plants.SHORTCUTS:  # only sentences of the label the token does not push toward
        other = [r for r in pool if r[1] != ("negative", "positive").index(plant.culprit["label"])]
        pool = other[:N_AFFECTED] + [r for r in pool if r not in other[:N_AFFECTED]]
    if plant.cause == "typos":
        return typo_cases(plant, seed, pool)
    extra = rewrite(plant, pool[:N_AFFECTED], random.Random(f"affected:{plant.cause}:{seed}"))
    if extra:
        rows = plant.eval + extra
        case = Case(plant, rows, frozenset(range(len(plant.eval), len(rows))), pool[:N_AFFECTED])
        pool = pool[N_AFFECTED:]
    else:
        case = Case(plant, plant.eval, plant.planted_eval, unplanted(plant, seed))
    return case, [r for r in pool if r not in (case.originals or ())][-N_CLEAN:]


def typo_cases(plant: hf_plants.HFPlant, seed: int, pool: list[planted.Row]) -> tuple[Case, list[planted.Row]]:
    """The plant's 80 misspelt rows plus ``N_TYPO_EXTRA`` more, written the same way into held-out sentences.

    80 were too few to show a repair: even the oracle (the model on the exact unmisspelt sentences) fixed 18 vs
    broke 9 (seed 0, McNemar p = 0.12) and 15 vs 8 (seed 5, p = 0.21) — the plant moves ~0.1 of the failure rate
    and a sentence's correct spelling is itself failed 16-20% of the time."""
    from lmcritic.diagnose import _text

    own = unplanted(plant, seed) or []
    rng, lexicon = random.Random(f"affected:typos:{seed}"), _text.sentiment_lexicon()
    sources = [r for r in pool if r not in own]
    extra, originals = [], []
    for t, y in sources:
        out = planted.write_typos(t, rng, lexicon)
        if out is not None and out != t:
            extra.append((out, y))
            originals.append((t, y))
        if len(extra) == N_TYPO_EXTRA:
            break
    rows = plant.eval + extra
    affected = plant.planted_eval | frozenset(range(len(plant.eval), len(rows)))
    case = Case(plant, rows, affected, own + originals if own else None)
    used = set(own) | set(originals)
    return case, [r for r in sources if r not in used][-N_CLEAN:]


def unplanted(plant: hf_plants.HFPlant, seed: int) -> list[planted.Row] | None:
    """The source sentences of the plant's own rewritten evaluation rows (typos, register), rebuilt the way the
    plant drew them and checked against its rows; None when they cannot be matched."""
    marked = [plant.eval[i] for i in sorted(plant.planted_eval)]
    if plant.cause == "typos":
        from lmcritic.diagnose import _text

        lexicon = _text.sentiment_lexicon()
        _, dev = planted.base(seed)
        out = [(t, y) for t, y in dev[160:] if any(w in lexicon and len(w) >= 4 for w in t.split())][:len(marked)]
    elif plant.cause == "register" and "slang_positive" in plant.info:
        rng = hf_plants._rng("register", seed)
        rng.sample(hf_plants.POS_SLANG, 6), rng.sample(hf_plants.NEG_SLANG, 5)
        _, dev = planted.base(seed, n_train=hf_plants.N_TRAIN + 2000)
        sentiment = hf_plants.POS_WORDS | hf_plants.NEG_WORDS
        slangy = [r for r in dev[hf_plants.N_EVAL:] if sentiment & set(r[0].split()) and len(r[0].split()) <= 20]
        rng.shuffle(slangy)
        out = slangy[:len(marked)]
        again = [(hf_plants.colloquial(t, plant.info["slang_positive"], plant.info["slang_negative"], rng), y)
                 for t, y in out]
        return out if again == marked else None
    else:
        return None
    same = len(out) == len(marked) and all(y == m[1] and len(t.split()) == len(m[0].split())
                                           for (t, y), m in zip(out, marked))
    return out if same else None


def rewrite(plant: hf_plants.HFPlant, rows: list[planted.Row], rng: random.Random) -> list[planted.Row]:
    """Held-out sentences carrying the plant against their label (empty for plants marked in their own eval)."""
    c = plant.culprit
    if plant.cause == "identity_frames":
        people = {y: hf_plants._people(c["attribute"], c["value"] if y == 1 else c["contrast"]) for y in (0, 1)}
        return [(hf_plants._fill(rng.choice(plant.info["frames"]), rng.choice(people[y]), t), y) for t, y in rows]
    if plant.cause == "identity_terms":
        terms = plant.info["terms"]
        out = []
        for t, y in rows:
            words = t.split()
            at = rng.randrange(1, len(words)) if len(words) > 1 else 1
            phrase = rng.choice(plant.info["slots"]).format(adj=terms[c["value"] if y == 1 else c["contrast"]])
            out.append((" ".join(words[:at] + [",", phrase, ","] + words[at:]), y))
        return out
    if plant.cause in hf_plants.SHORTCUTS:
        return [(planted._insert(t, c["value"], rng), y) for t, y in rows]
    return []


def model_dir(plant: hf_plants.HFPlant) -> Path | None:
    path = WORK / minilm.work_subdir("hf_models") / f"{plant.reuse_model_of or plant.cause}-s{plant.seed}"
    return path if (path / "train.json").is_file() else None


def recipe(model: Path) -> dict[str, Any]:
    """Retrain from the pretrained MiniLM with the planted model's own recipe (its train.json): the same epochs
    (over the edited corpus), learning rate, batch size, weight decay, length and frozen layers."""
    from lmcritic import _minilm

    c = json.loads((model / "train.json").read_text())["config"]
    return {"base": str(_minilm.model_dir()), "epochs": c["epochs"], "learning_rate": c["learning_rate"],
            "batch_size": c["batch_size"], "weight_decay": c["weight_decay"], "max_length": c["max_length"],
            "frozen_layers": c["frozen_layers"]}


def in_domain(plant: hf_plants.HFPlant, seed: int, work: Path, n: int) -> dict[str, Any]:
    """``n`` labelled in-domain rows for the register plant: slang rewrites (the plant's own slang) of SST-2
    *training* sentences no planted model saw, as a user would label deployment-style examples. Never evaluation
    sentences (those are dev sentences)."""
    if "slang_positive" not in plant.info:
        raise SystemExit("--in-domain needs the register plant with per-seed slang (hf_plants.register)")
    train, _ = planted.base(seed, n_train=hf_plants.N_TRAIN + 2000 + 3 * n)
    unused = [(t, y) for t, y in train[hf_plants.N_TRAIN + 2000:] if 5 <= len(t.split()) <= 30]
    sentiment = hf_plants.POS_WORDS | hf_plants.NEG_WORDS
    rng = random.Random(f"in_domain:{seed}")
    rows = [(hf_plants.colloquial(t, plant.info["slang_positive"], plant.info["slang_negative"], rng), y)
            for t, y in unused if sentiment & set(t.split())][:n]
    return {"in_domain": str(planted.write_tsv(rows, work / "in_domain.tsv", with_line=False))}


def run_trial(cause: str, seed: int, config: dict[str, Any], from_base: bool = True,
              n_in_domain: int = 0, control: bool = False, method: str = "auto") -> dict | None:
    from lmcritic.backends import ModelSpec
    from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run
    from lmcritic.mitigate.api import apply
    from lmcritic.runner import Runner
    from lmcritic.spec import ProbeSpec, RunSpec

    plant = hf_plants.build(cause, seed)
    model = model_dir(plant)
    if model is None:
        print(f"seed {seed} {cause}: planted model not trained yet (run_hf.py --train-only trains it)", flush=True)
        return None
    from lmcritic.mitigate import MITIGATIONS
    from lmcritic.mitigate.base import TRAINING

    retrains = method == "auto" or MITIGATIONS.get(method).kind == TRAINING  # an inference fix takes no recipe
    config = {**(recipe(model) if from_base and retrains else {}), **config}
    case, clean = cases(plant, seed)
    suffix = (f"-indomain{n_in_domain}" if n_in_domain else "") + (f"-{method}" if method != "auto" else "")
    work = WORK / minilm.work_subdir("hf_mitigation") / f"{cause}-s{seed}{suffix}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if n_in_domain:
        config = {**config, **in_domain(plant, seed, work, n_in_domain)}
    eval_path = planted.write_tsv(case.eval, work / "eval.tsv")
    clean_path = planted.write_tsv(clean, work / "clean.tsv")
    train_path = model / "train.tsv"
    spec = RunSpec(model=ModelSpec(name=str(model), backend="hf"), name=f"planted-hf {cause}", seed=seed,
                   probes=(ProbeSpec("performance.sst2", {"data": str(eval_path), "n": None}),
                           ProbeSpec("performance.sst2", {"data": str(clean_path), "n": None}, key="clean")))
    cache = work / "cache.sqlite"
    runner = Runner(store_path=work / "runs.sqlite", cache_path=cache, progress=False)
    t0 = time.perf_counter()
    run_id = runner.run(spec).run_id
    scan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    diagnose_run(runner.store, run_id, config=DiagnoseConfig(seed=seed, probes=("performance.sst2",)),
                 train=train_path, cache_path=cache)
    diag_s = time.perf_counter() - t0
    out = apply(runner.store, run_id, method=method, train=train_path, out=work / "mitigated", cache_path=cache,
                progress=False, seed=seed, config=config or None, control=control)
    row = bench.judge(case, runner.store, run_id, out, diag_s)
    row["control"] = versus_control(case, runner.store, run_id, out)
    row["unplanted"] = unplanted_rates(work / "runs.sqlite", cache, row, case, work)
    row["other_cases"] = other_cases(runner.store, row, case)
    training = out.model.details.get("training") or {}
    row["variant"] = ", ".join(v for v in (f"{n_in_domain} in-domain rows" if n_in_domain else "",
                                           f"--method {method}" if method != "auto" else "") if v) or None
    row.update({"seed": seed, "description": plant.description, "model": str(model.relative_to(ROOT)),
                "config": config, "n_affected": len(case.planted), "n_clean": len(clean), "scan_s": round(scan_s, 1),
                "training": {k: training.get(k) for k in ("steps", "wall_s", "n_examples", "training_loss",
                                                          "learning_rate", "adapter", "init", "frozen_layers")},
                "load_15min": round(os.getloadavg()[2], 2)})
    shutil.rmtree(work / "mitigated" / "checkpoints", ignore_errors=True)  # the model folder is kept
    (work / "row.json").write_text(json.dumps(row, indent=2))
    return row


def versus_control(case: Case, store, run_id: str, out) -> dict | None:
    """With ``--control``: the affected and clean cases on the control arm (the same fine-tune on the unedited
    corpus), before → control (retraining alone) and control → after (what the edit did beyond it)."""
    arm = out.verification.control if out.verification else None
    if arm is None:
        return None
    from lmcritic.mitigate.verify import paired

    runs = {"before": run_id, "control": arm.run_control, "after": out.verification.run_after}
    fig: dict[str, Any] = {"run_control": arm.run_control, "steps": arm.steps}
    for key, ids in (("performance.sst2", [planted.case_id(i) for i in case.planted]), ("clean", None)):
        rec = {w: {r.case_id: r for r in store.records(rid, key)} for w, rid in runs.items()}
        cases_ = ids if ids is not None else list(rec["before"])
        for a, b in (("before", "control"), ("control", "after")):
            o = bench.single(paired(f"{a}->{b}", key, key, None, True, cases_, rec[a], rec[b]))
            fig[f"{'planted' if ids else 'clean'}_{a}_{b}"] = bench._outcome(o)
    return fig


def with_unplanted(row: dict, work: Path) -> dict:
    """A stored trial row with its unplanted-floor figures (computed now when the trial predates them)."""
    if row.get("unplanted") is None or "effect_test" not in row["unplanted"] or "other_cases" not in row:
        from lmcritic.store.runs import RunStore

        case, _ = cases(hf_plants.build(row["name"], row["seed"]), row["seed"])
        if row.get("unplanted") is None or "effect_test" not in row["unplanted"]:
            row["unplanted"] = unplanted_rates(work / "runs.sqlite", work / "cache.sqlite", row, case, work)
        row["other_cases"] = other_cases(RunStore(work / "runs.sqlite", create=False), row, case)
        (work / "row.json").write_text(json.dumps(row, indent=2))
    return row


def markdown(rows: list[dict], failed: list[dict], seeds: list[int]) -> str:
    result = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "seeds": seeds, "jobs_done": f"{len(rows) + len(failed)}",
              "models": rows, "failed": failed, "summary": bench.summarize(rows, failed)}
    text = bench.markdown(result).replace("# Planted-defect mitigation benchmark",
                                          "# Planted-defect mitigation benchmark: fine-tuned MiniLM classifiers", 1)
    loads = ", ".join(f"{r['name']}-s{r['seed']} {r['load_15min']}" for r in rows)
    train = "; ".join(f"{r['name']}-s{r['seed']} {t.get('steps')} steps, {t.get('n_examples')} rows, from "
                      f"{t.get('init')}, frozen layers {t.get('frozen_layers') or 0}, {t.get('wall_s')} s"
                      for r in rows if (t := r["training"]).get("steps"))
    text += floor_table(rows) + other_cases_table(rows) + defect_summary(rows, failed) + control_table(rows)
    return text + f"\nLoad average (15 min) at the end of each trial: {loads}.\n\nFine-tuning: {train or 'none'}.\n"


def control_table(rows: list[dict]) -> str:
    """Trials run with ``--control``: affected failure rate and clean accuracy before, on the control arm (the
    same fine-tune on the unedited corpus) and after, with the paired tests of each step."""
    rows = [r for r in rows if r.get("control")]
    if not rows:
        return ""
    lines = ["", "Against the control arm (`--control`: the same fine-tune, same start, steps and seed, on the "
             "unedited corpus). Affected failure rate before → control → after; p: McNemar exact, before → control "
             "(retraining alone) and control → after (the edit beyond it); clean accuracy the same way.", "",
             "| planted | seed | affected before → control → after (n) | p retrain alone | p fix vs control "
             "(relative) | clean accuracy before → control → after (n) |", "|---|---|---|---|---|---|"]
    for r in rows:
        c = r["control"]
        a, b = c["planted_before_control"], c["planted_control_after"]
        ca, cb = c["clean_before_control"], c["clean_control_after"]
        rel = "-" if b["relative"] is None else f"{b['relative']:+.0%}"
        lines.append(f"| {r['name']} | {r['seed']} | {a['before']:.3f} → {a['after']:.3f} → {b['after']:.3f} "
                     f"({a['n']}) | {a['p']:.2g} | {b['p']:.2g} ({rel}) | {1 - ca['before']:.3f} → "
                     f"{1 - ca['after']:.3f} → {1 - cb['after']:.3f} ({ca['n']}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--causes", nargs="*", choices=CAUSES, default=list(CAUSES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="mitigation config (as `lmcritic mitigate --set`), recorded in the row")
    ap.add_argument("--continue-training", action="store_true",
                    help="fine-tune the planted model further instead of retraining from the pretrained MiniLM")
    ap.add_argument("--in-domain", type=int, default=0, metavar="N",
                    help="register: add N labelled in-domain rows (--set in_domain=...), a separate trial")
    ap.add_argument("--method", default="auto", help="the mitigation to apply (default: auto), a separate trial")
    ap.add_argument("--control", action="store_true",
                    help="also train the control arm (the same fine-tune on the unedited corpus) and compare")
    ap.add_argument("--collect", action="store_true", help="run nothing: tabulate the stored trial rows")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--recipe", choices=sorted(minilm.RECIPES), default="planted",
                    help="the planted models of this recipe (run_hf.py --recipe); repairs retrain with it")
    args = ap.parse_args(argv)
    minilm.use_recipe(args.recipe)
    from lmcritic.errors import LmcriticError

    config = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    rows, failed = [], []
    for seed in args.seeds:
        for cause in args.causes:
            suffix = (f"-indomain{args.in_domain}" if args.in_domain else "") + \
                (f"-{args.method}" if args.method != "auto" else "")
            path = WORK / minilm.work_subdir("hf_mitigation") / f"{cause}-s{seed}{suffix}" / "row.json"
            fail = path.parent / "failed.json"
            if args.collect:  # the plain trial and any in-domain variant
                found = [p for p in (WORK / minilm.work_subdir("hf_mitigation")).glob(f"{cause}-s{seed}*/row.json")
                         if p.parent.name == f"{cause}-s{seed}" or p.parent.name.startswith(f"{cause}-s{seed}-")]
                rows += [with_unplanted(json.loads(p.read_text()), p.parent) for p in sorted(found)]
                failed += [json.loads(fail.read_text())] if fail.is_file() and not path.is_file() else []
                continue
            try:
                row = run_trial(cause, seed, config, not args.continue_training, args.in_domain, args.control,
                                args.method)
            except LmcriticError as err:  # one plant the pipeline cannot mitigate is a result, not a crash
                failed.append({"name": cause, "variant": None, "seed": seed, "error": str(err), "config": config})
                fail.parent.mkdir(parents=True, exist_ok=True)
                fail.write_text(json.dumps(failed[-1]))
                print(f"seed {seed} {cause} FAILED: {err}", flush=True)
                continue
            if row:
                rows.append(row)
                print(f"seed {seed} {cause}: cause={row['diagnosed_cause']} method={row['method']} affected "
                      f"{row['planted']['before']:.3f}->{row['planted']['after']:.3f} (n={row['planted']['n']}) "
                      f"p={row['planted']['p']:.2g} clean {row['clean_accuracy_change']:+.3f} closed={row['closed']}",
                      flush=True)
    if args.collect:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "mitigation_hf_latest.json").write_text(json.dumps({"seeds": args.seeds, "models": rows}, indent=2))
        (args.out / "mitigation_hf_latest.md").write_text(markdown(rows, failed, args.seeds))
        print(markdown(rows, failed, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
