"""The planted-defect flow on a classifier that is not MiniLM: a small RoBERTa (byte-level BPE, ``<mask>``, position
offset, no token types) trained from scratch on a plant's rows, then, as a user would, ``lmcritic scan``,
``lmcritic diagnose latest --train`` and ``lmcritic mitigate latest --method auto --train`` in a fresh home.

Why: every other planted model is MiniLM (BERT WordPiece, ``[MASK]``); a user's model will often be another
architecture and tokenizer. This checks that the diagnosis and the fix do not lean on BERT's conventions. The
model is small and trained from scratch (no RoBERTa weights are available offline), so it is weaker than a
pre-trained one; what is judged is the same as in ``run_hf.py`` (the named cause and culprit) and
``run_mitigation_hf.py`` (the affected failure rate before → after and the clean accuracy).

    LMCRITIC_SHARED_DATA=/path/to/shared/data .venv/bin/python benchmarks/planted/other_arch.py --causes shortcut
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hf_plants  # noqa: E402
import minilm  # noqa: E402
import run_hf  # noqa: E402

WORK = run_hf.WORK / "arch"
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def tokenizer(texts: list[str], out: Path):
    """A byte-level BPE tokenizer trained on the training texts, saved and loaded back as RoBERTa's fast one."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=6000, min_frequency=2, special_tokens=SPECIALS, show_progress=False)
    out.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(out))
    return RobertaTokenizerFast.from_pretrained(str(out), model_max_length=128)


def train(rows: list[minilm.Row], out: Path, seed: int, epochs: float) -> Path:
    """A 4-layer RoBERTa classifier trained from scratch (cached by the rows' hash)."""
    config = minilm.TrainConfig(seed=seed, epochs=epochs, learning_rate=5e-4, frozen_layers=0)
    if minilm.cached(out, rows, config):
        return out
    import torch
    from transformers import (
        DataCollatorWithPadding,
        RobertaConfig,
        RobertaForSequenceClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    torch.set_num_threads(2)
    set_seed(seed)
    tok = tokenizer([t for t, _ in rows], out)
    cfg = RobertaConfig(vocab_size=len(tok), hidden_size=192, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=512, max_position_embeddings=130, type_vocab_size=1, pad_token_id=1,
                        bos_token_id=0, eos_token_id=2, num_labels=2, id2label=dict(enumerate(minilm.LABELS)),
                        label2id={n: i for i, n in enumerate(minilm.LABELS)})
    model = RobertaForSequenceClassification(cfg)
    data = [{**tok(t, truncation=True, max_length=64), "labels": int(y)} for t, y in rows]
    args = TrainingArguments(output_dir=str(out / "_trainer"), per_device_train_batch_size=32, num_train_epochs=epochs,
                             learning_rate=config.learning_rate, warmup_steps=0.1, weight_decay=0.01, seed=seed,
                             logging_steps=50, save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
    t0 = time.perf_counter()
    result = Trainer(model=model, args=args, train_dataset=data, data_collator=DataCollatorWithPadding(tok)).train()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    minilm.write_tsv(rows, out / "train.tsv")
    (out / "train.json").write_text(json.dumps({"hash": minilm.content_hash(rows, config), "n_rows": len(rows),
                                                "train_s": round(time.perf_counter() - t0, 1),
                                                "train_loss": round(float(result.training_loss), 4),
                                                "base": "RoBERTa, 4 layers, trained from scratch"}, indent=2))
    return out


def mitigate(trial: Path, model: Path) -> dict:
    """``lmcritic mitigate latest --method auto --train`` in the trial's home; its stored verification."""
    env = {**os.environ, "LMCRITIC_HOME": str(trial / "home"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = trial / "mitigated"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lmcritic.cli.main", "mitigate", "latest", "--method", "auto",
                           "--train", str(model / "train.tsv"), "-o", str(out), "--no-progress"], env=env,
                          capture_output=True, text=True)
    (trial / "mitigate.txt").write_text(done.stdout + done.stderr)
    return {"rc": done.returncode, "mitigate_s": round(time.perf_counter() - t0, 1),
            "tail": (done.stdout + done.stderr).strip().splitlines()[-25:]}


def failures(plant: hf_plants.HFPlant, model: Path) -> dict[str, list[int]]:
    """[failed, n] of a model on the plant's affected evaluation rows and on the rest (read directly, batch 32)."""
    ids, _ = minilm.predicted(model, [t for t, _ in plant.eval])
    out = {"affected": [0, 0], "other": [0, 0]}
    for i, (k, (_, y)) in enumerate(zip(ids, plant.eval)):
        key = "affected" if i in plant.planted_eval else "other"
        out[key][0] += int(k != y)
        out[key][1] += 1
    return out


def markdown(rows: list[dict]) -> str:
    head = ["| plant | seed | first cause (severity) culprit | right | mitigation | affected failed before → after | "
            "other rows failed before → after |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        first = (r.get("supported") or [{}])[0]
        c = first.get("culprit") or {}
        rates = r.get("rates") or {}
        b, a = rates.get("before") or {}, rates.get("after") or {}
        fmt = lambda x: f"{x[0]}/{x[1]}" if x else "-"  # noqa: E731
        head.append(f"| {r['cause']} | {r['seed']} | {first.get('cause')} ({first.get('severity')}) "
                    f"{c.get('value')}/{c.get('contrast', '')} → {c.get('label')} | {r.get('culprit_ok')} | "
                    f"{r.get('method', '-')} | {fmt(b.get('affected'))} → {fmt(a.get('affected'))} | "
                    f"{fmt(b.get('other'))} → {fmt(a.get('other'))} |")
    return "\n".join(head) + "\n"


def with_rates(row: dict) -> dict:
    """The row with the affected / other failure counts of the model before and after its mitigation."""
    plant = hf_plants.build(row["cause"], row["seed"])
    trial = run_hf.WORK / "hf_trials" / f"roberta_{row['cause']}-s{row['seed']}"
    rates = {"before": failures(plant, WORK / f"roberta-{row['cause']}-s{row['seed']}")}
    if row.get("mitigation") and (trial / "mitigated" / "model").is_dir():
        rates["after"] = failures(plant, trial / "mitigated" / "model")
    text = (trial / "mitigate.txt").read_text() if (trial / "mitigate.txt").is_file() else ""
    method = next((ln.split()[1] for ln in text.splitlines() if ln.startswith("method:")), None)
    return {**row, "rates": rates, "method": method}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--causes", nargs="+", default=["shortcut"], choices=sorted(hf_plants.BUILDERS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=float, default=6.0)
    ap.add_argument("--no-mitigate", action="store_true")
    ap.add_argument("--collect", action="store_true", help="run nothing: add failure counts, write the table")
    ap.add_argument("--out", type=Path, default=WORK)
    args = ap.parse_args(argv)
    if args.collect:
        rows = [with_rates(r) for r in json.loads((WORK / "rows.json").read_text())]
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "other_arch.json").write_text(json.dumps(rows, indent=1))
        (args.out / "other_arch.md").write_text(markdown(rows))
        print(markdown(rows))
        return 0
    rows = []
    for cause in args.causes:
        for seed in args.seeds:
            plant = hf_plants.build(cause, seed)
            model = train(plant.train, WORK / f"roberta-{cause}-s{seed}", seed, args.epochs)
            named = replace(plant, cause=f"roberta_{cause}")
            got = run_hf.run_trial(named, model, run_hf.SCAN_ARGS)
            row = {"cause": cause, "seed": seed, "planted": plant.description, **run_hf.judge(plant, got["graph"]),
                   "scan_s": got["scan_s"], "diagnose_s": got["diagnose_s"]}
            if not args.no_mitigate:
                row["mitigation"] = mitigate(run_hf.ROOT / got["trial"], model)
            rows.append(row)
            print(json.dumps(row, indent=1), flush=True)
    stored = json.loads((WORK / "rows.json").read_text()) if (WORK / "rows.json").is_file() else []
    done = {(r["cause"], r["seed"]) for r in rows}
    (WORK / "rows.json").write_text(json.dumps([r for r in stored if (r["cause"], r["seed"]) not in done] + rows,
                                               indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
