"""TextAttack's side of ``bench_adv_training.py``: adversarial training with ``textattack.Trainer`` (what
``textattack train --attack deepwordbug`` runs); inside ``benchmarks/.work/venv-textattack``.

One clean epoch on the training rows, then ``--adv`` successful DeepWordBug adversarial examples (TextAttack's own
recipe, ``query_budget_train`` = ``--budget``) generated from training rows against the current model, then the
remaining epochs on clean + adversarial rows. Saves the model (and the victim's tokenizer files) to ``--out`` and
prints one JSON line: wall time, optimizer steps, adversarial examples made.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import time
from pathlib import Path


def rows(path: str) -> list[tuple[str, int]]:
    with open(path, encoding="utf-8") as f:
        return [(r["text"], int(r["label"])) for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--adv", type=int, default=400)
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch
    import transformers
    from textattack import Trainer, TrainingArgs
    from textattack.attack_recipes import DeepWordBugGao2018
    from textattack.datasets import Dataset
    from textattack.models.wrappers import HuggingFaceModelWrapper

    torch.set_num_threads(1)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(args.model)
    tok = transformers.PreTrainedTokenizerFast(  # saved by transformers 5: load its tokenizer.json directly
        tokenizer_file=str(Path(args.model) / "tokenizer.json"), unk_token="[UNK]", pad_token="[PAD]",
        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", model_max_length=64)
    wrapper = HuggingFaceModelWrapper(model, tok)
    attack = DeepWordBugGao2018.build(wrapper)
    train, dev = rows(args.train), rows(args.dev)
    out = Path(args.out)
    targs = TrainingArgs(num_epochs=args.epochs, num_clean_epochs=1, attack_epoch_interval=1, learning_rate=args.lr,
                         num_warmup_steps=0, weight_decay=0.0, per_device_train_batch_size=args.batch,
                         num_train_adv_examples=args.adv, query_budget_train=args.budget, random_seed=args.seed,
                         output_dir=str(out / "ta-output"), save_last=True, log_to_tb=False, log_to_wandb=False,
                         attack_num_workers_per_device=1, parallel=False)
    # input_columns as a tuple: TextAttack 0.3.11's Trainer adds ("_example_type",) to it, and the default is a list
    cols = ("text",)
    trainer = Trainer(wrapper, "classification", attack, Dataset(train, input_columns=cols),
                      Dataset(dev[:64], input_columns=cols), targs)
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    model.save_pretrained(out / "model")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (Path(args.model) / name).is_file():
            shutil.copy(Path(args.model) / name, out / "model" / name)
    steps = math.ceil(len(train) / args.batch) + (args.epochs - 1) * math.ceil((len(train) + args.adv) / args.batch)
    print(json.dumps({"wall_s": wall, "steps_approx": steps, "adv": args.adv, "budget": args.budget}))


if __name__ == "__main__":
    main()
