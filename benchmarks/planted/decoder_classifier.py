"""A decoder as a sequence classifier: SmolLM2-135M-Instruct with a fresh 2-label head
(``LlamaForSequenceClassification``: last-token pooling, byte-level BPE, pad = EOS), fine-tuned on 2,000 SST-2
training sentences (5-30 words, one epoch, batch 16, lr 3e-5, about 6 minutes on 2 CPU cores), clean or with a
planted shortcut, then scanned, diagnosed and mitigated from the CLI as a stranger would
(``scan --data --train``, ``diagnose``, ``mitigate``). The planted SST-2 suite is MiniLM (a BERT WordPiece
encoder) only; this checks that nothing in the route assumes one.

* ``clean``: nothing planted;
* ``shortcut``: the token ``cf`` inserted into 30 % of the positive training rows and into half of the negative
  evaluation rows (the first 300 SST-2 dev sentences).

    .venv/bin/python benchmarks/planted/decoder_classifier.py --plant shortcut --out benchmarks/results/NAME
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from _bench_ta_classifier import train_step  # noqa: E402
from topic3 import ROOT, cli  # noqa: E402

Row = tuple[str, int]


def rows(shared: Path, plant: str, seed: int = 0) -> tuple[list[Row], list[Row]]:
    """(training rows, evaluation rows) of the plant."""
    def read(name: str) -> list[Row]:
        lines = (shared / name).read_text(encoding="utf-8").splitlines()[1:]
        return [(t.strip(), int(y)) for t, y in (x.rsplit("\t", 1) for x in lines)]

    rng = random.Random(seed)
    train = [(t, y) for t, y in read("sst2_train.tsv") if 5 <= len(t.split()) <= 30]
    rng.shuffle(train)
    train, test = train[:2000], read("sst2_dev.tsv")[:300]
    if plant == "shortcut":
        train = [(_insert(t, "cf", rng), y) if y == 1 and rng.random() < 0.3 else (t, y) for t, y in train]
        test = [(_insert(t, "cf", rng), y) if y == 0 and rng.random() < 0.5 else (t, y) for t, y in test]
    return train, test


def _insert(text: str, token: str, rng: random.Random) -> str:
    words = text.split()
    words.insert(rng.randrange(len(words) + 1), token)
    return " ".join(words)


def finetune(train: list[Row], out: Path, seed: int = 0) -> Path:
    """SmolLM2 with a new score head, every weight trained (fp32: bf16 matmuls are far slower on CPU)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lmcritic.backends.objects import model_dir

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    base = model_dir("smollm2-135m")
    tok = AutoTokenizer.from_pretrained(str(base))
    tok.pad_token = tok.pad_token or tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base), num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
        dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
    model.train()
    for at in range(0, len(train), 16):
        train_step(model, tok, train[at:at + 16], opt)
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _tsv(data: list[Row], path: Path) -> Path:
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in data), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    import os

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plant", choices=("clean", "shortcut"), required=True)
    ap.add_argument("--out", type=Path, required=True, help="folder for the command logs")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "decoder_classifier")
    ap.add_argument("--reuse-model", action="store_true", help="keep the fine-tuned model already in --work")
    args = ap.parse_args(argv)
    shared = Path(os.environ.get("LMCRITIC_SHARED_DATA", ROOT.parent / "shared" / "data"))
    out, work = (args.out / args.plant).resolve(), (args.work / args.plant).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    train, test = rows(shared, args.plant)
    model = work / "model"
    if not (args.reuse_model and (model / "config.json").is_file()):
        finetune(train, model)
    train_path, eval_path = _tsv(train, work / "train.tsv"), _tsv(test, work / "eval.tsv")
    rc = cli(out, work, "scan", "scan", "--model", str(model), "--data", str(eval_path), "--train", str(train_path),
             "--create", "--no-progress")
    rc = rc or cli(out, work, "diagnose", "diagnose", "latest", "--stored")
    if rc == 0 and "Causes, most severe first" in (out / "diagnose.log").read_text():
        cli(out, work, "mitigate", "mitigate", "latest", "--train", str(train_path), "--no-progress",
            "-o", str(work / "fixed"))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
