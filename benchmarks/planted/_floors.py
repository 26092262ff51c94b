"""The unplanted floor of the mitigation benchmark's plants: what a model could reach on the affected sentences
without the plant, and whether the plant made a defect beyond it (``run_mitigation_hf.py``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import minilm
import planted

WORK = Path(__file__).resolve().parents[1] / ".work"


def unplanted_rates(store_path: Path, cache: Path, row: dict, case: Any, work: Path) -> dict | None:
    """The models before and after on the affected cases WITHOUT the plant (the same sentences unrewritten): the
    floor each model could reach on them. The plant's effect is the affected failure rate minus this, per model;
    ``closed_unplanted``: the effect shrank by >= 50% (with the criterion's p and clean-accuracy conditions)."""
    truth = true_label_model(case)
    if not case.originals and truth is None:
        return None
    from lmcritic.runner import Runner
    from lmcritic.spec import RunSpec

    rows = case.originals or [case.eval[i] for i in sorted(case.planted)]
    path = planted.write_tsv(rows, work / "originals.tsv")
    runner = Runner(store_path=store_path, cache_path=cache, progress=False)
    fails = {}
    for when in ("before", "after"):
        spec = {**runner.store.get_run(row[f"run_{when}"]).spec, "stages": [],
                "probes": [{"name": "performance.sst2", "config": {"data": str(path), "n": None}, "key": "originals"}]}
        if truth is not None:  # label noise: the same sentences, a model trained on the true labels
            spec["model"] = {**spec["model"], "name": str(truth)}
        rid = runner.run(RunSpec.from_dict(spec, source=f"unplanted cases, model {when}")).run_id
        fails[when] = {r.case_id: r.passed is False for r in runner.store.records(rid, "originals")}
    ids = sorted(fails["before"])
    floor = {w: sum(fails[w][i] for i in ids) / len(ids) for w in fails}
    effect = {w: row["planted"][w] - floor[w] for w in floor}
    reduction = None if effect["before"] <= 0 else 1 - max(0.0, effect["after"]) / effect["before"]
    ok = reduction is not None and reduction >= 0.5 and row["planted"]["p"] < 0.05 and \
        row["clean_accuracy_change"] >= -0.01
    return {"n": len(ids), "floor_before": floor["before"], "floor_after": floor["after"],
            "effect_before": effect["before"], "effect_after": effect["after"], "reduction": reduction,
            "closed_unplanted": ok, "effect_test": plant_effect_test(runner.store, row["run_before"], case,
                                                                     fails["before"])}


def plant_effect_test(store, run_before: str, case: Any, floor_fails: dict[str, bool]) -> dict:
    """Is there a defect to close? The planted model's failures on the affected cases against the floor's on the
    same sentences (unplanted, or scored by the true-label model), paired by sentence: Newcombe CI, exact McNemar.
    A plant whose effect the test cannot tell from zero gave the mitigation nothing measurable to remove."""
    from lmcritic import stats

    planted_ = {r.case_id: r.passed is False for r in store.records(run_before, "performance.sst2")}
    pairs = [(floor_fails[planted.case_id(j)], planted_[planted.case_id(i)])
             for j, i in enumerate(sorted(case.planted))]
    est, p = stats.paired_proportions([f for f, _ in pairs], [x for _, x in pairs])
    return {"value": est.value, "ci": [est.ci_low, est.ci_high], "n": est.n, "p": p}


def true_label_model(case: Any) -> Path | None:
    """For label-noise plants, a model trained on the same rows with their true labels, the planted model's
    recipe: its failure rate on the affected sentences is the floor no repair of the labels can go below. The
    clean control of the same seed is that model where the plant's rows are the clean control's (label_noise*);
    a plant that chose its own rows (word_noise) carries them (``info["true_train"]``) and its twin is trained
    here (``hf_models/CAUSE_truth-sSEED``, cached). word_shortcut, whose affected cases are natural sentences,
    carries its corpus without the selection the same way (the word's rows in SST-2's own label mix)."""
    if case.cause != "label_noise" and case.true_train is None:
        return None
    seed = int(case.seed)
    models = WORK / minilm.work_subdir("hf_models")
    truth = case.true_train
    if truth is None:
        path = models / f"clean-s{seed}"
        return path if (path / "train.json").is_file() else None
    planted_meta = models / f"{case.name}-s{seed}" / "train.json"
    if not planted_meta.is_file():
        return None
    config = minilm.TrainConfig(**json.loads(planted_meta.read_text())["config"])
    return minilm.finetune(truth, models / f"{case.name}_truth-s{seed}", config, log=lambda m: print(f"  {m}"))


def floor_table(rows: list[dict]) -> str:
    """The floor section of the benchmark's markdown: per trial, the floor, the plant's effect and its test."""
    lines = ["", "Against the unplanted floor: the same affected sentences without the plant (the source sentences "
             "before the frames, phrases, token or typos were written in), scored by the model before and after; "
             "for label noise, the affected sentences scored by the model trained on the true labels (the clean "
             "control of the same seed, or for word_noise, whose rows are its own, a twin trained on its rows with "
             "their true labels, the planted recipe; the same floor before and after); for word_shortcut, whose "
             "affected sentences are natural, the same sentences scored by a twin trained on the corpus without "
             "the selection (the word's rows drawn from SST-2 in its own label mix); the plant's effect is the "
             "affected failure rate minus that floor.", "",
             "The plant's effect before is also tested paired by sentence (planted model on the affected cases vs "
             "the floor on the same sentences; Newcombe 95% CI, exact McNemar p): where it cannot be told from zero, "
             "the plant left no defect to close.", "",
             "| planted | seed | floor before → after (n) | plant effect before → after | effect before [95% CI], p "
             "| reduction | closed |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        u = r.get("unplanted")
        if u:
            red = "-" if u["reduction"] is None else f"{u['reduction']:+.0%}"
            t = u.get("effect_test")
            test = "-" if not t else f"{t['value']:+.3f} [{t['ci'][0]:+.3f}, {t['ci'][1]:+.3f}], {t['p']:.2g}"
            lines.append(f"| {r['name']} | {r['seed']} | {u['floor_before']:.3f} → {u['floor_after']:.3f} ({u['n']}) | "
                         f"{u['effect_before']:+.3f} → {u['effect_after']:+.3f} | {test} | {red} | "
                         f"{'yes' if u['closed_unplanted'] else 'no'} |")
    return "\n".join(lines) + "\n"


def defect_summary(rows: list[dict], failed: list[dict]) -> str:
    """Closed counts leaving out the trials whose plant made no defect beyond its floor (paired p >= 0.05); the
    main trials only (a variant, such as in-domain rows, is another fix of the same plant), failed ones not closed."""
    test = lambda r: (r.get("unplanted") or {}).get("effect_test")  # noqa: E731
    main = [r for r in rows if not r.get("variant")]
    none = [r for r in main if test(r) and test(r)["p"] >= 0.05]
    if not none:
        return ""
    rest = [r for r in main if r not in none]
    n = len(rest) + sum(not f.get("variant") for f in failed)
    raw = sum(r["closed"] for r in rest)
    excess = sum(r["closed_excess"] if r.get("unplanted") is None else r["unplanted"]["closed_unplanted"]
                 for r in rest)
    names = ", ".join(f"{r['name']} {r['seed']}" for r in none)
    return (f"\nNo defect beyond the floor (paired p >= 0.05): {names}. The other {n} trials (a plant without a "
            f"floor counted as it is; failed trials as not closed): closed {raw}/{n}, on the excess {excess}/{n}.\n")


def other_cases(store, row: dict, case: Any) -> dict | None:
    """The evaluation's cases the plant does not affect, before → after (paired, exact McNemar): a fix can meet
    the affected-case rule by turning the shortcut round (a length repair that made the long label's own long
    sentences fail), which the clean held-out set, where the planted model was already poor, may not show."""
    import run_mitigation as bench

    from lmcritic.mitigate.verify import paired

    ids = [planted.case_id(i) for i in range(len(case.eval)) if i not in case.planted]
    key = "performance.sst2"
    before = {r.case_id: r for r in store.records(row["run_before"], key)}
    after = {r.case_id: r for r in store.records(row["run_after"], key)}
    ids = [i for i in ids if i in before and i in after]
    if not ids:
        return None
    return bench._outcome(bench.single(paired("other", key, "unaffected cases", None, False, ids, before, after)))


def other_cases_table(rows: list[dict]) -> str:
    """Per trial, the unaffected evaluation cases' failure rate before → after; 'worse' where it rose (p < 0.05)."""
    lines = ["", "The evaluation's unaffected cases (the plant's other sentences), failure rate before → after "
             "(paired, exact McNemar): 'worse' where it rose with p < 0.05 — a fix that turned the shortcut round.",
             "", "| planted | seed | unaffected failure before → after (n) | p | |", "|---|---|---|---|---|"]
    for r in rows:
        o = r.get("other_cases")
        if o:
            worse = "worse" if o["change"] > 0 and o["p"] < 0.05 else ""
            lines.append(f"| {r['name']} | {r['seed']} | {o['before']:.3f} → {o['after']:.3f} ({o['n']}) | "
                         f"{o['p']:.2g} | {worse} |")
    return "\n".join(lines) + "\n"
