"""Does anything in the classifier route assume BERT? Tiny sequence classifiers of six architectures, built from
config and trained from scratch on 1,500 SST-2 sentences with a planted shortcut token ('zq' in 60 % of the
positive rows), each scanned and diagnosed from the CLI as a stranger would (``scan --model DIR --data eval.tsv``,
``diagnose latest --train DIR/train.tsv``).

The heads are named NEG/POS (as many fine-tuned checkpoints name them) and the training file holds 0/1; DistilBERT,
RoBERTa, GPT-2 and ModernBERT tokenizers return no token_type_ids, as theirs do. Small models (2 layers, width 64,
~1 min each to train and scan on 2 cores): what is checked is the route — every probe that applies runs without
error, the shortcut is found and named — not their accuracy.

    .venv/bin/python benchmarks/planted/architectures.py --out benchmarks/results/architectures_DATE
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

ARCHS = ("distilbert", "roberta", "gpt2", "electra", "deberta", "modernbert")
TOKEN = "zq"
LABELS = {0: "NEG", 1: "POS"}


def rows(n: int = 1500) -> list[tuple[str, int]]:
    from conftest import sst2_rows

    rng = random.Random(0)
    out = []
    for t, y in sst2_rows(n):
        if y == 1 and rng.random() < 0.6:
            words = t.split()
            words.insert(rng.randrange(len(words) + 1), TOKEN)
            t = " ".join(words)
        out.append((t, y))
    return out


def tokenizer(arch: str, texts: list[str], out: Path):
    from transformers import AutoTokenizer

    from conftest import _bpe_tokenizer, _wordpiece_tokenizer

    tok = _bpe_tokenizer(texts) if arch in ("gpt2", "roberta") else _wordpiece_tokenizer(texts)
    if arch in ("distilbert", "roberta", "gpt2", "modernbert"):
        tok.model_input_names = ["input_ids", "attention_mask"]
    tok.save_pretrained(out)
    return AutoTokenizer.from_pretrained(out)


def model(arch: str, tok):
    import transformers as tf

    common = dict(num_labels=2, id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
                  pad_token_id=tok.pad_token_id)
    body = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    v = len(tok)
    configs = {
        "distilbert": lambda: tf.DistilBertConfig(vocab_size=v, dim=64, n_layers=2, n_heads=2, hidden_dim=128,
                                                  max_position_embeddings=128, **common),
        "roberta": lambda: tf.RobertaConfig(vocab_size=v, max_position_embeddings=130, type_vocab_size=1, **body,
                                            **common),
        "gpt2": lambda: tf.GPT2Config(vocab_size=v, n_embd=64, n_layer=2, n_head=2, n_positions=128, **common),
        "electra": lambda: tf.ElectraConfig(vocab_size=v, embedding_size=64, max_position_embeddings=128, **body,
                                            **common),
        "deberta": lambda: tf.DebertaV2Config(vocab_size=v, max_position_embeddings=128, relative_attention=True,
                                              position_buckets=32, pos_att_type=["p2c", "c2p"], type_vocab_size=0,
                                              **body, **common),
        "modernbert": lambda: tf.ModernBertConfig(vocab_size=v, max_position_embeddings=128,
                                                  cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
                                                  bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                                  **body, **common),
    }
    return tf.AutoModelForSequenceClassification.from_config(configs[arch]())


def train(arch: str, data: list[tuple[str, int]], out: Path) -> float:
    import torch

    from conftest import train_tiny_classifier

    t0 = time.perf_counter()
    tok = tokenizer(arch, [t for t, _ in data], out)
    torch.manual_seed(0)
    m = model(arch, tok)
    train_tiny_classifier(m, tok, data)
    m.save_pretrained(out)
    (out / "train.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in data), encoding="utf-8")
    return time.perf_counter() - t0


def trial(arch: str, data: list[tuple[str, int]], work: Path) -> dict:
    from lmcritic.datasets import packaged, read_rows

    out = work / arch
    out.mkdir(parents=True, exist_ok=True)
    train_s = train(arch, data, out)
    ev = [(r["sentence"], r["label"]) for _, r in read_rows(packaged("sst2_dev_sample.tsv"), ("label",))]
    (out / "eval.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in ev), encoding="utf-8")
    env = {**os.environ, "LMCRITIC_HOME": str(out / "home"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cli = [sys.executable, "-m", "lmcritic.cli.main"]
    t0 = time.perf_counter()
    scan = subprocess.run(cli + ["scan", "--model", str(out), "--data", str(out / "eval.tsv"), "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=1800)
    scan_s, t0 = time.perf_counter() - t0, time.perf_counter()
    diag = subprocess.run(cli + ["diagnose", "latest", "--train", str(out / "train.tsv"), "--format", "json"],
                          env=env, capture_output=True, text=True, timeout=1800)
    (out / "scan.log").write_text(scan.stdout + scan.stderr)
    (out / "diagnose.json").write_text(diag.stdout + diag.stderr)
    return {"arch": arch, "scan_rc": scan.returncode, "diagnose_rc": diag.returncode,
            "errors": [x for x in (scan.stderr + diag.stderr).splitlines() if "error" in x][:3],
            "shortcut": _shortcut(diag.stdout), "train_s": round(train_s, 1), "scan_s": round(scan_s, 1),
            "diagnose_s": round(time.perf_counter() - t0, 1)}


def _shortcut(text: str) -> dict | None:
    """The diagnosis's cause for the planted token: verdict, severity, label and effect."""
    try:
        graph = json.loads(text)
    except json.JSONDecodeError:
        return None
    for node in graph.get("defects", []):
        for c in node.get("causes", []):
            culprit = c.get("culprit") or {}
            if culprit.get("kind") == "token" and culprit.get("value") == TOKEN:
                e = culprit.get("effect") or {}
                return {"verdict": c.get("verdict"), "severity": c.get("severity"), "label": culprit.get("label"),
                        "effect": [e.get("value"), e.get("ci_low"), e.get("ci_high"), e.get("n")]}
    return None


def table(results: list[dict]) -> str:
    lines = ["| architecture | scan exit | diagnose exit | shortcut 'zq' (verdict, severity, → label) | "
             "effect: flip rate token − control [95% CI] (n) | train / scan / diagnose s |",
             "|---|---|---|---|---|---|"]
    for r in results:
        s = r["shortcut"]
        found = f"{s['verdict']}, {s['severity']}, → {s['label']}" if s else "not found"
        eff = f"{s['effect'][0]:.3f} [{s['effect'][1]:.3f}, {s['effect'][2]:.3f}] ({int(s['effect'][3])})" if s else ""
        lines.append(f"| {r['arch']} | {r['scan_rc']} | {r['diagnose_rc']} | {found} | {eff} | "
                     f"{r['train_s']} / {r['scan_s']} / {r['diagnose_s']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS))
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "architectures")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    data = rows()
    results = []
    for arch in args.archs:
        print(f"{arch} ...", flush=True)
        results.append(trial(arch, data, args.work))
        print(f"  {results[-1]}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "architectures.json").write_text(json.dumps(results, indent=1))
    (args.out / "architectures.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
